"""Which role the executor assumes for a change's account, and the check of STS's answer that comes before any use
of the session. The handler end to end, with several moto accounts, is in
tests/integration/executor/test_executor_member_accounts.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from aegis.catalogue import ChangeBase, Undo
from aegis_executor import credentials
from aegis_executor.credentials import (
    SessionInWrongAccount,
    account_of_arn,
    assume_remediation_role,
    partition_of_arn,
)
from aegis_executor.errors import InvalidSettings, UndoDisabled, WrongAccount
from aegis_executor.execute import Executor
from aegis_executor.settings import ExecutorSettings
from tests.support.changes import ACCOUNT, one_of_each_kind
from tests.support.partitions import moved_to

MEMBER = "210987654321"
OWN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aegis-RemediationRole-1A2B"
OWN_UNDO_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aegis-UndoRole-3C4D"
BASE_ENV = {
    "CONTROL_TABLE": "Control",
    "AUDIT_TABLE": "Audit",
    "HANDOFF_TABLE": "Handoff",
    "IDEMPOTENCY_TABLE": "Idempotency",
    "AUTH0_ISSUER": "https://tenant.example/",
    "AUTH0_CLIENT_ID": "executor",
    "AUTH0_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
    "AUTH0_AUDIENCE": "https://aegis.example/api",
    "APPROVAL_CLIENT_ID": "approval",
    "TOKEN_VAULT_CONNECTION": "aws",
    "REMEDIATION_ROLE_ARN": OWN_ROLE,
}


def in_account(change: ChangeBase, account: str) -> ChangeBase:
    return type(change).propose(
        **(
            change.model_dump(exclude={"kind", "change_id"})
            | {"account_id": account, "resource_arn": change.resource_arn.replace(f":{ACCOUNT}:", f":{account}:")}
        )
    )


def executor(**overrides: Any) -> Executor:
    values: dict[str, Any] = {
        "control_table": None,
        "audit_table": None,
        "handoffs": None,
        "oidc": None,
        "audience": "https://aegis.example/api",
        "approval_client_id": "approval",
        "connection": "aws",
        "remediation_role_arn": OWN_ROLE,
        "sts": None,
        "ledger": None,
        "undo_role_arn": OWN_UNDO_ROLE,
        "undo_connection": "aws-undo",
        "member_remediation_role_name": "AegisRemediationRole",
        "member_undo_role_name": "AegisUndoRole",
    }
    return Executor(**(values | overrides))


CHANGE = one_of_each_kind()[0]
MEMBER_CHANGE = in_account(CHANGE, MEMBER)


# --- settings -------------------------------------------------------------------------------------------------------


def test_the_member_role_names_come_from_the_template_environment() -> None:
    settings = ExecutorSettings.from_env(
        BASE_ENV | {"MEMBER_REMEDIATION_ROLE_NAME": "AegisRemediationRole", "MEMBER_UNDO_ROLE_NAME": "AegisUndoRole"}
    )
    assert (settings.member_remediation_role_name, settings.member_undo_role_name) == (
        "AegisRemediationRole",
        "AegisUndoRole",
    )
    # Undo disabled: the template sets the undo name empty.
    assert ExecutorSettings.from_env(BASE_ENV | {"MEMBER_UNDO_ROLE_NAME": ""}).member_undo_role_name == ""
    assert ExecutorSettings.from_env(BASE_ENV).member_remediation_role_name == ""


@pytest.mark.parametrize("name", ["MEMBER_REMEDIATION_ROLE_NAME", "MEMBER_UNDO_ROLE_NAME"])
@pytest.mark.parametrize("value", ["Aegis/Role", "role:*", "x" * 65, "a b"])
def test_a_member_role_name_that_is_not_an_iam_role_name_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(InvalidSettings, match=name) as invalid:
        ExecutorSettings.from_env(BASE_ENV | {name: value})
    assert type(invalid.value).__name__ == "Executor.InvalidSettings"


# --- the role of a change's account ----------------------------------------------------------------------------------


def test_the_deployments_own_account_is_its_remediation_roles() -> None:
    assert executor().own_account == ACCOUNT
    assert not executor().is_member_change(CHANGE)
    assert executor().is_member_change(MEMBER_CHANGE)


def test_an_own_account_change_is_applied_as_the_deployments_own_roles() -> None:
    assert executor().role_and_connection(CHANGE) == (OWN_ROLE, "aws")
    assert executor().role_and_connection(Undo.of(CHANGE)) == (OWN_UNDO_ROLE, "aws-undo")


def test_a_member_change_is_applied_as_the_members_role_of_the_configured_name_with_the_same_connection() -> None:
    assert executor().role_and_connection(MEMBER_CHANGE) == (
        f"arn:aws:iam::{MEMBER}:role/AegisRemediationRole",
        "aws",
    )
    assert executor().role_and_connection(Undo.of(MEMBER_CHANGE)) == (
        f"arn:aws:iam::{MEMBER}:role/AegisUndoRole",
        "aws-undo",
    )


def test_a_member_role_is_in_the_deployments_partition() -> None:
    gov = executor(remediation_role_arn=f"arn:aws-us-gov:iam::{ACCOUNT}:role/RemediationRole")
    change = in_account(moved_to(CHANGE, "us-gov-west-1"), MEMBER)
    assert gov.role_and_connection(change)[0] == f"arn:aws-us-gov:iam::{MEMBER}:role/AegisRemediationRole"


def test_what_no_role_can_apply_is_refused_before_the_approval_is_used() -> None:
    assert executor().refusal_before_use(CHANGE) is None
    assert executor().refusal_before_use(MEMBER_CHANGE) is None
    assert executor().refusal_before_use(Undo.of(MEMBER_CHANGE)) is None

    no_members = executor(member_remediation_role_name="", member_undo_role_name="")
    assert no_members.refusal_before_use(CHANGE) is None  # the own account is unaffected
    refusal = no_members.refusal_before_use(MEMBER_CHANGE)
    assert isinstance(refusal, WrongAccount)
    assert "MEMBER_REMEDIATION_ROLE_NAME" in str(refusal)

    no_member_undo = executor(member_undo_role_name="")
    assert no_member_undo.refusal_before_use(Undo.of(CHANGE)) is None
    assert isinstance(no_member_undo.refusal_before_use(Undo.of(MEMBER_CHANGE)), UndoDisabled)
    assert no_member_undo.refusal_before_use(MEMBER_CHANGE) is None

    no_undo = executor(undo_role_arn="", undo_connection="")
    for undo in (Undo.of(CHANGE), Undo.of(MEMBER_CHANGE)):
        refused = no_undo.refusal_before_use(undo)
        assert isinstance(refused, UndoDisabled)
        assert "UndoTokenVaultConnection" in str(refused)


# --- STS's answer ---------------------------------------------------------------------------------------------------


class Sts:
    """An STS client answering AssumeRoleWithWebIdentity with a session of `account`."""

    def __init__(self, account: str | None) -> None:
        self.account = account
        self.asked: list[dict[str, Any]] = []

    def assume_role_with_web_identity(self, **params: Any) -> dict[str, Any]:
        self.asked.append(params)
        answer: dict[str, Any] = {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": datetime(2026, 1, 1, tzinfo=UTC),
            }
        }
        if self.account is not None:
            name = params["RoleArn"].rsplit("/", 1)[-1]
            answer["AssumedRoleUser"] = {
                "Arn": f"arn:aws:sts::{self.account}:assumed-role/{name}/{params['RoleSessionName']}",
                "AssumedRoleId": "AROAEXAMPLE:session",
            }
        return answer


def test_a_session_in_the_changes_account_is_handed_over() -> None:
    sts = Sts(MEMBER)
    session, facts = assume_remediation_role(
        sts,
        role_arn=f"arn:aws:iam::{MEMBER}:role/AegisRemediationRole",
        change=MEMBER_CHANGE,
        web_identity_token=SecretStr("provider-token"),
    )
    assert session.region_name == MEMBER_CHANGE.region
    assert account_of_arn(facts.assumed_role_arn) == MEMBER


@pytest.mark.parametrize("answered", [ACCOUNT, "333344445555", None])
def test_a_session_in_another_account_is_refused_before_any_session_is_built(
    monkeypatch: pytest.MonkeyPatch, answered: str | None
) -> None:
    built: list[Any] = []
    monkeypatch.setattr(credentials.boto3, "Session", lambda *a, **k: built.append(k))
    sts = Sts(answered)
    with pytest.raises(SessionInWrongAccount) as refused:
        assume_remediation_role(
            sts,
            role_arn=f"arn:aws:iam::{MEMBER}:role/AegisRemediationRole",
            change=MEMBER_CHANGE,
            web_identity_token=SecretStr("provider-token"),
        )
    assert built == []  # the credentials never reached a session
    assert refused.value.expected_account == MEMBER
    assert "secret" not in str(refused.value)
    assert "token" not in str(refused.value)
    assert len(sts.asked) == 1


def test_arn_fields() -> None:
    assert account_of_arn(f"arn:aws:sts::{MEMBER}:assumed-role/R/s") == MEMBER
    assert partition_of_arn(f"arn:aws-cn:iam::{MEMBER}:role/R") == "aws-cn"
    for not_an_arn in ("", "arn:aws:sts", "AROA:x:y:z:a:b", f"{MEMBER}"):
        assert account_of_arn(not_an_arn) == ""
