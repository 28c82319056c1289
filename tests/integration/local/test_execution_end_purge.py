"""Every terminal path of a mission that leaves a sealed approval behind ends with it purged, on the local stack as
on AWS: the execution's status change reaches the default event bus, the template's MissionEndedRule hands it to the
real kill switch function, which deletes that execution's unconsumed handoffs. Each path is driven on purpose: an
execution stopped by hand while it waits for an approval, an approval that fails after sealing, an executor that
fails before consuming, a heartbeat timeout after sealing.

It also proves the two moto gaps the local stack closes (aegis_local.moto_fixes): moto sends no status change events,
and does not stop an execution that waits for a task token.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from aegis.audit import read_trail
from aegis_local.stack import LocalStack

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# The template's minimum: the heartbeat-timeout path waits this long.
HEARTBEAT_SECONDS = 30


def named_error(name: str) -> type[Exception]:
    error = type(name.replace(".", ""), (Exception,), {})
    error.__name__ = name
    return error


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(parameters={"ApprovalHeartbeatSeconds": str(HEARTBEAT_SECONDS)}) as running:
        yield running


class Mission:
    """A mission whose approval, executor and resume functions the test controls; the kill switch is the real one."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sfn = stack.client("stepfunctions")
        self.approvals: queue.Queue[dict[str, Any]] = queue.Queue()
        self.approval_behaviour: Callable[[dict[str, Any]], None] = self.approvals.put
        self.executor_behaviour: Callable[[dict[str, Any]], Any] = lambda event: {
            "change_id": event["change"]["change_id"],
            "outcome": "applied",
            "reason": "",
        }
        self.mission_id = f"mission-{uuid.uuid4().hex[:12]}"
        self.execution_arn = ""
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        dynamodb = session.resource("dynamodb", endpoint_url=stack.endpoints.moto_url)
        self.handoffs = dynamodb.Table(stack.physical_id("HandoffTable"))
        self.audit = dynamodb.Table(stack.physical_id("AuditTable"))

    # --- the functions --------------------------------------------------------------------------------------------
    def approval(self, event: dict[str, Any], context: Any) -> None:
        self.approval_behaviour(event)

    def executor(self, event: dict[str, Any], context: Any) -> Any:
        return self.executor_behaviour(event)

    def resume(self, event: dict[str, Any], context: Any) -> Any:
        return {"resumed": event["mission_id"]}

    # --- what the approval function does --------------------------------------------------------------------------
    def seal(self, event: dict[str, Any]) -> str:
        """An item as HandoffStore.seal leaves it (its ciphertext made up: only its presence matters here)."""
        handoff_id = uuid.uuid4().hex
        self.handoffs.put_item(
            Item={
                "handoff_id": handoff_id,
                "kind": "approval",
                "format": "kms-envelope-aes256gcm/v1",
                "ciphertext": b"\x00" * 64,
                "encrypted_key": b"\x01" * 32,
                "execution_arn": event["execution_arn"],
                "change_id": event["change"]["change_id"],
                "change_digest": "0" * 64,
                "approver_sub": "auth0|approver",
                "expires_at": int(time.time()) + 600,
            }
        )
        return handoff_id

    def start(self) -> str:
        change = {"change_id": "c-1", "kind": "test", "title": "c-1"}
        self.execution_arn = self.sfn.start_execution(
            stateMachineArn=self.stack.state_machine_arn(),
            name=self.mission_id,
            input=json.dumps({"mission_id": self.mission_id, "changes": [change]}),
        )["executionArn"]
        return self.execution_arn

    # --- what happened --------------------------------------------------------------------------------------------
    def status(self) -> str:
        return str(self.sfn.describe_execution(executionArn=self.execution_arn)["status"])

    def finish(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            description = self.sfn.describe_execution(executionArn=self.execution_arn)
            if description["status"] in TERMINAL:
                return dict(description)
            time.sleep(0.1)
        raise AssertionError(f"execution still {self.status()} after {timeout}s")

    def handoff_ids(self) -> set[str]:
        return {str(item["handoff_id"]) for item in self.handoffs.scan()["Items"]}

    def wait_purged(self, handoff_id: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while handoff_id in self.handoff_ids():
            if time.monotonic() > deadline:
                raise AssertionError(f"handoff {handoff_id} still there {timeout}s after the execution ended")
            time.sleep(0.1)

    def purge_records(self) -> list[dict[str, Any]]:
        return [item for item in read_trail(self.audit, self.mission_id) if item["action"] == "handoff.purged"]


@pytest.fixture
def mission(stack: LocalStack) -> Iterator[Mission]:
    run = Mission(stack)
    with contextlib.ExitStack() as overrides:
        overrides.enter_context(stack.lambdas.override("ApprovalFunction", run.approval))
        overrides.enter_context(stack.lambdas.override("ExecutorFunction", run.executor))
        overrides.enter_context(stack.lambdas.override("AgentResumeFunction", run.resume))
        if any(spec.logical_id == "ValidatorFunction" for spec in stack.lambdas.specs):
            # Where the template validates a plan first, this mission's made-up change passes.
            overrides.enter_context(stack.lambdas.override("ValidatorFunction", lambda event, context: {}))
        yield run
        stack.lambdas.wait_idle(10)


def test_status_changes_reach_the_default_bus_as_aws_sends_them(stack: LocalStack, mission: Mission) -> None:
    sqs = stack.client("sqs")
    events = stack.client("events")
    queue_url = sqs.create_queue(QueueName=f"status-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"observe-{uuid.uuid4().hex[:8]}"
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps({"source": ["aws.states"], "detail": {"stateMachineArn": [stack.state_machine_arn()]}}),
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    mission.approval_behaviour = lambda event: mission.sfn.send_task_failure(
        taskToken=event["task_token"], error="Approval.Denied", cause="test"
    )
    try:
        arn = mission.start()
        assert mission.finish(timeout=20)["status"] == "SUCCEEDED"
        received = [
            json.loads(m["Body"])
            for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        ]
    finally:
        events.remove_targets(Rule=rule, Ids=["queue"])
        events.delete_rule(Name=rule)

    assert [event["detail"]["status"] for event in received] == ["RUNNING", "SUCCEEDED"]
    for event in received:
        assert event["source"] == "aws.states"
        assert event["detail-type"] == "Step Functions Execution Status Change"
        assert event["resources"] == [arn]
        assert event["detail"]["executionArn"] == arn
        assert event["detail"]["stateMachineArn"] == stack.state_machine_arn()
        assert event["detail"]["name"] == mission.mission_id
    running, succeeded = (event["detail"] for event in received)
    assert (running["stopDate"], running["output"]) == (None, None)
    assert succeeded["stopDate"] >= succeeded["startDate"]
    assert json.loads(succeeded["output"]) == {"resumed": mission.mission_id}


def test_a_waiting_execution_stopped_by_hand_is_aborted_at_once_and_its_handoff_purged(
    stack: LocalStack, mission: Mission
) -> None:
    sealed: list[str] = []
    # Sealed, but its SendTaskSuccess never came: the execution waits for the task token.
    mission.approval_behaviour = lambda event: sealed.append(mission.seal(event))
    mission.start()
    deadline = time.monotonic() + 15
    while not sealed and time.monotonic() < deadline:
        time.sleep(0.05)
    (handoff_id,) = sealed
    purges_before = len(stack.lambdas.records("KillSwitchFunction"))
    time.sleep(1.0)
    # RUNNING is not an end: the running mission's approval is left alone.
    assert handoff_id in mission.handoff_ids()
    assert len(stack.lambdas.records("KillSwitchFunction")) == purges_before

    stopped = time.monotonic()
    mission.sfn.stop_execution(executionArn=mission.execution_arn, error="Operator.Stopped", cause="by hand")
    ended = mission.finish(timeout=HEARTBEAT_SECONDS / 3)

    assert ended["status"] == "ABORTED"
    assert time.monotonic() - stopped < HEARTBEAT_SECONDS / 3, "the stop waited for the heartbeat interval"
    history = mission.sfn.get_execution_history(executionArn=mission.execution_arn)["events"]
    assert history[-1]["type"] == "ExecutionAborted"
    mission.wait_purged(handoff_id)
    (record,) = mission.purge_records()
    assert record["outcome"] == "ok"
    assert json.loads(record["details"])["status"] == "ABORTED"


def test_an_approval_that_fails_after_sealing_leaves_nothing_behind(mission: Mission) -> None:
    sealed: list[str] = []

    def seal_then_fail(event: dict[str, Any]) -> None:
        sealed.append(mission.seal(event))
        mission.sfn.send_task_failure(taskToken=event["task_token"], error="Approval.Failed", cause="audit failed")

    mission.approval_behaviour = seal_then_fail
    mission.start()
    assert mission.finish(timeout=20)["status"] == "SUCCEEDED"
    (handoff_id,) = sealed
    mission.wait_purged(handoff_id)
    assert [record["outcome"] for record in mission.purge_records()] == ["ok"]


def test_an_executor_failing_before_it_consumes_leaves_nothing_behind(mission: Mission) -> None:
    sealed: list[str] = []

    def seal_and_approve(event: dict[str, Any]) -> None:
        sealed.append(mission.seal(event))
        output = {
            "decision": "approved",
            "approver_sub": "auth0|approver",
            "handoff_id": sealed[-1],
            "approved_at": "now",
        }
        mission.sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(output))

    def fail_before_consuming(event: dict[str, Any]) -> Any:
        raise named_error("Executor.TokenExchangeFailed")("the identity provider is not usable")

    mission.approval_behaviour = seal_and_approve
    mission.executor_behaviour = fail_before_consuming
    mission.start()
    assert mission.finish(timeout=20)["status"] == "SUCCEEDED"
    (handoff_id,) = sealed
    mission.wait_purged(handoff_id)


def test_a_heartbeat_timeout_after_sealing_leaves_nothing_behind(mission: Mission) -> None:
    sealed: list[str] = []
    # Sealed, then the approval function died: no SendTaskSuccess, no heartbeat.
    mission.approval_behaviour = lambda event: sealed.append(mission.seal(event))
    mission.start()
    ended = mission.finish(timeout=HEARTBEAT_SECONDS * 3)

    assert ended["status"] == "SUCCEEDED"
    history = mission.sfn.get_execution_history(executionArn=mission.execution_arn)["events"]
    assert any(
        event["type"] == "TaskFailed" and event["taskFailedEventDetails"]["error"] == "States.HeartbeatTimeout"
        for event in history
    ) or any(event["type"] == "TaskTimedOut" for event in history)
    (handoff_id,) = sealed
    mission.wait_purged(handoff_id)


def test_a_stop_while_nothing_waits_is_aborted_too(stack: LocalStack, mission: Mission) -> None:
    """No task token to wake: the execution ends ABORTED and the stop was not delayed either."""
    release = threading.Event()

    def slow_executor(event: dict[str, Any]) -> Any:
        release.wait(timeout=10)
        return {"change_id": event["change"]["change_id"], "outcome": "applied", "reason": ""}

    def approve(event: dict[str, Any]) -> None:
        output = {"decision": "approved", "approver_sub": "auth0|approver", "handoff_id": "h-1", "approved_at": "now"}
        mission.sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(output))

    mission.approval_behaviour = approve
    mission.executor_behaviour = slow_executor
    mission.start()
    deadline = time.monotonic() + 15
    while not stack.lambdas.records("ApprovalFunction") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    mission.sfn.stop_execution(executionArn=mission.execution_arn)
    release.set()
    assert mission.finish(timeout=10)["status"] == "ABORTED"


def test_the_local_stack_creates_the_hand_off_tables_as_the_template_declares_them(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    handoff = dynamodb.describe_table(TableName=stack.physical_id("HandoffTable"))["Table"]
    (index,) = handoff["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-execution"
    assert index["KeySchema"] == [{"AttributeName": "execution_arn", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    continuations = dynamodb.describe_table(TableName=stack.physical_id("ContinuationsTable"))["Table"]
    assert continuations["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    approval = stack.function("ApprovalFunction").environment
    assert approval["CONTINUATIONS_TABLE"] == stack.physical_id("ContinuationsTable")
    killswitch = stack.function("KillSwitchFunction").environment
    assert killswitch["HANDOFF_TABLE"] == stack.physical_id("HandoffTable")
    assert killswitch["UNDO_ROLE_NAME"] == stack.physical_id("UndoRole")
