"""Every terminal path of a mission that leaves a sealed approval behind ends with it purged, on the local stack as
on AWS: the execution's status change reaches the default event bus, the template's MissionEndedRule hands it to the
real kill switch function, which deletes that execution's unconsumed handoffs. Each path is driven on purpose: an
execution stopped by hand while it waits for an approval, an approval that fails after sealing, an executor that
fails before consuming, a heartbeat timeout after sealing.

It also proves the two moto gaps the local stack closes (aegis_local.aws.moto_fixes): moto sends no status change
events, and does not stop an execution that waits for a task token.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis_local.aws.stack import LocalStack
from tests.support.executions import named_error, wait_until_ended
from tests.support.mission_machine import batch_request, single_request

# The template's minimum: the heartbeat-timeout path waits this long.
HEARTBEAT_SECONDS = 30


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(parameters={"ApprovalHeartbeatSeconds": str(HEARTBEAT_SECONDS)}) as running:
        yield running


class Mission:
    """A mission whose approval, executor and resume functions the test controls; the kill switch is the real one,
    watched (never replaced) to know when it has finished handling an execution's end."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sfn = stack.client("stepfunctions")
        self.approval_behaviour: Callable[[dict[str, Any]], None] = lambda event: None
        self.executor_behaviour: Callable[[dict[str, Any]], Any] = lambda event: {
            "change_id": event["change"]["change_id"],
            "outcome": "applied",
            "reason": "",
        }
        self.mission_id = f"mission-{uuid.uuid4().hex[:12]}"
        self.execution_arn = ""
        self.request: dict[str, Any] = {}
        self.sealed_by_change: dict[str, str] = {}
        # The status changes the kill switch has finished handling, of any execution: an earlier test's end may still
        # arrive while this one runs.
        self.ends_handled: list[dict[str, Any]] = []
        dynamodb = stack.session().resource("dynamodb", endpoint_url=stack.endpoints.moto_url)
        self.handoffs = dynamodb.Table(stack.physical_id("HandoffTable"))
        self.audit = dynamodb.Table(stack.physical_id("AuditTable"))

    # --- the functions --------------------------------------------------------------------------------------------
    def approval(self, event: dict[str, Any], context: Any) -> None:
        self.approval_behaviour(event)

    def executor(self, event: dict[str, Any], context: Any) -> Any:
        return self.executor_behaviour(event)

    def resume(self, event: dict[str, Any], context: Any) -> Any:
        return {"resumed": event["mission_id"]}

    def kill_switch(self, event: dict[str, Any], context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        try:
            return handler(event, context)
        finally:
            self.ends_handled.append(event["detail"])

    # --- what the validator and the approval function do -----------------------------------------------------------
    def validator(self, event: dict[str, Any], context: Any) -> Any:
        """Accepts this mission's made-up changes (the real validator would not) and plans them as one request."""
        return {"mission_id": self.mission_id, "requests": [self.request]}

    def seal(self, event: dict[str, Any]) -> str:
        """The items HandoffStore.seal leaves for an approved request, one per change of it, all from the same token
        response (their ciphertexts made up: only their presence matters here). The first handoff's id."""
        handoff_ids = []
        for item in event["request"]["items"]:
            handoff_id = uuid.uuid4().hex
            self.handoffs.put_item(
                Item={
                    "handoff_id": handoff_id,
                    "kind": "approval",
                    "format": "kms-envelope-aes256gcm/v1",
                    "ciphertext": b"\x00" * 64,
                    "encrypted_key": b"\x01" * 32,
                    "execution_arn": event["execution_arn"],
                    "change_id": item["change"]["change_id"],
                    "change_digest": "0" * 64,
                    "approver_sub": event["approver_sub"],
                    "expires_at": int(time.time()) + 600,
                }
            )
            handoff_ids.append(handoff_id)
        self.sealed_by_change.update(
            {item["change"]["change_id"]: h for item, h in zip(event["request"]["items"], handoff_ids, strict=True)}
        )
        return handoff_ids[0]

    def approved(self, event: dict[str, Any]) -> dict[str, Any]:
        """The approval function's SendTaskSuccess output for what `seal` sealed."""
        return {
            "decision": "approved",
            "approver_sub": event["approver_sub"],
            "approved_at": "now",
            "handoffs": {
                item["change"]["change_id"]: self.sealed_by_change.get(item["change"]["change_id"], "h-unsealed")
                for item in event["request"]["items"]
            },
        }

    def start(self, change_ids: tuple[str, ...] = ("c-1",)) -> str:
        """Start the mission; two or more changes are planned as one batch request."""
        changes = [{"change_id": change_id, "kind": "test", "title": change_id} for change_id in change_ids]
        self.request = (
            batch_request("r001", changes, ("auth0|approver",))
            if len(changes) > 1
            else single_request("r001", changes[0], ("auth0|approver",))
        )
        self.execution_arn = self.sfn.start_execution(
            stateMachineArn=self.stack.state_machine_arn(),
            name=self.mission_id,
            input=json.dumps({"mission_id": self.mission_id, "changes": changes}),
        )["executionArn"]
        return self.execution_arn

    # --- what happened --------------------------------------------------------------------------------------------
    def finish(self, timeout: float) -> dict[str, Any]:
        return wait_until_ended(self.sfn, self.execution_arn, timeout)

    def handoff_ids(self) -> set[str]:
        return {str(item["handoff_id"]) for item in self.handoffs.scan()["Items"]}

    def my_ends_handled(self) -> list[str]:
        return [detail["status"] for detail in self.ends_handled if detail["executionArn"] == self.execution_arn]

    def wait_purged(self, handoff_id: str, timeout: float = 20.0) -> None:
        """Wait until the kill switch has handled this execution's end (its deletes and its audit record are done,
        which watching the table alone would not tell), then check the handoff is gone."""
        deadline = time.monotonic() + timeout
        while not self.my_ends_handled():
            if time.monotonic() > deadline:
                raise AssertionError(f"the kill switch did not handle the end of {self.execution_arn} in {timeout}s")
            time.sleep(0.1)
        assert handoff_id not in self.handoff_ids()

    def purge_records(self) -> list[dict[str, Any]]:
        return [item for item in read_trail(self.audit, self.mission_id) if item["action"] == "handoff.purged"]


@pytest.fixture
def mission(stack: LocalStack) -> Iterator[Mission]:
    run = Mission(stack)
    with contextlib.ExitStack() as overrides:
        overrides.enter_context(stack.lambdas.override("ApprovalFunction", run.approval))
        overrides.enter_context(stack.lambdas.override("ExecutorFunction", run.executor))
        overrides.enter_context(stack.lambdas.override("AgentResumeFunction", run.resume))
        # This mission's made-up changes would not pass the real validator.
        overrides.enter_context(stack.lambdas.override("ValidatorFunction", run.validator))
        overrides.enter_context(stack.lambdas.intercept("KillSwitchFunction", run.kill_switch))
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
        # The status turns SUCCEEDED a moment before its event is put on the bus: receive until both came.
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            received += [json.loads(message["Body"]) for message in answer.get("Messages", [])]
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


def test_a_waiting_execution_stopped_by_hand_is_aborted_at_once_and_its_handoff_purged(mission: Mission) -> None:
    sealed: list[str] = []
    # Sealed, but its SendTaskSuccess never came: the execution waits for the task token.
    mission.approval_behaviour = lambda event: sealed.append(mission.seal(event))
    mission.start()
    deadline = time.monotonic() + 15
    while not sealed and time.monotonic() < deadline:
        time.sleep(0.05)
    (handoff_id,) = sealed
    time.sleep(1.0)
    # RUNNING is not an end: the running mission's approval is left alone.
    assert handoff_id in mission.handoff_ids()
    assert mission.my_ends_handled() == []

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
        mission.sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(mission.approved(event)))

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


def test_a_stop_while_nothing_waits_is_aborted_too(mission: Mission) -> None:
    """No task token to wake (the executor is running): the execution ends ABORTED, not as the executor's answer
    would have ended it."""
    entered, release = threading.Event(), threading.Event()

    def slow_executor(event: dict[str, Any]) -> Any:
        entered.set()
        release.wait(timeout=10)
        return {"change_id": event["change"]["change_id"], "outcome": "applied", "reason": ""}

    def approve(event: dict[str, Any]) -> None:
        mission.sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(mission.approved(event)))

    mission.approval_behaviour = approve
    mission.executor_behaviour = slow_executor
    mission.start()
    assert entered.wait(timeout=15), "the executor was never invoked"
    mission.sfn.stop_execution(executionArn=mission.execution_arn)
    release.set()
    assert mission.finish(timeout=10)["status"] == "ABORTED"


def test_a_batch_leaves_none_of_its_handoffs_behind_whichever_changes_ran(mission: Mission) -> None:
    """One approval of a batch seals a handoff per change. The executor consumes (deletes) the handoff of each change
    it runs; a change that failed before consuming, or never ran, leaves its own: every one is purged at the end, and
    a consumed one is not counted twice."""
    sealed: list[str] = []

    def seal_and_approve(event: dict[str, Any]) -> None:
        sealed.append(mission.seal(event))
        mission.sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(mission.approved(event)))

    def executor(event: dict[str, Any]) -> Any:
        change_id = event["change"]["change_id"]
        assert event["proof"] is not None
        if change_id == "c-2":
            raise named_error("Executor.TokenExchangeFailed")("before consuming its handoff")
        # As HandoffStore.consume does: a conditional delete of this change's own handoff.
        mission.handoffs.delete_item(Key={"handoff_id": event["approval"]["approvals"][0]["handoffs"][change_id]})
        return {"change_id": change_id, "outcome": "applied", "reason": ""}

    mission.approval_behaviour = seal_and_approve
    mission.executor_behaviour = executor
    mission.start(("c-1", "c-2", "c-3"))
    assert mission.finish(timeout=20)["status"] == "SUCCEEDED"
    left_behind = mission.sealed_by_change["c-2"]
    for handoff_id in mission.sealed_by_change.values():
        mission.wait_purged(handoff_id)
    (record,) = mission.purge_records()
    assert record["outcome"] == "ok"
    assert json.loads(record["details"])["found"] == 1, f"only {left_behind} was left to purge"


def test_a_stopped_batch_has_every_handoff_of_it_purged(mission: Mission) -> None:
    sealed: list[str] = []
    mission.approval_behaviour = lambda event: sealed.append(mission.seal(event))
    mission.start(("c-1", "c-2", "c-3", "c-4"))
    deadline = time.monotonic() + 15
    while not sealed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mission.sealed_by_change) == 4
    assert set(mission.sealed_by_change.values()) <= mission.handoff_ids()

    mission.sfn.stop_execution(executionArn=mission.execution_arn, error="Operator.Stopped", cause="by hand")
    assert mission.finish(timeout=HEARTBEAT_SECONDS / 3)["status"] == "ABORTED"
    for handoff_id in mission.sealed_by_change.values():
        mission.wait_purged(handoff_id)
    (record,) = mission.purge_records()
    assert json.loads(record["details"])["found"] == 4


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
