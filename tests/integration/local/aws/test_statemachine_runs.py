"""The mission state machine of template.yaml, executed by the local stack as Step Functions would run it.

The functions it calls are routed to test handlers (the stack's override seam), so that each ASL path —
the Map over requests, the Map over a request's approvers waiting for their task tokens, Catch on named errors at
the approvers' Map, the Map applying each change, Retry, MaxConcurrency — is driven on purpose; the validator step
accepts every plan here and plans the requests the test gives (its own refusals and planning run on the local stack
in tests/integration/validator). The payloads and results are the ones docs/CONTRACTS.md fixes. Nothing here relies on
moto's known gaps (executions are always started with a name; no test reads a failure's `cause` or stops a waiting
execution).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aegis_local.aws.stack import LocalStack
from tests.support.executions import named_error, wait_until_ended
from tests.support.mission_machine import APPROVER_A, APPROVER_B, approved_answer, batch_request, single_request


class Mission:
    """One execution of the mission state machine with controllable approval, executor and resume handlers."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sfn = stack.client("stepfunctions")
        self.approvals: queue.Queue[dict[str, Any]] = queue.Queue()
        self.executor_calls: list[dict[str, Any]] = []
        self.resumed: list[dict[str, Any]] = []
        self.executor_behaviour: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.resume_behaviour: Callable[[dict[str, Any]], Any] = lambda event: {"resumed": event["mission_id"]}
        self.execution_arn = ""
        # The requests the validator plans (set by `start`).
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def approval(self, event: dict[str, Any], context: Any) -> None:
        self.approvals.put(event)

    def validator(self, event: dict[str, Any], context: Any) -> Any:
        plan = event["plan"]
        return {"mission_id": plan["mission_id"], "verdict": "accepted", "requests": self.requests}

    def executor(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            self.executor_calls.append(event)
        change_id = event["change"]["change_id"]
        behaviour = self.executor_behaviour.get(change_id)
        if behaviour is not None:
            return behaviour(event)
        return {"change_id": change_id, "outcome": "applied", "reason": "", "verified_after": True}

    def resume(self, event: dict[str, Any], context: Any) -> Any:
        self.resumed.append(event)
        return self.resume_behaviour(event)

    def start(
        self, change_ids: list[str], batches: list[list[str]] | None = None, approvers: tuple[str, ...] = (APPROVER_A,)
    ) -> str:
        """Start a mission of these changes, planned as one request per change or as the given `batches` of change
        ids, each asked of `approvers`."""
        mission_id = f"mission-{uuid.uuid4().hex[:12]}"
        changes = [{"change_id": change_id, "kind": "test", "title": change_id} for change_id in change_ids]
        by_id = {change["change_id"]: change for change in changes}
        self.requests = [
            batch_request(f"r{index:03d}", [by_id[change_id] for change_id in batch], approvers)
            if len(batch) > 1
            else single_request(f"r{index:03d}", by_id[batch[0]], approvers)
            for index, batch in enumerate(batches or [[change_id] for change_id in change_ids], start=1)
        ]
        self.execution_arn = self.sfn.start_execution(
            stateMachineArn=self.stack.state_machine_arn(),
            name=mission_id,
            input=json.dumps({"mission_id": mission_id, "changes": changes}),
        )["executionArn"]
        return mission_id

    def next_approval(self, timeout: float = 15.0) -> dict[str, Any]:
        return self.approvals.get(timeout=timeout)

    def approve(self, approval: dict[str, Any], output: dict[str, Any] | None = None) -> None:
        answer = output or approved_answer(approval["approver_sub"], approval["request"])
        self.sfn.send_task_success(taskToken=approval["task_token"], output=json.dumps(answer))

    def fail(self, approval: dict[str, Any], error: str) -> None:
        self.sfn.send_task_failure(taskToken=approval["task_token"], error=error, cause="test")

    def status(self) -> str:
        return str(self.sfn.describe_execution(executionArn=self.execution_arn)["status"])

    def finish(self, timeout: float = 20.0) -> dict[str, Any]:
        return wait_until_ended(self.sfn, self.execution_arn, timeout)

    def results(self) -> dict[str, dict[str, Any]]:
        """Every change's result, from the resume's per-request lists."""
        [resumed] = self.resumed
        return {result["change_id"]: result for group in resumed["results"] for result in group}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


@pytest.fixture
def mission(stack: LocalStack) -> Iterator[Mission]:
    run = Mission(stack)
    with (
        stack.lambdas.override("ValidatorFunction", run.validator),
        stack.lambdas.override("ApprovalFunction", run.approval),
        stack.lambdas.override("ExecutorFunction", run.executor),
        stack.lambdas.override("AgentResumeFunction", run.resume),
    ):
        yield run
        stack.lambdas.wait_idle(10)


def test_an_execution_waits_for_its_task_token_until_send_task_success(mission: Mission, stack: LocalStack) -> None:
    mission_id = mission.start(["c-1"])
    approval = mission.next_approval()

    assert set(approval) == {"task_token", "execution_arn", "mission_id", "approver_sub", "request"}
    assert approval["execution_arn"] == mission.execution_arn
    assert approval["mission_id"] == mission_id
    assert approval["approver_sub"] == APPROVER_A
    assert [item["change"]["change_id"] for item in approval["request"]["items"]] == ["c-1"]
    # The approval function was handed the token asynchronously (InvocationType Event), as on AWS.
    deadline = time.monotonic() + 5
    while not stack.lambdas.records("ApprovalFunction") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.lambdas.records("ApprovalFunction")[-1].invocation_type == "Event"
    time.sleep(1.5)
    assert mission.status() == "RUNNING"
    assert mission.executor_calls == []

    mission.approve(approval)
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    [executed] = mission.executor_calls
    assert executed["approval"] == {
        "decision": "approved",
        "approvals": [approved_answer(APPROVER_A, approval["request"])],
    }
    assert executed["proof"] is None
    assert executed["mission_id"] == mission_id
    assert executed["execution_arn"] == mission.execution_arn
    assert mission.results() == {
        "c-1": {"change_id": "c-1", "decision": "approved", "outcome": "applied", "reason": ""}
    }
    # OutputPath $.Payload: the execution's output is what the resume function returned.
    assert json.loads(finished["output"]) == {"resumed": mission_id}


def test_each_approval_failure_is_caught_by_its_name(mission: Mission) -> None:
    errors = {
        "c-denied": "Approval.Denied",
        "c-expired": "Approval.Expired",
        "c-halted": "Approval.Halted",
        "c-failed": "Approval.Failed",
        "c-other": "Something.Unexpected",
    }
    mission.start(list(errors))
    for _ in errors:
        approval = mission.next_approval()
        mission.fail(approval, errors[approval["request"]["items"][0]["change"]["change_id"]])
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    assert mission.executor_calls == []
    decisions = {change_id: (r["decision"], r["outcome"], r["reason"]) for change_id, r in mission.results().items()}
    assert decisions == {
        "c-denied": ("denied", "skipped", "Approval.Denied"),
        "c-expired": ("expired", "skipped", "Approval.Expired"),
        "c-halted": ("halted", "skipped", "Approval.Halted"),
        "c-failed": ("failed", "skipped", "Approval.Failed"),
        "c-other": ("failed", "skipped", "Something.Unexpected"),
    }


def test_a_batch_is_asked_once_and_each_of_its_changes_applied_on_its_own_with_its_proof(mission: Mission) -> None:
    mission.start(["c-1", "c-2", "c-3", "c-4"], batches=[["c-1", "c-2", "c-3"], ["c-4"]])
    first, second = mission.next_approval(), mission.next_approval()
    time.sleep(0.5)
    assert mission.approvals.empty(), "one approval task per approver of a request, never one per change"
    by_request = {approval["request"]["request_id"]: approval for approval in (first, second)}
    assert by_request["r001"]["request"] == mission.requests[0]
    mission.approve(by_request["r001"])
    mission.fail(by_request["r002"], "Approval.Denied")
    assert mission.finish()["status"] == "SUCCEEDED"

    executed = {call["change"]["change_id"]: call for call in mission.executor_calls}
    assert sorted(executed) == ["c-1", "c-2", "c-3"]
    for item in mission.requests[0]["items"]:
        call = executed[item["change"]["change_id"]]
        assert call["proof"] == item["proof"]
        assert call["approval"] == {
            "decision": "approved",
            "approvals": [approved_answer(APPROVER_A, mission.requests[0])],
        }
    [resumed] = mission.resumed
    assert [[r["change_id"] for r in group] for group in resumed["results"]] == [["c-1", "c-2", "c-3"], ["c-4"]]
    assert mission.results()["c-4"]["decision"] == "denied"


def test_one_denial_of_a_two_person_request_denies_it_without_waiting_for_the_other(mission: Mission) -> None:
    mission.start(["c-1"], approvers=(APPROVER_A, APPROVER_B))
    first, second = mission.next_approval(), mission.next_approval()
    assert {first["approver_sub"], second["approver_sub"]} == {APPROVER_A, APPROVER_B}
    mission.approve(first)
    mission.fail(second, "Approval.Denied")
    finished = mission.finish(timeout=15)

    assert finished["status"] == "SUCCEEDED"
    assert mission.executor_calls == []
    assert mission.results()["c-1"] == {
        "change_id": "c-1",
        "decision": "denied",
        "outcome": "skipped",
        "reason": "Approval.Denied",
    }


def test_executor_errors_raised_by_the_handler_are_caught_by_name(mission: Mission) -> None:
    def raising(error: type[Exception]) -> Callable[[dict[str, Any]], Any]:
        def behaviour(event: dict[str, Any]) -> Any:
            raise error("from the test")

        return behaviour

    mission.executor_behaviour = {
        "c-halted": raising(named_error("Executor.Halted")),
        "c-invalid": raising(named_error("Executor.ApprovalInvalid")),
        "c-stale": raising(named_error("Executor.ApprovalExpired")),
        "c-crash": raising(ValueError),
        "c-drift": lambda event: {"change_id": "c-drift", "outcome": "drift", "reason": "changed since approval"},
    }
    mission.start(["c-halted", "c-invalid", "c-stale", "c-crash", "c-drift"])
    for _ in range(5):
        mission.approve(mission.next_approval())
    mission.finish()

    outcomes = {change_id: (r["decision"], r["outcome"], r["reason"]) for change_id, r in mission.results().items()}
    assert outcomes == {
        "c-halted": ("approved", "halted", "Executor.Halted"),
        "c-invalid": ("approved", "failed", "Executor.ApprovalInvalid"),
        # The approval's token expired before this change's turn: never applied on a stale approval.
        "c-stale": ("expired", "skipped", "Executor.ApprovalExpired"),
        "c-crash": ("approved", "failed", "ValueError"),
        "c-drift": ("approved", "drift", "changed since approval"),
    }


def test_a_throttled_executor_is_retried(mission: Mission) -> None:
    attempts: list[float] = []
    throttled = named_error("Executor.Throttled")

    def behaviour(event: dict[str, Any]) -> Any:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise throttled("slow down")
        return {"change_id": "c-1", "outcome": "applied", "reason": ""}

    mission.executor_behaviour = {"c-1": behaviour}
    mission.start(["c-1"])
    mission.approve(mission.next_approval())
    mission.finish(timeout=30)

    assert len(attempts) == 2
    assert mission.results()["c-1"]["outcome"] == "applied"


def test_no_more_approvals_wait_at_once_than_map_max_concurrency(mission: Mission, stack: LocalStack) -> None:
    limit = int(stack.parameters["MapMaxConcurrency"])
    mission.start([f"c-{index}" for index in range(limit + 2)])
    waiting = [mission.next_approval() for _ in range(limit)]
    time.sleep(1.0)
    assert mission.approvals.empty()

    mission.approve(waiting.pop())
    waiting.append(mission.next_approval())
    time.sleep(0.5)
    assert mission.approvals.empty()

    for approval in waiting:
        mission.approve(approval)
    mission.approve(mission.next_approval())
    finished = mission.finish()
    assert finished["status"] == "SUCCEEDED"
    assert len(mission.results()) == limit + 2


def test_a_failing_resume_fails_the_execution_with_its_error(mission: Mission) -> None:
    def broken(event: dict[str, Any]) -> Any:
        raise named_error("Agent.ResumeFailed")("checkpoint missing")

    mission.resume_behaviour = broken
    mission.start(["c-1"])
    mission.fail(mission.next_approval(), "Approval.Denied")
    finished = mission.finish()

    assert finished["status"] == "FAILED"
    assert finished["error"] == "Agent.ResumeFailed"


def test_an_approval_function_answering_at_once_is_not_kept_waiting(stack: LocalStack) -> None:
    # Like the approval function when the kill switch is engaged: it fails its own task token on entry, before the
    # state machine has even started to watch for heartbeats. Step Functions takes the answer at once.
    mission = Mission(stack)

    def approval_that_halts(event: dict[str, Any], context: Any) -> None:
        import boto3

        boto3.client("stepfunctions").send_task_failure(
            taskToken=event["task_token"], error="Approval.Halted", cause="kill switch engaged"
        )

    with (
        stack.lambdas.override("ValidatorFunction", mission.validator),
        stack.lambdas.override("ApprovalFunction", approval_that_halts),
        stack.lambdas.override("AgentResumeFunction", mission.resume),
    ):
        started = time.monotonic()
        mission.start(["c-1", "c-2"])
        finished = mission.finish(timeout=15)
        elapsed = time.monotonic() - started
        stack.lambdas.wait_idle(10)

    assert finished["status"] == "SUCCEEDED"
    assert elapsed < int(stack.parameters["ApprovalHeartbeatSeconds"]) / 4
    assert {r["decision"] for r in mission.results().values()} == {"halted"}
