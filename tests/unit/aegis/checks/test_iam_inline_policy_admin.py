"""Inline policies of roles, users and groups that allow * on *: the control of CIS v3.0.0 1.16 / v5.0.0 1.15 /
v6.0.0 2.15 / v7.0.0 2.14 applied to inline policies, read from the authorization-details listing alone."""

from __future__ import annotations

import json

import pytest

from aegis.catalogue.kinds.remove_inline_policy_admin_statements import RemoveInlinePolicyAdminStatements
from aegis.catalogue.policy_documents import document_sha256
from aegis.checks import PlanConfig, iam_inline_policy_admin
from aegis.checks.base import EXEMPT_TAG
from aegis.models import Risk
from aegis.secrets_guard import WITHHELD

INLINE = iam_inline_policy_admin
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}
EVERY_ACTION = {"Effect": "Allow", "Action": "*:*", "Resource": "*"}
READ_LOGS = {"Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}


@pytest.fixture
def iam(aws):
    return aws.client("iam", region_name="us-east-1")


def _document(*statements: dict, **frame: str) -> dict:
    return {"Version": "2012-10-17", **frame, "Statement": list(statements)}


def test_each_entity_is_one_finding_with_every_admin_inline_policy(iam, inventory):
    role_arn = iam.create_role(RoleName="app", Path="/service/", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    mixed = _document(READ_LOGS, EVERY_ACTION)
    only_admin = _document(ALLOW_ALL, Id="break-glass")
    iam.put_role_policy(RoleName="app", PolicyName="mixed", PolicyDocument=json.dumps(mixed))
    iam.put_role_policy(RoleName="app", PolicyName="only-admin", PolicyDocument=json.dumps(only_admin))
    iam.put_role_policy(RoleName="app", PolicyName="clean", PolicyDocument=json.dumps(_document(READ_LOGS)))
    user_arn = iam.create_user(UserName="alice")["User"]["Arn"]
    iam.put_user_policy(UserName="alice", PolicyName="admin", PolicyDocument=json.dumps(_document(ALLOW_ALL)))
    group_arn = iam.create_group(GroupName="ops")["Group"]["Arn"]
    iam.put_group_policy(GroupName="ops", PolicyName="admin", PolicyDocument=json.dumps(_document(EVERY_ACTION)))

    inv = inventory()
    findings = {f.resource_arn: f for f in INLINE.evaluate(inv)}

    assert set(findings) == {role_arn, user_arn, group_arn}
    role = findings[role_arn]
    assert (role.check_id, role.region, role.resource_type) == (
        "iam-inline-policy-admin",
        "us-east-1",
        "AWS::IAM::Policy",
    )
    assert role.evidence == {
        "role": "app",
        "policies": [
            {
                "name": "mixed",
                "document_sha256": document_sha256(mixed),
                "statement_count": 2,
                "admin_statements": [{"index": 1, "statement": EVERY_ACTION}],
                "frame": {"Version": "2012-10-17"},
            },
            {
                "name": "only-admin",
                "document_sha256": document_sha256(only_admin),
                "statement_count": 1,
                "admin_statements": [{"index": 0, "statement": ALLOW_ALL}],
                "frame": {"Version": "2012-10-17", "Id": "break-glass"},
            },
        ],
    }
    assert findings[user_arn].evidence["user"] == "alice"
    assert findings[group_arn].evidence["group"] == "ops"
    # Inline documents come with the listing: no call per entity or policy.
    assert inv.collectors.clients.api_calls == {"sts.GetCallerIdentity": 1, "iam.GetAccountAuthorizationDetails": 1}

    change = INLINE.propose(role, PlanConfig())
    assert isinstance(change, RemoveInlinePolicyAdminStatements)
    assert change.risk is Risk.HIGH
    assert (change.entity_type, change.entity_name) == ("role", "app")
    assert [(p.name, p.indices, p.deletes) for p in change.cleaned] == [
        ("mixed", (1,), False),
        ("only-admin", (0,), True),
    ]


def test_lookalikes_are_not_flagged(iam, inventory):
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    for name, statement in (
        ("all-s3", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        ("one-bucket", {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}),
        ("deny-all", {"Effect": "Deny", "Action": "*", "Resource": "*"}),
        ("not-iam", {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    ):
        iam.put_role_policy(RoleName="app", PolicyName=name, PolicyDocument=json.dumps(_document(statement)))
    iam.create_user(UserName="nobody")

    inv = inventory()
    assert INLINE.evaluate(inv) == []
    assert inv.collectors.resource_counts["AWS::IAM::Policy"] == 4


def test_only_the_exempt_tag_is_kept(iam, inventory):
    iam.create_role(
        RoleName="breakglass",
        AssumeRolePolicyDocument=TRUST,
        Tags=[{"Key": EXEMPT_TAG, "Value": "break-glass role"}, {"Key": "Owner", "Value": "sec"}],
    )
    iam.put_role_policy(RoleName="breakglass", PolicyName="admin", PolicyDocument=json.dumps(_document(ALLOW_ALL)))

    [finding] = INLINE.evaluate(inventory())

    assert finding.tags == {EXEMPT_TAG: "break-glass role"}


def test_nothing_is_proposed_from_a_withheld_policy(iam, inventory):
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="app", PolicyName="admin", PolicyDocument=json.dumps(_document(ALLOW_ALL)))
    [finding] = INLINE.evaluate(inventory())
    policies = finding.evidence["policies"]
    withheld = [{**policies[0], "admin_statements": [{"index": 0, "statement": {**ALLOW_ALL, "Sid": WITHHELD}}]}]

    assert INLINE.propose(finding.model_copy(update={"evidence": {"policies": withheld}}), PlanConfig()) is None
    assert INLINE.propose(finding.model_copy(update={"evidence": {"policies": []}}), PlanConfig()) is None


def test_cis_numbers_and_remediation_kind():
    meta = iam_inline_policy_admin.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_id("v6"), meta.cis_v7) == ("1.16", "1.15", "2.15", "2.14")
    assert meta.cis_unsure == ("v3", "v5", "v6", "v7")
    assert meta.remediation_kind == "remove-inline-policy-admin-statements"
    assert meta.manual_fix


def test_statements_too_large_to_carry_through_a_mission_are_left_to_a_human() -> None:
    from aegis.catalogue.policy_documents import CARRIED_STATEMENTS_MAX, StatementsTooLarge, assert_carriable
    from aegis.checks import CHECKS

    huge = {"Effect": "Allow", "Action": "*", "Resource": "*", "Sid": "A" * CARRIED_STATEMENTS_MAX}
    with pytest.raises(StatementsTooLarge, match="one change carries at most"):
        assert_carriable([huge])
    check = CHECKS["iam-inline-policy-admin"]
    finding = check.METADATA.finding(
        resource_arn="arn:aws:iam::123456789012:role/app",
        account_id="123456789012",
        region="us-east-1",
        evidence={
            "policies": [
                {
                    "name": "everything",
                    "document_sha256": "0" * 64,
                    "statement_count": 2,
                    "admin_statements": [{"index": 0, "statement": huge}],
                    "frame": {"Version": "2012-10-17"},
                }
            ]
        },
    )
    assert check.propose(finding, PlanConfig()) is None
    assert check.METADATA.manual_fix
