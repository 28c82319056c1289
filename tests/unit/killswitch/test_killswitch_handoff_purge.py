"""Unconsumed handoffs are purged: every one by the trigger, an execution's own when it ends (the EventBridge status
change reaches the kill switch's handler). The purge runs under KillSwitchRole as template.yaml grants it, evaluated
as IAM would (tests.support.role_enforcer): it finds handoffs through the keys-only index and deletes them with
BatchWriteItem, and never holds a ciphertext."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aegis.audit import read_trail
from aegis_killswitch.errors import HandoffPurgeFailed, InvalidKillSwitchRequest
from aegis_killswitch.handoffs import HandoffPurger
from aegis_killswitch.requests import STATUS_CHANGE_DETAIL_TYPE, STATUS_CHANGE_SOURCE, ExecutionEnded
from aegis_killswitch.settings import KillSwitchSettings
from tests.support.killswitch_world import ACCOUNT, HANDOFF_TABLE, REGION, AwsWorld, Context, kill_switch_for, step_of
from tests.support.lambda_app import load_app
from tests.support.role_enforcer import RoleEnforcer

TABLES = {HANDOFF_TABLE: "HandoffTable", "aegis-audit": "AuditTable", "aegis-control": "ControlTable"}


def status_change(world: AwsWorld, name: str, status: str = "ABORTED", **detail: Any) -> dict[str, Any]:
    """The event EventBridge delivers for a Standard workflow's status change."""
    return {
        "version": "0",
        "id": "6f9d0d2c-0000-4000-8000-000000000000",
        "detail-type": STATUS_CHANGE_DETAIL_TYPE,
        "source": STATUS_CHANGE_SOURCE,
        "account": ACCOUNT,
        "time": "2030-01-01T00:00:00Z",
        "region": REGION,
        "resources": [world.execution_arn(name)],
        "detail": {
            "executionArn": world.execution_arn(name),
            "stateMachineArn": world.state_machine_arn,
            "name": name,
            "status": status,
            "startDate": 1893456000000,
            "stopDate": 1893456060000,
            "input": "{}",
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            **detail,
        },
    }


class Recording:
    """Everything DynamoDB answered the purger, to show no ciphertext ever reached it."""

    def __init__(self, client: Any) -> None:
        self.answers: list[str] = []
        client.meta.events.register("after-call.dynamodb", self._record)

    def _record(self, parsed: dict[str, Any], **_: Any) -> None:
        self.answers.append(json.dumps(parsed, default=str))


def purging_table(aws_world: AwsWorld) -> tuple[Any, RoleEnforcer, Recording]:
    """The handoff table as the kill switch reaches it: a client of its own, under KillSwitchRole."""
    import boto3

    table = boto3.resource("dynamodb", region_name=REGION).Table(HANDOFF_TABLE)
    enforcer = RoleEnforcer("KillSwitchRole", TABLES)
    enforcer.install(table.meta.client)
    return table, enforcer, Recording(table.meta.client)


def test_the_trigger_purges_every_unconsumed_handoff_without_reading_one(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    aws_world.create_mission_state_machine()
    sealed = {aws_world.put_handoff(aws_world.execution_arn(f"m-{n % 3}")) for n in range(30)}  # more than one batch
    switch = kill_switch_for(aws_world, settings)
    switch.clients.handoff_table, enforcer, recording = purging_table(aws_world)

    report = switch.trigger(reason="drill", requested_by="alice")

    purge = step_of(report, "purge_handoffs")
    assert purge.ok, purge.reason
    assert purge.details == {"found": 30, "deleted": 30}
    assert aws_world.handoff_ids() == set()
    assert len(sealed) == 30
    assert enforcer.seen, "the purge went through the enforced client"
    assert all(allowed for *_, allowed in enforcer.seen), enforcer.seen
    assert {(action, table) for action, table, _, _ in enforcer.seen} == {
        ("dynamodb:Scan", "HandoffTable/index/by-execution"),
        ("dynamodb:BatchWriteItem", "HandoffTable"),
    }
    assert any("handoff_id" in answer for answer in recording.answers), "the index answered with the keys"
    assert not [answer for answer in recording.answers if "ciphertext" in answer or "encrypted_key" in answer]


def test_an_ended_execution_purges_its_own_handoffs_only_and_audits_it(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    aws_world.create_mission_state_machine()
    mine = {aws_world.put_handoff(aws_world.execution_arn("m-stopped")) for _ in range(2)}
    others = {aws_world.put_handoff(aws_world.execution_arn("m-running"))}
    switch = kill_switch_for(aws_world, settings)
    switch.clients.handoff_table, enforcer, recording = purging_table(aws_world)

    outcome = switch.purge_ended_execution(aws_world.execution_arn("m-stopped"), "ABORTED")

    assert outcome.ok, outcome.reason
    assert outcome.details["found"] == 2
    assert aws_world.handoff_ids() == others
    assert not mine & aws_world.handoff_ids()
    assert {(action, table) for action, table, _, allowed in enforcer.seen if allowed} == {
        ("dynamodb:Query", "HandoffTable/index/by-execution"),
        ("dynamodb:BatchWriteItem", "HandoffTable"),
    }
    assert not [answer for answer in recording.answers if "ciphertext" in answer]
    record, ended = sorted(read_trail(aws_world.audit, "m-stopped"), key=lambda item: item["action"])
    assert (record["action"], record["outcome"]) == ("handoff.purged", "ok")
    assert json.loads(record["details"])["status"] == "ABORTED"
    # An execution that did not succeed never resumed the agent: the end is on the mission's record for its report.
    assert (ended["action"], ended["outcome"]) == ("mission.ended", "aborted")


def test_batch_handoffs_are_purged_like_single_ones_by_the_trigger_and_at_the_end_of_their_execution(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    """One approval of a batch seals a handoff per change (each bound to its change's digest): they are ordinary
    handoffs of their execution, every one of them purged, never read."""
    aws_world.create_mission_state_machine()
    ended = aws_world.put_batch_handoffs(aws_world.execution_arn("m-batch-ended"), 25)
    running = aws_world.put_batch_handoffs(aws_world.execution_arn("m-batch-running"), 25)
    single = {aws_world.put_handoff(aws_world.execution_arn("m-batch-running"))}
    switch = kill_switch_for(aws_world, settings)
    switch.clients.handoff_table, enforcer, recording = purging_table(aws_world)

    outcome = switch.purge_ended_execution(aws_world.execution_arn("m-batch-ended"), "SUCCEEDED")
    assert (outcome.ok, outcome.details["found"], outcome.details["deleted"]) == (True, 25, 25)
    assert aws_world.handoff_ids() == running | single

    report = switch.trigger(reason="drill", requested_by="alice")
    purge = step_of(report, "purge_handoffs")
    assert purge.ok, purge.reason
    assert purge.details == {"found": 26, "deleted": 26}
    assert aws_world.handoff_ids() == set()
    assert not ended & running
    assert all(allowed for *_, allowed in enforcer.seen), enforcer.seen
    assert not [answer for answer in recording.answers if "ciphertext" in answer or "encrypted_key" in answer]


def test_an_execution_that_left_nothing_adds_no_audit_record(settings: KillSwitchSettings, aws_world: AwsWorld) -> None:
    aws_world.create_mission_state_machine()
    outcome = kill_switch_for(aws_world, settings).purge_ended_execution(
        aws_world.execution_arn("m-clean"), "SUCCEEDED"
    )
    assert outcome.ok
    assert outcome.details["found"] == 0
    assert read_trail(aws_world.audit, "m-clean") == []


def test_the_kill_switch_role_cannot_read_a_handoff(aws_world: AwsWorld) -> None:
    handoff_id = aws_world.put_handoff(aws_world.execution_arn("m-1"))
    table, _, _ = purging_table(aws_world)
    for attempt in (
        lambda: table.get_item(Key={"handoff_id": handoff_id}),
        table.scan,
        lambda: table.query(KeyConditionExpression="handoff_id = :h", ExpressionAttributeValues={":h": handoff_id}),
        # ReturnValuesOnConditionCheckFailure would hand the item back, and no IAM condition key can forbid it:
        # DeleteItem is not the kill switch's to call.
        lambda: table.delete_item(
            Key={"handoff_id": handoff_id},
            ConditionExpression="attribute_not_exists(handoff_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert handoff_id in aws_world.handoff_ids()


class Throttled:
    """A table whose BatchWriteItem leaves items unprocessed the first `times` calls, as DynamoDB does when
    throttled."""

    def __init__(self, table: Any, times: int) -> None:
        self.name = table.name
        self.query = table.query
        self.scan = table.scan
        self._client = table.meta.client
        self._times = times
        self.calls = 0
        self.meta = self

    @property
    def client(self) -> Any:
        return self

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self._times:
            return {"UnprocessedItems": RequestItems}
        return dict(self._client.batch_write_item(RequestItems=RequestItems))


def test_unprocessed_deletes_are_sent_again_and_what_stays_is_reported(aws_world: AwsWorld) -> None:
    for _ in range(3):
        aws_world.put_handoff(aws_world.execution_arn("m-1"))
    pauses: list[float] = []

    once = Throttled(aws_world.handoffs, times=2)
    result = HandoffPurger(once, sleep=pauses.append).of_execution(aws_world.execution_arn("m-1"))
    assert (result.ok, result.found, result.deleted) == (True, 3, 3)
    assert pauses == [0.05, 0.1]
    assert aws_world.handoff_ids() == set()

    sealed = {aws_world.put_handoff(aws_world.execution_arn("m-2")) for _ in range(2)}
    always = Throttled(aws_world.handoffs, times=100)
    result = HandoffPurger(always, sleep=pauses.append).of_execution(aws_world.execution_arn("m-2"))
    assert not result.ok
    assert set(result.left) == sealed
    assert always.calls == 5


# --------------------------------------------------------------------------------------------------- the event


def test_the_status_change_of_another_state_machine_or_a_running_execution_is_refused(aws_world: AwsWorld) -> None:
    machine = aws_world.state_machine_arn
    ExecutionEnded.parse(status_change(aws_world, "m-1"), machine)
    bad: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda e: e["detail"].update(status="RUNNING"), "status"),
        (lambda e: e["detail"].update(stateMachineArn=machine + "-other"), "another state machine"),
        (
            lambda e: e["detail"].update(executionArn=e["detail"]["executionArn"].replace("aegis-mission", "x")),
            "not one of the mission state machine",
        ),
        (lambda e: e["detail"].update(executionArn="not an arn"), "executionArn"),
        (lambda e: e.update(source="aegis.scan"), "source"),
    ]
    for mutate, why in bad:
        event = status_change(aws_world, "m-1")
        mutate(event)
        with pytest.raises(InvalidKillSwitchRequest, match=why):
            ExecutionEnded.parse(event, machine)


def test_the_handler_purges_on_a_status_change_and_raises_when_the_purge_fails(
    settings: KillSwitchSettings, aws_world: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_app("killswitch")
    aws_world.create_mission_state_machine()
    gone = aws_world.put_handoff(aws_world.execution_arn("m-ended"))
    kept = aws_world.put_handoff(aws_world.execution_arn("m-other"))

    answer = app.handler(status_change(aws_world, "m-ended", "FAILED"), Context())

    assert answer["ok"] is True
    assert answer["found"] == 1
    assert answer["execution_arn"] == aws_world.execution_arn("m-ended")
    assert aws_world.handoff_ids() == {kept}
    assert gone not in aws_world.handoff_ids()
    # Nothing else of the kill switch ran: no halt, no step of a trigger.
    assert aws_world.control.scan()["Items"] == []

    aws_world.put_handoff(aws_world.execution_arn("m-throttled"))
    monkeypatch.setattr(
        app.kill_switch().clients, "handoff_table", Throttled(aws_world.handoffs, times=100), raising=True
    )
    with pytest.raises(HandoffPurgeFailed, match="could not be deleted"):
        app.handler(status_change(aws_world, "m-throttled", "TIMED_OUT"), Context())
    record, ended = sorted(read_trail(aws_world.audit, "m-throttled"), key=lambda item: item["action"])
    assert (record["action"], record["outcome"]) == ("handoff.purged", "failed")
    assert (ended["action"], ended["outcome"]) == ("mission.ended", "timed_out")


def test_a_trigger_that_finds_no_handoff_is_fine(settings: KillSwitchSettings, aws_world: AwsWorld) -> None:
    aws_world.create_mission_state_machine()
    switch = kill_switch_for(aws_world, settings)
    switch.clock = lambda: datetime(2030, 1, 1, tzinfo=UTC)
    report = switch.trigger(reason="drill", requested_by="alice")
    purge = step_of(report, "purge_handoffs")
    assert purge.ok
    assert purge.details == {"found": 0, "deleted": 0}
