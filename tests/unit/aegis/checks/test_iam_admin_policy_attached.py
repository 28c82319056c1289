"""Customer-managed admin (*:*) policies attached: CIS v3.0.0 1.16 / v5.0.0 1.15 / v6.0.0 2.15 / v7.0.0 2.14, and
its two fixes: a new default version without the admin statements where one applies, detaching otherwise."""

from __future__ import annotations

import json

import pytest

from aegis.catalogue.kinds.detach_policy import DetachPolicy
from aegis.catalogue.kinds.replace_admin_policy_version import ReplaceAdminPolicyVersion
from aegis.catalogue.policy_documents import document_sha256
from aegis.checks import PlanConfig, iam_admin_policy_attached
from aegis.checks._admin_statements import admin_statement_indices, is_admin_statement
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
    [detach, replace] = ADMIN.candidates(finding, PlanConfig())
    assert isinstance(detach, DetachPolicy)
    assert detach.detached == {("role", "app"), ("user", "alice"), ("group", "ops")}
    assert detach.risk is Risk.HIGH
    assert isinstance(replace, ReplaceAdminPolicyVersion)
    assert replace.risk is Risk.MEDIUM
    # The safest fix that applies: the entities keep the policy's other statement.
    assert ADMIN.propose(finding, PlanConfig()) == replace
    pinned = PlanConfig(remediation_choices={"iam-admin-policy-attached": "detach-policy"})
    assert ADMIN.propose(finding, pinned) == detach
    # Documents and attachments come from the authorization-details listing, not per policy.
    calls = inv.collectors.clients.api_calls
    assert calls["iam.GetAccountAuthorizationDetails"] == 1
    assert "iam.GetPolicyVersion" not in calls
    assert "iam.ListPolicyVersions" not in calls
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


def _attached_to_a_role(iam, name: str, *statements: dict) -> str:
    arn = _policy(iam, name, *statements)
    iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName=f"{name}-role", PolicyArn=arn)
    return arn


READ_LOGS = {"Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}


def test_the_new_version_is_built_against_the_default_documents_digest(iam, inventory):
    _attached_to_a_role(iam, "Power", READ_LOGS, ALLOW_ALL)
    [finding] = ADMIN.evaluate(inventory())

    document = {"Version": "2012-10-17", "Statement": [READ_LOGS, ALLOW_ALL]}
    assert finding.evidence["default_document_sha256"] == document_sha256(document)
    assert (finding.evidence["statement_count"], finding.evidence["version_count"]) == (2, 1)
    change = ADMIN.propose(finding, PlanConfig())
    assert isinstance(change, ReplaceAdminPolicyVersion)
    assert (change.before.version_id, change.before.document_sha256) == ("v1", document_sha256(document))
    assert change.before.statement_count == 2
    assert change.after.indices == (1,)


def test_a_policy_of_admin_statements_only_is_detached(iam, inventory):
    _attached_to_a_role(iam, "Everything", ALLOW_ALL, {"Effect": "Allow", "Action": "*:*", "Resource": ["*"]})
    [finding] = ADMIN.evaluate(inventory())

    assert finding.evidence["admin_statements"] == [0, 1]
    [detach] = ADMIN.candidates(finding, PlanConfig())
    assert isinstance(detach, DetachPolicy)
    # Pinning the alternative where it does not apply falls back to what does.
    pinned = PlanConfig(remediation_choices={"iam-admin-policy-attached": "replace-admin-policy-version"})
    assert ADMIN.propose(finding, pinned) == detach


def test_a_policy_with_five_versions_has_no_room_for_a_new_one(iam, inventory):
    arn = _attached_to_a_role(iam, "Crowded", READ_LOGS, ALLOW_ALL)
    document = json.dumps({"Version": "2012-10-17", "Statement": [READ_LOGS, ALLOW_ALL]})
    for _ in range(4):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    [finding] = ADMIN.evaluate(inventory())

    assert finding.evidence["version_count"] == 5
    assert [c.kind for c in ADMIN.candidates(finding, PlanConfig())] == ["detach-policy"]


def test_a_finding_recorded_without_the_version_facts_is_only_detached(iam, inventory):
    _attached_to_a_role(iam, "Older", READ_LOGS, ALLOW_ALL)
    [finding] = ADMIN.evaluate(inventory())
    older = finding.model_copy(
        update={"evidence": {k: v for k, v in finding.evidence.items() if k != "default_document_sha256"}}
    )
    assert [c.kind for c in ADMIN.candidates(older, PlanConfig())] == ["detach-policy"]


@pytest.mark.parametrize(
    ("statement", "admin"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": "*:*", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": ["s3:GetObject", "*"], "Resource": ["arn:aws:s3:::b", "*"]}, True),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            },
            True,
        ),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}, False),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, False),
        ("*", False),
    ],
)
def test_admin_statements_are_allows_of_every_action_on_every_resource(statement, admin):
    assert is_admin_statement(statement) is admin
    assert admin_statement_indices({"Statement": statement}) == ([0] if admin else [])


def test_cis_numbers_and_remediation_kind():
    meta = iam_admin_policy_attached.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("1.16", "1.15", "detach-policy")
    assert (meta.cis_id("v6"), meta.cis_v7) == ("2.15", "2.14")
    assert meta.alternative_kinds == ("replace-admin-policy-version",)
