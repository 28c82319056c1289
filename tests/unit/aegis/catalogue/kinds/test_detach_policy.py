"""detach-policy: only ever detaches a customer-managed policy of this account from entities it is attached to."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from tests.support.changes import ACCOUNT, COMMON, one_of_each_kind


def test_a_change_that_attaches_a_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="strict subset"):
        DetachPolicy.propose(
            check_id="iam-admin-policy-attached",
            resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/AdminEverything",
            before=PolicyAttachments(roles=("a",)),
            after=PolicyAttachments(roles=("a", "b")),
            **COMMON,
        )


def test_an_aws_managed_or_foreign_policy_is_refused() -> None:
    for arn in ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::210987654321:policy/AdminEverything"):
        with pytest.raises(ValueError, match="customer-managed policy of this account"):
            DetachPolicy.propose(
                check_id="iam-admin-policy-attached",
                resource_arn=arn,
                before=PolicyAttachments(roles=("a",)),
                after=PolicyAttachments(),
                **COMMON,
            )


def test_detach_session_policy_is_pinned_to_the_policy_and_entities() -> None:
    change = next(c for c in one_of_each_kind() if isinstance(c, DetachPolicy))
    statement = change.session_policy_statements("apply")[0]
    assert statement["Condition"] == {"ArnEquals": {"iam:PolicyARN": change.resource_arn}}
    assert f"arn:aws:iam::{ACCOUNT}:role/ci-deployer" in statement["Resource"]
    assert f"arn:aws:iam::{ACCOUNT}:user/alice" in statement["Resource"]
    assert all(":policy/" not in arn for arn in statement["Resource"])


def test_the_approver_sees_which_entities_lose_the_policy() -> None:
    change = next(c for c in one_of_each_kind() if isinstance(c, DetachPolicy))
    assert change.detached == {("role", "ci-deployer"), ("user", "alice")}
    assert change.summary() == "Detach AdminEverything from 2 entities"
    assert change.describe_before() == "attached to role ci-deployer, user alice"
    assert change.describe_after() == "attached to nothing"
