"""An approval the executor will not use is deleted unopened, and the executor needs nothing on the Handoff table but
the consume call: its whole pipeline runs under ExecutorRole as template.yaml grants it, evaluated as IAM would
(tests.support.role_enforcer), condition on `dynamodb:ReturnValues` included."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from aegis_executor.errors import TokenExchangeFailed
from tests.support.changes import CASES
from tests.support.executor_world import TABLES, World, handoff_of
from tests.support.role_enforcer import RoleEnforcer


def enforce_executor_role(world: World) -> RoleEnforcer:
    """ExecutorRole on the executor's own DynamoDB client (every table it reaches goes through it)."""
    enforcer = RoleEnforcer("ExecutorRole", TABLES)
    enforcer.install(world.app.executor().handoffs._table.meta.client)
    return enforcer


def handoff_calls(enforcer: RoleEnforcer) -> list[tuple[str, dict[str, str], bool]]:
    return [(action, context, allowed) for action, table, context, allowed in enforcer.seen if table == "HandoffTable"]


def test_a_change_applied_under_executor_role_touches_the_handoff_only_to_consume_it(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    payload = world.payload(case.change, world.approve(case.change))
    enforcer = enforce_executor_role(world)

    assert world.invoke(payload)["outcome"] == "applied"

    assert handoff_calls(enforcer) == [("dynamodb:DeleteItem", {"dynamodb:ReturnValues": "ALL_OLD"}, True)]
    assert all(allowed for *_, allowed in enforcer.seen), [s for s in enforcer.seen if not s[-1]]


def test_a_halted_executor_discards_the_approval_under_executor_role(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    world.halt()
    enforcer = enforce_executor_role(world)

    assert world.invoke(world.payload(case.change, approval))["outcome"] == "halted"

    assert handoff_calls(enforcer) == [("dynamodb:DeleteItem", {"dynamodb:ReturnValues": "ALL_OLD"}, True)]
    assert not world.handoff_exists(handoff_of(approval, case.change))
    assert world.audit("executor.approval_verified") == []


def test_an_unusable_provider_before_consuming_discards_the_approval_unopened(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    world.emulator.set_down(True)
    try:
        with pytest.raises(TokenExchangeFailed):
            world.invoke(world.payload(case.change, approval))
    finally:
        world.emulator.set_down(False)

    # TokenExchangeFailed is not retried: nothing would ever use this approval again.
    assert not world.handoff_exists(handoff_of(approval, case.change))
    assert [item["outcome"] for item in world.audit("executor.approval_discarded")] == ["discarded"]
    assert world.audit("executor.approval_verified") == []
    assert world.sts_calls == []


def test_a_discard_that_fails_changes_nothing_of_the_outcome(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    world.halt()
    client = world.app.executor().handoffs._table.meta.client

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "unavailable"}}, "DeleteItem")

    client.meta.events.register("before-call.dynamodb.DeleteItem", refuse, unique_id="refuse-delete")
    try:
        result = world.invoke(world.payload(case.change, approval))
    finally:
        client.meta.events.unregister("before-call.dynamodb.DeleteItem", unique_id="refuse-delete")

    assert result["outcome"] == "halted"
    assert [item["outcome"] for item in world.audit("executor.approval_discarded")] == ["failed"]
    # Left to the kill switch's purge (trigger, or the end of the execution) and, last, to the TTL.
    assert world.handoff_exists(handoff_of(approval, case.change))
