"""IAM checks: admin (*:*) policies attached (CIS v3.0.0 1.16 / v5.0.0 1.15), weak password policy (1.8, 1.9 /
1.7, 1.8), root access keys (1.4 / 1.3, notify-only)."""

from __future__ import annotations

import json

import pytest
from moto.iam.models import iam_backends

from aegis.catalogue import DetachPolicy, StrengthenPasswordPolicy
from aegis.checks import PlanConfig, iam_admin_policy_attached, iam_password_policy_weak, iam_root_access_keys
from aegis.checks.base import EXEMPT_TAG
from aegis.models import Risk, Severity

ADMIN = iam_admin_policy_attached
PASSWORD = iam_password_policy_weak
ROOT_KEYS = iam_root_access_keys
ACCOUNT = "123456789012"
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


def test_missing_password_policy_is_flagged_and_strengthened(inventory):
    [finding] = PASSWORD.evaluate(inventory())

    assert (finding.cis_v3, finding.cis_v5) == ("1.8, 1.9", "1.7, 1.8")
    assert (finding.resource_arn, finding.region) == (f"arn:aws:iam::{ACCOUNT}:root", "us-east-1")
    assert finding.evidence["password_policy"]["exists"] is False
    change = PASSWORD.propose(finding, PlanConfig())
    assert isinstance(change, StrengthenPasswordPolicy)
    assert (change.after.minimum_password_length, change.after.password_reuse_prevention) == (14, 24)


def test_weak_policy_is_strengthened_keeping_its_stricter_values(iam, inventory):
    iam.update_account_password_policy(
        MinimumPasswordLength=20, PasswordReusePrevention=3, RequireSymbols=True, MaxPasswordAge=90
    )
    [finding] = PASSWORD.evaluate(inventory())
    assert finding.evidence["length_ok"] is True
    assert finding.evidence["reuse_ok"] is False

    change = PASSWORD.propose(finding, PlanConfig())

    after = change.after
    assert (after.minimum_password_length, after.password_reuse_prevention) == (20, 24)
    assert after.require_symbols is True
    assert after.max_password_age == 90


def test_strong_password_policy_is_not_flagged(iam, inventory):
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)
    assert PASSWORD.evaluate(inventory()) == []


def test_root_access_keys_are_notify_only(inventory):
    assert ROOT_KEYS.evaluate(inventory()) == []  # a fresh account's root has no keys
    # No API creates root access keys, so the account state moto reports is set directly.
    iam_backends[ACCOUNT]["global"].account_summary._account_access_keys_present = 1

    [finding] = ROOT_KEYS.evaluate(inventory())

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("iam-root-access-keys", "1.4", "1.3")
    assert finding.severity is Severity.CRITICAL
    assert finding.resource_arn == f"arn:aws:iam::{ACCOUNT}:root"
    assert finding.remediation is None
    assert ROOT_KEYS.METADATA.remediation_kind is None
    assert ROOT_KEYS.propose(finding, PlanConfig()) is None
