"""replace-admin-policy-version: a new default version of a customer-managed policy of this account, which only ever
leaves statements out of the approved one and keeps at least one; undo makes the approved version the default again."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.catalogue import Undo
from aegis.catalogue.kinds.replace_admin_policy_version import (
    DefaultPolicyVersion,
    RemovedStatements,
    ReplaceAdminPolicyVersion,
)
from tests.support.changes import ACCOUNT, COMMON, one_of_each_kind

POLICY = f"arn:aws:iam::{ACCOUNT}:policy/TeamPowerUser"
DIGEST = "ab" * 32


def _change(*indices: int, count: int = 3, arn: str = POLICY) -> ReplaceAdminPolicyVersion:
    return ReplaceAdminPolicyVersion.propose(
        check_id="iam-admin-policy-attached",
        resource_arn=arn,
        before=DefaultPolicyVersion(version_id="v2", document_sha256=DIGEST, statement_count=count),
        after=RemovedStatements(indices=indices),
        **COMMON,
    )


def _static() -> ReplaceAdminPolicyVersion:
    change = next(c for c in one_of_each_kind() if isinstance(c, ReplaceAdminPolicyVersion))
    return change


@pytest.mark.parametrize(
    ("indices", "count", "refusal"),
    [
        ((0, 1, 2), 3, "keep at least one statement"),
        ((3,), 3, "not a statement of the approved version"),
        ((-1,), 3, "not a statement of the approved version"),
        ((1, 0), 3, "once each, in order"),
        ((1, 1), 3, "once each, in order"),
    ],
)
def test_a_version_that_keeps_nothing_or_names_no_approved_statement_is_refused(
    indices: tuple[int, ...], count: int, refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        _change(*indices, count=count)


def test_an_empty_removal_and_a_malformed_version_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        _change()
    with pytest.raises(ValueError, match="pattern"):
        DefaultPolicyVersion(version_id="v2; drop", document_sha256=DIGEST, statement_count=1)
    with pytest.raises(ValueError, match="pattern"):
        DefaultPolicyVersion(version_id="v2", document_sha256="not-a-digest", statement_count=1)


def test_an_aws_managed_or_foreign_policy_is_refused() -> None:
    for arn in ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::210987654321:policy/TeamPowerUser"):
        with pytest.raises(ValueError, match="customer-managed policy of this account"):
            _change(1, arn=arn)


def test_the_approver_sees_the_version_the_statements_and_that_the_old_version_stays() -> None:
    change = _static()
    assert change.summary() == "Remove 1 admin statements from policy TeamPowerUser"
    assert change.describe_before() == "default version v2: 3 statements (document sha256 abababababab)"
    assert change.describe_after() == (
        "a new default version without statements 1 (allow * on *), 2 kept; v2 stays as a non-default version for undo"
    )
    undo = Undo.of(change)
    assert undo.describe_after() == change.describe_before()
    assert all(len(value) <= 255 for value in change.approval_properties().values())


def test_the_session_may_touch_this_policy_only() -> None:
    change = _static()
    for phase, mutating in (("apply", "iam:CreatePolicyVersion"), ("undo", "iam:SetDefaultPolicyVersion")):
        [statement] = change.session_policy_statements(phase)  # type: ignore[arg-type]
        assert statement["Resource"] == [POLICY]
        assert mutating in statement["Action"]
    assert "iam:DeletePolicyVersion" not in {
        *ReplaceAdminPolicyVersion.APPLY_ACTIONS,
        *ReplaceAdminPolicyVersion.UNDO_ACTIONS,
    }


def test_the_change_never_carries_the_document() -> None:
    dumped: Any = _static().model_dump(mode="json")
    assert set(dumped["before"]) == {"version_id", "document_sha256", "statement_count"}
    assert set(dumped["after"]) == {"indices"}
