from __future__ import annotations

from typing import Any

import boto3
import pytest

from aegis.audit import AuditLog, read_trail
from aegis.control import HALT_ITEM, Halted, ensure_not_halted, halt_state
from aegis.secrets_guard import SecretShapedValue
from tests.support.stack import create_declared_tables


@pytest.fixture
def tables(aws: boto3.Session) -> tuple[Any, Any]:
    declared = create_declared_tables(aws.resource("dynamodb"), {"audit": "AuditTable", "control": "ControlTable"})
    return declared["audit"], declared["control"]


def test_audit_appends_in_order_and_never_overwrites(tables: tuple[Any, Any]) -> None:
    audit, _ = tables
    log = AuditLog(audit, actor="agent")
    first = log.append("m-1", "mission.created", "ok", regions=["us-east-1"])
    log.append("m-1", "plan.frozen", "ok", changes=3)
    with pytest.raises(audit.meta.client.exceptions.ConditionalCheckFailedException):
        audit.put_item(Item=first, ConditionExpression="attribute_not_exists(seq)")
    trail = read_trail(audit, "m-1")
    assert [item["action"] for item in trail] == ["mission.created", "plan.frozen"]
    assert trail[0]["checksum"] == first["checksum"]


def test_audit_refuses_a_secret_and_writes_nothing(tables: tuple[Any, Any]) -> None:
    audit, _ = tables
    with pytest.raises(SecretShapedValue):
        AuditLog(audit, actor="approval").append("m-2", "approval.granted", "ok", token="AKIA" + "IOSFODNN7EXAMPLE")
    assert read_trail(audit, "m-2") == []


def test_halt_flag(tables: tuple[Any, Any]) -> None:
    _, control = tables
    assert halt_state(control) is None
    ensure_not_halted(control)
    control.put_item(Item={"name": HALT_ITEM, "engaged": True, "engaged_at": "now", "engaged_by": "oncall"})
    with pytest.raises(Halted, match="oncall"):
        ensure_not_halted(control)
    control.put_item(Item={"name": HALT_ITEM, "engaged": False})
    ensure_not_halted(control)
