"""remove-inline-policy-admin-statements: only ever removes Allow statements from the named inline policies of one
role, user or group of this account, carrying them so that undo can put exactly them back."""

from __future__ import annotations

import secrets
import string

import pytest

from aegis.catalogue import Undo
from aegis.catalogue.kinds.remove_inline_policy_admin_statements import (
    AdminStatement,
    InlineAdminPolicies,
    InlineAdminPolicy,
    RemoveInlinePolicyAdminStatements,
)
from aegis.secrets_guard import WITHHELD
from tests.support.changes import ACCOUNT, COMMON, one_of_each_kind

ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service/ci-deployer"


def _policy(name: str, *indices: int, count: int = 3, statement: dict | None = None) -> InlineAdminPolicy:
    return InlineAdminPolicy(
        name=name,
        document_sha256="cd" * 32,
        statement_count=count,
        admin_statements=tuple(AdminStatement(index=i, statement=statement or ALLOW_ALL) for i in indices),
        frame={"Version": "2012-10-17"},
    )


def _change(
    *policies: InlineAdminPolicy, arn: str = ROLE, after: tuple[InlineAdminPolicy, ...] = ()
) -> RemoveInlinePolicyAdminStatements:
    return RemoveInlinePolicyAdminStatements.propose(
        check_id="iam-inline-policy-admin",
        resource_arn=arn,
        before=InlineAdminPolicies(policies=policies),
        after=InlineAdminPolicies(policies=after),
        **COMMON,
    )


def test_removing_a_deny_is_refused() -> None:
    with pytest.raises(ValueError, match="only Allow statements"):
        _change(_policy("guard", 0, statement={"Effect": "Deny", "Action": "*", "Resource": "*"}))


def test_after_must_keep_a_strict_subset_of_the_policies() -> None:
    deploy = _policy("deploy", 1)
    with pytest.raises(ValueError, match="strict subset"):
        _change(deploy, after=(deploy,))
    with pytest.raises(ValueError, match="strict subset"):
        _change(deploy, after=(_policy("other", 0),))
    with pytest.raises(ValueError, match="strict subset"):
        _change()


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{ACCOUNT}:policy/deploy",
        f"arn:aws:iam::{ACCOUNT}:instance-profile/deploy",
        "arn:aws:iam::210987654321:role/ci-deployer",
        f"arn:aws:iam::{ACCOUNT}:role/",
        f"arn:aws:s3:::{ACCOUNT}-role/x",
    ],
)
def test_only_a_role_user_or_group_of_this_account_is_accepted(arn: str) -> None:
    with pytest.raises(ValueError, match="role, user or group of this account"):
        _change(_policy("deploy", 1), arn=arn)


def test_statements_must_be_distinct_statements_of_the_document() -> None:
    with pytest.raises(ValueError, match="distinct statements"):
        _policy("deploy", 1, 1)
    with pytest.raises(ValueError, match="distinct statements"):
        _policy("deploy", 3, count=3)
    with pytest.raises(ValueError, match="named twice"):
        InlineAdminPolicies(policies=(_policy("deploy", 0), _policy("deploy", 1)))
    with pytest.raises(ValueError, match="holds no statement"):
        InlineAdminPolicy(
            name="deploy",
            document_sha256="cd" * 32,
            statement_count=1,
            admin_statements=(AdminStatement(index=0, statement=ALLOW_ALL),),
            frame={"Statement": [ALLOW_ALL]},
        )


def test_the_approver_sees_each_policy_and_whether_it_is_deleted() -> None:
    change = _change(_policy("deploy", 1), _policy("break-glass", 0, count=1))
    assert change.summary() == "Remove * on * from 2 inline policies of role ci-deployer"
    assert change.describe_before() == (
        "deploy: statements 1 of 3 allow * on * (sha256 cdcdcdcdcdcd); "
        "break-glass: statements 0 of 1 allow * on * (sha256 cdcdcdcdcdcd)"
    )
    assert change.describe_after() == (
        "deploy: statements 1 removed, 2 kept; break-glass: deleted (every statement allowed * on *)"
    )
    assert Undo.of(change).describe_after() == change.describe_before()


def test_a_name_shaped_like_a_secret_is_withheld_from_the_approver_but_kept_in_the_change() -> None:
    # Shaped like an access key id, made at run time: no key material in the repository.
    name = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    change = _change(_policy(name, 1))
    assert change.before.policies[0].name == name
    assert name not in change.describe_before()
    assert WITHHELD in change.describe_before()


def test_too_many_policies_to_show_at_once_are_split_one_part_per_policy() -> None:
    policies = tuple(_policy(f"{'p' * 100}-{n}", 0, 1, 2, count=4) for n in range(4))
    change = _change(*policies)
    parts = change.split_for_approval()
    assert len(parts) > 1
    assert [p.name for part in parts for p in part.cleaned] == [p.name for p in policies]  # type: ignore[attr-defined]
    assert all(len(v) <= 255 for part in parts for v in part.approval_properties().values())


def test_the_session_may_touch_this_entity_only() -> None:
    change = next(c for c in one_of_each_kind() if isinstance(c, RemoveInlinePolicyAdminStatements))
    for phase in ("apply", "undo"):
        [statement] = change.session_policy_statements(phase)  # type: ignore[arg-type]
        assert statement["Resource"] == [
            f"arn:aws:iam::{ACCOUNT}:role/*/ci-deployer",
            f"arn:aws:iam::{ACCOUNT}:role/ci-deployer",
        ]
    assert (change.entity_type, change.entity_name) == ("role", "ci-deployer")
    user = _change(_policy("deploy", 1), arn=f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert user.scoped_resources("apply") == [
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        f"arn:aws:iam::{ACCOUNT}:user/*/alice",
    ]
