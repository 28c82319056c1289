"""Customer-managed admin (*:*) policies attached: CIS v3.0.0 1.16 / v5.0.0 1.15."""

from __future__ import annotations

import json

import pytest

from aegis.catalogue.kinds.detach_policy import DetachPolicy
from aegis.checks import PlanConfig, iam_admin_policy_attached
from aegis.checks.base import EXEMPT_TAG
from aegis.models import Risk

ADMIN = iam_admin_policy_attached
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


@pytest.fixture
def iam(aws):
    return aws.client("iam", region_name="us-east-1")


def _policy(iam, name: str, *statements: dict, tags: dict[str, str] | None = None) -> str:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    extra = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
    return iam.create_policy(PolicyName=name, PolicyDocument=document, **extra)["Policy"]["Arn"]


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def test_attached_admin_policy_is_flagged_with_every_entity_and_detached_from_all(iam, inventory):
    arn = _policy(iam, "Admin", {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}, ALLOW_ALL)
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="ops")
    iam.attach_role_policy(RoleName="app", PolicyArn=arn)
    iam.attach_user_policy(UserName="alice", PolicyArn=arn)
    iam.attach_group_policy(GroupName="ops", PolicyArn=arn)

    inv = inventory()
    [finding] = ADMIN.evaluate(inv)

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("iam-admin-policy-attached", "1.16", "1.15")
    assert (finding.resource_arn, finding.region) == (arn, "us-east-1")
    assert finding.evidence["admin_statements"] == [1]
    assert finding.evidence["attachments"] == {"roles": ["app"], "users": ["alice"], "groups": ["ops"]}
    change = ADMIN.propose(finding, PlanConfig())
    assert isinstance(change, DetachPolicy)
    assert change.detached == {("role", "app"), ("user", "alice"), ("group", "ops")}
    assert change.risk is Risk.HIGH
    # Documents and attachments come from the authorization-details listing, not per policy.
    calls = inv.collectors.clients.api_calls
    assert calls["iam.GetAccountAuthorizationDetails"] == 1
    assert "iam.GetPolicyVersion" not in calls
    assert "iam.ListEntitiesForPolicy" not in calls


def test_only_the_default_version_counts(iam, inventory):
    arn = _policy(iam, "WasAdmin", ALLOW_ALL)
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="app", PolicyArn=arn)
    scoped = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(scoped), SetAsDefault=True)
    assert ADMIN.evaluate(inventory()) == []

    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    [finding] = ADMIN.evaluate(inventory())
    assert finding.evidence["default_version_id"] == "v1"


def test_lookalikes_scoped_unattached_and_action_lists_are_not_flagged(iam, inventory):
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    scoped = _policy(iam, "Scoped", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})
    all_s3 = _policy(iam, "AllS3", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    deny_all = _policy(iam, "DenyAll", {"Effect": "Deny", "Action": "*", "Resource": "*"})
    for arn in (scoped, all_s3, deny_all):
        iam.attach_role_policy(RoleName="app", PolicyArn=arn)
    _policy(iam, "UnattachedAdmin", ALLOW_ALL)

    assert ADMIN.evaluate(inventory()) == []


def test_admin_policy_keeps_only_its_exempt_tag(iam, inventory):
    arn = _policy(iam, "BreakGlass", ALLOW_ALL, tags={EXEMPT_TAG: "break-glass role", "Owner": "sec"})
    iam.create_role(RoleName="breakglass", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="breakglass", PolicyArn=arn)

    [finding] = ADMIN.evaluate(inventory())

    assert finding.tags == {EXEMPT_TAG: "break-glass role"}


def test_cis_numbers_and_remediation_kind():
    meta = iam_admin_policy_attached.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("1.16", "1.15", "detach-policy")
