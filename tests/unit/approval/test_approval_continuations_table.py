"""Continuations and task claims (a task token, a CIBA auth_req_id) live in a table of the approval role's own, not
beside the sealed handoffs: the executor consumes from Handoff and cannot read a continuation, nor can the kill
switch. Run under the roles of template.yaml, evaluated as IAM would (tests.support.role_enforcer)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from aegis_approval.continuation import CONTINUATION_PREFIX, ITEM_KEY
from tests.support.approval_world import TABLES, World
from tests.support.changes import one_of_each_kind
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble, oauth_error
from tests.support.role_enforcer import RoleEnforcer
from tests.unit.approval.test_approval_service import APPROVER, approval

CHANGE = one_of_each_kind()[0]
PENDING = oauth_error(400, "authorization_pending")


def test_a_continued_approval_needs_nothing_beyond_the_approval_role_and_keeps_continuations_apart(
    world: World,
) -> None:
    provider = ProviderDouble(clock=world.clock)
    service = world.service(world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER), provider.client())
    client = world.tables["Handoff"].meta.client
    enforcer = RoleEnforcer("ApprovalRole", TABLES)
    enforcer.install(client)
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.extend([PENDING, PENDING, PENDING, approval()])

    assert service.handle(event, world.lambda_time(44)) == {"outcome": "continued"}
    (invocation,) = world.self_invocations
    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "approved"}

    enforcer.uninstall(client)
    assert all(allowed for *_, allowed in enforcer.seen), [s for s in enforcer.seen if not s[-1]]
    used = {(action, table) for action, table, _, _ in enforcer.seen}
    assert ("dynamodb:PutItem", "HandoffTable") in used
    assert {("dynamodb:PutItem", "ContinuationsTable"), ("dynamodb:UpdateItem", "ContinuationsTable")} <= used
    # The Handoff table holds the sealed approval and nothing else; task token and auth_req_id were never there.
    assert [item["kind"] for item in world.tables["Handoff"].scan()["Items"]] == ["approval"]
    kept = {str(item[ITEM_KEY]): item for item in world.tables["Continuations"].scan()["Items"]}
    # The approver's pacing item (aegis_approval.pacing) is kept here too, by UpdateItem alone.
    assert {item["kind"] for item in kept.values()} == {"continuation", "claim", "mission_wait", "pace"}
    assert invocation["continuation_id"] in kept
    assert invocation["continuation_id"].startswith(CONTINUATION_PREFIX)


@pytest.mark.parametrize("role", ["ExecutorRole", "KillSwitchRole", "AgentRole"])
def test_no_other_role_can_read_or_take_a_continuation(world: World, role: str) -> None:
    world.tables["Continuations"].put_item(
        Item={ITEM_KEY: "cont-0123", "kind": "continuation", "task_token": "t", "auth_req_id": "a"}
    )
    client = world.tables["Continuations"].meta.client
    RoleEnforcer(role, TABLES).install(client)
    table: Any = world.tables["Continuations"]
    key = {ITEM_KEY: "cont-0123"}
    for attempt in (
        lambda: table.get_item(Key=key),
        table.scan,
        lambda: table.update_item(Key=key, UpdateExpression="REMOVE task_token", ReturnValues="ALL_OLD"),
        lambda: table.delete_item(Key=key, ReturnValues="ALL_OLD"),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
