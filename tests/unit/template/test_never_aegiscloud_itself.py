"""What a leaked remediation session could still do to AegisCloud itself: nothing. Whatever the session policy says,
each remediation role denies every catalogue action that can target a role, a managed policy or a bucket on this
stack's own roles (where the kill switch's deny policy lives), the members' Aegis* roles, this stack's managed
policies and every bucket of this stack (the console's code, the audit export, the organization scans' items)."""

from __future__ import annotations

import pytest

from aegis.catalogue import declared_actions
from tests.support.stack import Stack, build_stack
from tests.unit.template.iam_matrix import REMEDIATION_ROLES, is_read_only, resource_types_of

SELF_TARGETS = ("role", "policy", "bucket")


def _deny(stack: Stack, role: str) -> dict:
    [statement] = [s for s in stack.statements(role) if s.get("Sid") == "NeverAegisCloudItself"]
    assert statement["Effect"] == "Deny"
    assert "Condition" not in statement, "a condition would let some request through"
    return statement


def _self_targeting() -> set[str]:
    """Mutating catalogue actions that IAM lets name a role, a managed policy or a bucket."""
    return {
        action
        for action in declared_actions()
        if not is_read_only(action) and set(resource_types_of(action) or ()) & set(SELF_TARGETS)
    }


def test_the_catalogue_has_actions_that_could_loosen_aegiscloud() -> None:
    # Without them this test would prove nothing: the inline-policy, policy-version and bucket-policy kinds bring them.
    assert {"iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:CreatePolicyVersion", "s3:PutBucketPolicy"} <= (
        _self_targeting()
    )


@pytest.mark.parametrize("role", list(REMEDIATION_ROLES))
def test_every_action_that_could_loosen_aegiscloud_is_denied_on_its_own_resources(role: str) -> None:
    stack = build_stack(AuditExportRetentionDays="400")
    deny = _deny(stack, role)
    assert _self_targeting() <= set(deny["Action"])
    buckets = {f"arn:aws:s3:::{stack.ref(bucket)}" for bucket in stack.resources_of_type("AWS::S3::Bucket")}
    assert len(buckets) == 3
    stack_name = stack.resolver.pseudo["AWS::StackName"]
    assert set(deny["Resource"]) == {
        f"arn:aws:iam::123456789012:role/{stack_name}-*",
        "arn:aws:iam::123456789012:role/Aegis*",
        f"arn:aws:iam::123456789012:policy/{stack_name}-*",
        *buckets,
    }


@pytest.mark.parametrize("role", list(REMEDIATION_ROLES))
def test_every_role_of_the_stack_is_named_under_the_denied_prefix(role: str) -> None:
    # CloudFormation names a role it creates <stack>-<logical id>-<suffix>: the deny's prefix covers each one, as long
    # as none is given a RoleName of its own.
    stack = build_stack()
    for logical_id, resource in stack.resources_of_type("AWS::IAM::Role").items():
        assert "RoleName" not in resource.get("Properties", {}), logical_id
