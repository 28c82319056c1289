"""Least privilege on the hand-off, run rather than only read: the handoff code under the roles of template.yaml,
evaluated as IAM would (tests.support.role_enforcer). The executor can only consume (a DeleteItem that returns the
item), and discards an unused handoff with that same call; the approval side can only seal; nobody else can touch
the table. The matrix in tests/unit/template/ proves the grants themselves; this proves the code needs no
more than they give."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis_auth.errors import HandoffAlreadyConsumed
from aegis_auth.handoff import HandoffStore
from aegis_auth.handoff_table import EXECUTION_INDEX, HANDOFF_KEY
from tests.support.role_enforcer import RoleEnforcer
from tests.support.stack import create_declared_table

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aegis-mission:m-1"
OTHER_EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aegis-mission:m-2"
DIGEST = "c" * 64
NOW = 1_800_000_000.0
TOKEN_RESPONSE = {"access_token": "access-token-value-of-the-approver", "token_type": "Bearer", "expires_in": 600}
TABLES = {"Handoff": "HandoffTable"}


@pytest.fixture
def table(aws: boto3.Session) -> Any:
    # As template.yaml declares it, keys-only index included.
    return create_declared_table(boto3.resource("dynamodb"), "HandoffTable", "Handoff")


@pytest.fixture
def key_id(aws: boto3.Session) -> str:
    return str(boto3.client("kms").create_key(Description="handoff")["KeyMetadata"]["KeyId"])


def store_as(role: str, key_id: str | None = None) -> tuple[HandoffStore, Any, RoleEnforcer]:
    """A HandoffStore on a table client of its own that only `role`'s permissions let through."""
    table = boto3.resource("dynamodb").Table("Handoff")
    enforcer = RoleEnforcer(role, TABLES)
    enforcer.install(table.meta.client)
    return HandoffStore(table, boto3.client("kms"), key_id=key_id, clock=lambda: NOW), table, enforcer


def sealed(key_id: str, execution_arn: str = EXECUTION) -> str:
    approval, _, _ = store_as("ApprovalRole", key_id)
    return approval.seal(
        TOKEN_RESPONSE,
        execution_arn=execution_arn,
        change_id="chg-0123456789abcdef0123",
        change_digest=DIGEST,
        approver_sub="auth0|approver",
        expires_at=int(NOW) + 600,
    )


def denied(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    return str(refused.value)


def test_the_approval_role_seals_and_the_executor_role_consumes(table: Any, key_id: str) -> None:
    handoff_id = sealed(key_id)
    executor, _, enforcer = store_as("ExecutorRole")

    opened = executor.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)

    assert opened.token_response == TOKEN_RESPONSE
    assert enforcer.seen == [
        ("dynamodb:DeleteItem", "HandoffTable", {"dynamodb:ReturnValues": "ALL_OLD"}, True),
    ]


def test_the_executor_role_discards_with_the_consume_call_and_opens_nothing(table: Any, key_id: str) -> None:
    handoff_id = sealed(key_id)
    executor, _, enforcer = store_as("ExecutorRole")
    kms_calls: list[str] = []
    executor._kms.meta.events.register("before-call.kms", lambda model, **_: kms_calls.append(model.name))

    assert executor.discard(handoff_id, execution_arn=EXECUTION) is True

    assert "Item" not in table.get_item(Key={HANDOFF_KEY: handoff_id})
    assert kms_calls == [], "a discarded handoff is never opened"
    assert enforcer.seen == [
        ("dynamodb:DeleteItem", "HandoffTable", {"dynamodb:ReturnValues": "ALL_OLD"}, True),
    ]
    # Once gone, discarding again and consuming find nothing.
    assert executor.discard(handoff_id, execution_arn=EXECUTION) is False
    with pytest.raises(HandoffAlreadyConsumed):
        executor.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)


def test_an_executor_discards_only_the_handoffs_of_its_own_execution(table: Any, key_id: str) -> None:
    handoff_id = sealed(key_id, execution_arn=OTHER_EXECUTION)
    executor, _, _ = store_as("ExecutorRole")

    assert executor.discard(handoff_id, execution_arn=EXECUTION) is False
    assert executor.discard("", execution_arn=EXECUTION) is False

    assert "Item" in table.get_item(Key={HANDOFF_KEY: handoff_id})


def test_the_executor_role_has_no_call_that_only_reads_or_only_deletes_a_handoff(table: Any, key_id: str) -> None:
    handoff_id = sealed(key_id)
    _, as_executor, _ = store_as("ExecutorRole")
    key = {HANDOFF_KEY: handoff_id}

    denied(lambda: as_executor.get_item(Key=key))
    denied(as_executor.scan)
    denied(
        lambda: as_executor.query(
            IndexName=EXECUTION_INDEX,
            KeyConditionExpression="execution_arn = :e",
            ExpressionAttributeValues={":e": EXECUTION},
        )
    )
    # A delete that would not hand back what it removed is not the consume call either.
    denied(lambda: as_executor.delete_item(Key=key))
    denied(lambda: as_executor.delete_item(Key=key, ReturnValues="NONE"))
    denied(lambda: as_executor.put_item(Item={**key, "kind": "approval"}))
    denied(
        lambda: as_executor.update_item(
            Key=key, UpdateExpression="SET taken = :t", ExpressionAttributeValues={":t": True}, ReturnValues="ALL_OLD"
        )
    )

    assert "Item" in table.get_item(Key=key), "nothing the executor tried removed or changed it"


def test_the_approval_role_cannot_read_a_sealed_handoff_back(table: Any, key_id: str) -> None:
    handoff_id = sealed(key_id)
    _, as_approval, _ = store_as("ApprovalRole")

    denied(lambda: as_approval.get_item(Key={HANDOFF_KEY: handoff_id}))
    denied(lambda: as_approval.delete_item(Key={HANDOFF_KEY: handoff_id}, ReturnValues="ALL_OLD"))
    denied(as_approval.scan)


@pytest.mark.parametrize("role", ["AgentRole", "StateMachineRole"])
def test_other_roles_cannot_touch_the_handoff_table(table: Any, key_id: str, role: str) -> None:
    handoff_id = sealed(key_id)
    _, as_other, _ = store_as(role)
    denied(lambda: as_other.get_item(Key={HANDOFF_KEY: handoff_id}))
    denied(lambda: as_other.delete_item(Key={HANDOFF_KEY: handoff_id}, ReturnValues="ALL_OLD"))


def test_the_enforcer_follows_the_template_not_the_code(table: Any, key_id: str) -> None:
    """The enforcer refuses what the role lacks even when moto would answer: without it, these tests prove
    nothing. A role granted the read (a broken template) would pass where ExecutorRole is refused."""
    from tests.support.stack import build_stack, pristine_template

    template = pristine_template()
    statements = template["Resources"]["ExecutorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    consume = next(s for s in statements if s["Sid"] == "ConsumeHandoffs")
    consume["Action"] = ["dynamodb:DeleteItem", "dynamodb:GetItem"]
    consume.pop("Condition")
    handoff_id = sealed(key_id)
    table_client = boto3.resource("dynamodb").Table("Handoff")
    RoleEnforcer("ExecutorRole", TABLES, build_stack(template)).install(table_client.meta.client)

    assert table_client.get_item(Key={HANDOFF_KEY: handoff_id})["Item"]["kind"] == "approval"
