"""Faults of delivery and of stopping, on whole missions of the local stack:

- EventBridge delivers one scan event twice (it promises at-least-once delivery): once more after the agent handled
  it, and twice at the same moment. Either way one mission: one execution, one approval request per change, each
  change applied once.
- An operator stops the mission's Step Functions execution by hand while an approval is sealed and its task not yet
  told: the execution-ended rule makes the kill switch purge the hand-off, nothing is applied, and the report says
  the mission was stopped.

The harness itself is checked first: a second apply made by hand is counted, so "applied at most once" can fail.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.reporting.assembly import is_push
from aegis_local.aws.eventbridge import EventBridgeDelivery
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.seed import SeededAccount
from tests.support.faults import (
    FAULT_CHECKS,
    MotoCall,
    MotoCallLog,
    ProgressLog,
    applied_counts,
    assert_applied_at_most_once,
    assert_no_leak,
    assert_trail_complete,
    audit_table,
    fault_stack,
    mission_report,
    run_mission,
    scan_detail,
)

TIMEOUT = 90.0


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with fault_stack() as running:
        yield running


def executions(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn())["executions"]


def handoffs(stack: LocalStack) -> list[dict[str, Any]]:
    table = stack.session().resource("dynamodb").Table(stack.physical_id("HandoffTable"))
    return list(table.scan(ConsistentRead=True)["Items"])


def trail_of(stack: LocalStack, mission_id: str) -> list[dict[str, Any]]:
    return sorted(read_trail(audit_table(stack), mission_id), key=lambda item: str(item.get("seq", "")))


def redeliver(stack: LocalStack, envelope: dict[str, Any]) -> None:
    """Deliver `envelope` (the scan event as EventBridge handed it to the agent, its id included) again, through
    the stack's EventBridge routing to the scan rule's Lambda targets."""
    from moto.events.models import events_backends

    name = stack.rules()["ScanRequestRule"]["Name"]
    rule = events_backends[stack.identity.account_id][stack.identity.region].event_buses["default"].rules[name]
    targets = [target for target in rule.targets if ":lambda:" in str(target["Arn"])]
    assert targets, "the scan rule has no Lambda target"
    for target in targets:
        EventBridgeDelivery.deliver_to_lambda(rule, target, envelope)


class DuplicateDelivery:
    """Around the agent's scan handler: the first delivery of the scan event is delivered once more, either after
    the agent handled it (`concurrently=False`) or at the same moment (both invocations wait for each other at the
    handler's door, then run together)."""

    def __init__(self, stack: LocalStack, *, concurrently: bool) -> None:
        self._stack = stack
        self._concurrently = concurrently
        self._together = threading.Barrier(2, timeout=TIMEOUT)
        self._lock = threading.Lock()
        self.envelopes: list[dict[str, Any]] = []
        self.request_ids: set[str] = set()

    def __call__(self, event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        with self._lock:
            first = not self.envelopes
            self.envelopes.append(json.loads(json.dumps(event)))
            self.request_ids.add(str(context.aws_request_id))
        if first and self._concurrently:
            redeliver(self._stack, event)
        if self._concurrently:
            self._together.wait()
        result = handler(event, context)
        if first and not self._concurrently:
            redeliver(self._stack, event)
        return result


def test_a_second_apply_by_hand_is_counted_twice(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog
) -> None:
    run = run_mission(stack, scan_detail(stack, ["ec2-ebs-default-encryption-off"]), timeout=TIMEOUT)
    assert run.ended, run.problems
    [change] = run.plan
    assert applied_counts(moto_calls, run.plan) == {change.change_id: 1}

    stack.client("ec2").enable_ebs_encryption_by_default()

    assert applied_counts(moto_calls, run.plan) == {change.change_id: 2}
    with pytest.raises(AssertionError, match="applied more than once"):
        assert_applied_at_most_once(moto_calls, run.plan)


def test_the_same_scan_event_delivered_again_after_the_agent_handled_it_is_one_mission(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog
) -> None:
    delivery = DuplicateDelivery(stack, concurrently=False)
    with stack.lambdas.intercept("AgentScanFunction", delivery):
        before = {execution["name"] for execution in executions(stack)}
        run = run_mission(stack, scan_detail(stack), timeout=TIMEOUT)
    assert_one_mission(stack, delivery, run, moto_calls, before)


def test_the_same_scan_event_delivered_twice_at_once_is_one_mission(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog
) -> None:
    delivery = DuplicateDelivery(stack, concurrently=True)
    with stack.lambdas.intercept("AgentScanFunction", delivery):
        before = {execution["name"] for execution in executions(stack)}
        run = run_mission(stack, scan_detail(stack), timeout=TIMEOUT)
    assert_one_mission(stack, delivery, run, moto_calls, before)


def assert_one_mission(
    stack: LocalStack, delivery: DuplicateDelivery, run: Any, log: MotoCallLog, before: set[str]
) -> None:
    """The scan event was delivered twice and handled twice by the agent, into one mission: one execution (the
    module's stack keeps those of earlier tests: `before`), one request per change, each change applied once."""
    assert len(delivery.envelopes) == 2
    assert delivery.envelopes[0]["id"] == delivery.envelopes[1]["id"] == run.event_id
    scans = [r for r in stack.lambdas.records("AgentScanFunction") if r.request_id in delivery.request_ids]
    assert len(scans) == 2, scans
    assert [record.error_type for record in scans] == [None, None]
    assert run.ended, run.problems
    assert run.status == "completed"
    assert {execution["name"] for execution in executions(stack)} - before == {run.mission_id}
    trail = trail_of(stack, run.mission_id)
    assert [(item["action"], item["outcome"]) for item in trail if item["action"] == "mission.duplicate_event"] == [
        ("mission.duplicate_event", "ignored")
    ]
    assert sum(1 for item in trail if is_push(item)) == len(run.plan) == len(FAULT_CHECKS)
    counts = assert_applied_at_most_once(log, run.plan)
    assert set(counts.values()) == {1}
    outcomes = assert_trail_complete(stack, run.mission_id, [change.change_id for change in run.plan])
    assert set(outcomes.values()) == {"applied"}
    assert_no_leak(stack)


def is_approval_task_success(call: MotoCall) -> bool:
    return call.name == "states:SendTaskSuccess"


def test_an_execution_stopped_by_hand_purges_its_sealed_approval_and_the_report_says_stopped(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog
) -> None:
    began = datetime.now(UTC)
    progress = ProgressLog()
    outcome: dict[str, Any] = {}
    # The approval function has sealed the approved change's hand-off and is telling Step Functions: held there.
    with moto_calls.hold(is_approval_task_success) as held:
        mission = threading.Thread(
            target=lambda: outcome.setdefault(
                "run", run_mission(stack, scan_detail(stack, ["ec2-ebs-default-encryption-off"]), progress=progress)
            ),
            daemon=True,
        )
        mission.start()
        held.wait_reached(TIMEOUT)
        [sealed] = handoffs(stack)
        running = [e for e in executions(stack) if e["status"] == "RUNNING"]
        assert len(running) == 1
        execution_arn = running[0]["executionArn"]
        assert sealed["execution_arn"] == execution_arn

        stack.client("stepfunctions").stop_execution(executionArn=execution_arn, cause="stopped by hand: fault test")
        held.release()
        mission.join(TIMEOUT)
    assert not mission.is_alive(), progress.text()
    run = outcome["run"]
    # The driver saw the mission end: an execution stopped by hand never resumes the agent.
    assert (run.ended, run.execution_status) == (True, "ABORTED"), run.problems
    assert stack.lambdas.wait_idle(30)
    assert stack.drain_streams(15)

    assert stack.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"] == "ABORTED"
    # The execution-ended rule had the kill switch purge what the stopped execution left: the sealed approval.
    assert handoffs(stack) == []
    purges = [item for item in trail_of(stack, run.mission_id) if item["action"] == "handoff.purged"]
    assert [(item["actor"], item["outcome"]) for item in purges] == [("killswitch", "ok")]
    assert json.loads(purges[0]["details"])["deleted"] == 1
    # Nothing applied: the executor never ran, and EBS default encryption is still off.
    assert [record for record in stack.lambdas.records("ExecutorFunction") if record.started_at >= began] == []
    assert applied_counts(moto_calls, run.plan) == {change.change_id: 0 for change in run.plan}
    assert stack.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    report = mission_report(stack, run.mission_id)
    assert report.status == "stopped", report.status
    [change] = report.changes
    assert (change.decision, change.outcome) == ("approved", "failed")
    assert "stopped" in change.reason
    assert_trail_complete(stack, run.mission_id, [change.change_id for change in run.plan])
    assert_no_leak(stack)
