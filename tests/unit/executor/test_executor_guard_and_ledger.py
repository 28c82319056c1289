"""The remediation session's guard (halt flag before each mutating call, declared operations only) and the ledger
that lets a retry after a crash return the first result."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from aegis.catalogue import Undo
from aegis_executor.credentials import HaltedBeforeMutation, MutationGuard, UndeclaredOperation
from aegis_executor.ledger import INTERRUPTED_REASON, Ledger
from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def test_the_halt_flag_is_read_before_every_mutating_call_and_stops_the_next_one() -> None:
    case = CASES["revoke-security-group-rules"]()
    change = case.change
    session = boto3.Session(region_name=REGION)
    checks: list[str] = []
    halted_after_first = iter([False, True])

    def is_halted() -> bool:
        checks.append("checked")
        return next(halted_after_first)

    guard = MutationGuard(change, is_halted)
    guard.install(session)
    fix = remediation_for(change)
    fix.read_current(session, change)
    assert checks == [], "reads do not consult the halt flag"
    ec2 = session.client("ec2")
    group = change.before.group_id  # type: ignore[attr-defined]
    ingress = [r.rule_id for r in change.revoked if not r.is_egress]  # type: ignore[attr-defined]
    ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=ingress[:1])
    with pytest.raises(HaltedBeforeMutation) as halted:
        ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=ingress[1:])
    assert halted.value.mutations_sent == 1
    assert guard.mutations_sent == ["ec2:RevokeSecurityGroupIngress"]
    remaining = {
        r["SecurityGroupRuleId"] for r in boto3.client("ec2").describe_security_group_rules()["SecurityGroupRules"]
    }
    assert ingress[0] not in remaining
    assert ingress[1] in remaining, "the halted call was never sent"


def test_operations_outside_the_phase_are_refused_before_they_are_sent() -> None:
    case = CASES["enable-kms-key-rotation"]()
    session = boto3.Session(region_name=REGION)
    MutationGuard(case.change, lambda: False).install(session)
    kms = session.client("kms")
    with pytest.raises(UndeclaredOperation):
        kms.disable_key_rotation(KeyId=case.change.resource_arn)  # an undo action, in an apply session
    with pytest.raises(UndeclaredOperation):
        kms.schedule_key_deletion(KeyId=case.change.resource_arn)
    kms.enable_key_rotation(KeyId=case.change.resource_arn)
    assert case.facts() is True

    undo_session = boto3.Session(region_name=REGION)
    MutationGuard(Undo.of(case.change), lambda: False).install(undo_session)
    with pytest.raises(UndeclaredOperation):
        undo_session.client("kms").enable_key_rotation(KeyId=case.change.resource_arn)
    undo_session.client("kms").disable_key_rotation(KeyId=case.change.resource_arn)
    assert case.facts() is False


@pytest.fixture
def idempotency_table() -> Any:
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    return dynamodb.create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_the_ledger_returns_the_recorded_result_of_the_same_change_in_the_same_execution(
    idempotency_table: Any,
) -> None:
    ledger = Ledger(idempotency_table, clock=lambda: 1_000_000.0)
    arn = "arn:aws:states:us-east-1:123456789012:execution:mission:m-1"
    assert ledger.recorded_result(arn, "chg-0") is None
    ledger.started(arn, "chg-0")
    interrupted = ledger.recorded_result(arn, "chg-0")
    assert interrupted == {
        "change_id": "chg-0",
        "outcome": "failed",
        "reason": INTERRUPTED_REASON,
        "verified_after": None,
    }
    result = {"change_id": "chg-0", "outcome": "applied", "reason": "", "verified_after": {"enabled": True}}
    ledger.finished(arn, "chg-0", result)
    assert ledger.recorded_result(arn, "chg-0") == result
    assert ledger.recorded_result(arn.replace("m-1", "m-2"), "chg-0") is None
    assert ledger.recorded_result(arn, "chg-1") is None
    item = idempotency_table.get_item(Key={"id": Ledger.key(arn, "chg-0")})["Item"]
    assert item["id"].startswith("executor-ledger#")
    assert int(item["expiration"]) > 1_000_000
