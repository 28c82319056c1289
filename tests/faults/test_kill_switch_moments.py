"""The kill switch fired at the moments of a mission that tests/e2e/test_killswitch_e2e.py does not already catch
(that one stops a mission with one change on the phone, one polling, one approved and held at the executor's door):

- while the agent scans and plans (held inside one of the scanner's AWS reads);
- after the approval function sealed the approved change's hand-off, before it told Step Functions (held inside its
  SendTaskSuccess call), so before the executor was ever invoked;
- while the executor is in, before its AWS call (held inside its read of the resource, with its RemediationRole
  session in hand);
- right after the executor's AWS call (held inside its verification read).

Each moment is held inside a real AWS call at moto's server (`MotoCallLog.hold`), the kill switch is triggered, and
the call goes on. Then: nothing was applied after the flag (the mutating calls moto saw after the flag's write),
nothing twice; every pending credential is useless (no hand-off left; RemediationRole denies every action while
halted, and every session issued before the trigger even after a re-arm); the report says halted; the trail is
complete and the leak audit clean. Every test re-arms the switch when it ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.reporting.assembly import is_push
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.driver import MissionRun, invoke_kill_switch
from aegis_local.scenario.seed import SeededAccount
from tests.support.faults import (
    MotoCall,
    MotoCallLog,
    ProgressLog,
    assert_applied_at_most_once,
    assert_no_leak,
    assert_trail_complete,
    audit_table,
    calls_after_halt,
    count_applied,
    fault_stack,
    mission_report,
    mutating_actions,
    planned_changes,
    records_of,
    run_mission,
    scan_detail,
)
from tests.support.iam_policy import Request, decision
from tests.support.waiting import wait_for

TIMEOUT = 90.0
EBS = "ec2-ebs-default-encryption-off"
EBS_READ = "ec2:GetEbsEncryptionByDefault"
EBS_APPLY = "ec2:EnableEbsEncryptionByDefault"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with fault_stack() as running:
        yield running


@pytest.fixture
def rearmed(stack: LocalStack) -> Iterator[None]:
    """Whatever the test did, the switch is re-armed after it (the next test's mission must be able to run)."""
    yield
    stack.lambdas.wait_idle(30)
    kill_switch(stack, "rearm", "fault test over")
    stack.lambdas.wait_idle(30)


def kill_switch(stack: LocalStack, action: str, reason: str) -> dict[str, Any]:
    report = invoke_kill_switch(
        stack.client("lambda"), stack.physical_id("KillSwitchFunction"), action, reason, "fault-tests"
    )
    assert report["ok"], [step for step in report["steps"] if not step["ok"]]
    return dict(report)


class MissionInBackground:
    """A mission driven to its end in a thread (approve everything), while the test holds and triggers."""

    def __init__(self, stack: LocalStack, checks: list[str]) -> None:
        self.progress = ProgressLog()
        self._outcome: list[MissionRun] = []
        self._thread = threading.Thread(
            target=lambda: self._outcome.append(
                run_mission(stack, scan_detail(stack, checks), timeout=TIMEOUT, progress=self.progress)
            ),
            name="fault-test-mission",
            daemon=True,
        )
        self._thread.start()

    def result(self) -> MissionRun:
        self._thread.join(TIMEOUT + 30)
        assert not self._thread.is_alive(), self.progress.text()
        assert self._outcome, self.progress.text()
        return self._outcome[0]


def trigger_while_held(
    stack: LocalStack,
    log: MotoCallLog,
    predicate: Callable[[MotoCall], bool],
    while_held: Callable[[], None] = lambda: None,
) -> tuple[MissionRun, MotoCall, dict[str, Any]]:
    """Start a mission on EBS default encryption, hold it inside the first AWS call `predicate` accepts (run
    `while_held` then), trigger the kill switch, let the call go on, and drive the mission to its end."""
    with log.hold(predicate) as held:
        mission = MissionInBackground(stack, [EBS])
        call = held.wait_reached(TIMEOUT)
        while_held()
        report = kill_switch(stack, "trigger", "fault test: a kill at a chosen moment")
    run = mission.result()
    assert stack.lambdas.wait_idle(30)
    return run, call, report


def invocations(stack: LocalStack, function: str, run: MissionRun) -> list[Any]:
    """The function's finished invocations during this mission (the module's stack keeps earlier ones)."""
    began = run_began(run)
    return [record for record in stack.lambdas.records(function) if record.started_at >= began]


def run_began(run: MissionRun) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=time.monotonic() - run.started_at)


def handoffs(stack: LocalStack) -> list[dict[str, Any]]:
    table = stack.session().resource("dynamodb").Table(stack.physical_id("HandoffTable"))
    return list(table.scan(ConsistentRead=True)["Items"])


def role_policy(stack: LocalStack, name: str) -> dict[str, Any] | None:
    iam = stack.client("iam")
    try:
        document = iam.get_role_policy(RoleName=stack.physical_id("RemediationRole"), PolicyName=name)
    except iam.exceptions.NoSuchEntityException:
        return None
    policy = document["PolicyDocument"]
    return json.loads(policy) if isinstance(policy, str) else dict(policy)


def trail_of(stack: LocalStack, mission_id: str) -> list[dict[str, Any]]:
    return sorted(read_trail(audit_table(stack), mission_id), key=lambda item: str(item.get("seq", "")))


def sessions_issued(stack: LocalStack, mission_id: str) -> list[str]:
    """When each RemediationRole session of the mission was in the executor's hands (its audit record's time: the
    session was issued at or before it)."""
    return [
        str(item["at"])
        for item in trail_of(stack, mission_id)
        if item["action"] == "executor.session" and item["outcome"] == "obtained"
    ]


def assert_credentials_useless(stack: LocalStack, run: MissionRun) -> None:
    """No hand-off is left to spend, and RemediationRole refuses every remediation action of the plan: to any
    session while halted, and to the sessions issued before the trigger even once re-armed."""
    assert handoffs(stack) == []
    halted = role_policy(stack, "AegisHalted")
    older = role_policy(stack, "AegisDenyOlderSessions")
    assert halted is not None
    assert older is not None
    actions = {action for change in run.plan for action in mutating_actions(change)}
    assert actions
    for action in actions:
        assert decision([halted], Request(action=action, context={"aws:TokenIssueTime": "2100-01-01T00:00:00Z"})) == (
            "Deny"
        )
        for issued in sessions_issued(stack, run.mission_id):
            assert decision([older], Request(action=action, context={"aws:TokenIssueTime": issued})) == "Deny"


def assert_stopped_cleanly(stack: LocalStack, run: MissionRun, log: MotoCallLog) -> dict[str, str]:
    """The checks every moment ends with; returns change id -> terminal outcome."""
    assert run.ended, (run.problems, run.status)
    assert count_applied(calls_after_halt(log), run.plan) == {change.change_id: 0 for change in run.plan}
    assert_applied_at_most_once(log, run.plan)
    assert_credentials_useless(stack, run)
    report = mission_report(stack, run.mission_id)
    assert report.status == "halted", report.status
    outcomes = assert_trail_complete(stack, run.mission_id, [change.change_id for change in run.plan])
    assert_no_leak(stack)
    return outcomes


def ebs_encryption_on(stack: LocalStack) -> bool:
    return bool(stack.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"])


def test_a_kill_while_the_agent_scans_starts_no_execution_and_asks_nobody(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog, rearmed: None
) -> None:
    run, held, _ = trigger_while_held(
        stack, moto_calls, lambda call: call.name == EBS_READ and not call.by_role_session
    )

    # The scan went on and the plan was made, but the agent started no execution: the mission is halted.
    assert not held.by_role_session
    assert run.status == "halted"
    assert run.execution_arn is None
    trail = trail_of(stack, run.mission_id)
    assert ("agent", "mission.halted", "halted") in [(i["actor"], i["action"], i["outcome"]) for i in trail]
    assert not [item for item in trail if is_push(item)]
    assert invocations(stack, "ApprovalFunction", run) == invocations(stack, "ExecutorFunction", run) == []
    assert not ebs_encryption_on(stack)
    assert run.plan == []  # the driver reads the plan from the execution, and there is none
    run.plan = planned_changes(stack, run.mission_id)
    assert [change.check_id for change in run.plan] == [EBS]
    outcomes = assert_stopped_cleanly(stack, run, moto_calls)
    assert set(outcomes.values()) == {"halted"}


def test_a_kill_after_the_hand_off_is_sealed_before_the_task_is_told_purges_it_unused(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog, rearmed: None
) -> None:
    sealed: list[dict[str, Any]] = []

    run, _, report = trigger_while_held(
        stack,
        moto_calls,
        lambda call: call.name == "states:SendTaskSuccess",
        while_held=lambda: sealed.extend(handoffs(stack)),
    )

    # The approval was sealed when the trigger came, and the kill switch purged it unused: its own purge step, or
    # the purge of the ended execution that its StopExecution set off, whichever reached the hand-off first (both
    # run; on AWS as here, their order is not fixed).
    assert len(sealed) == 1
    steps = {step["step"]: step for step in report["steps"]}

    def purged_by_the_kill_switch() -> int:
        at_the_end = [
            record.details.get("deleted", 0) for record in records_of(stack, run.mission_id, "handoff.purged")
        ]
        return int(steps["purge_handoffs"]["details"]["deleted"]) + sum(at_the_end)

    # The end-of-execution purge is an invocation of its own, set off by the execution's status change event.
    wait_for(purged_by_the_kill_switch, "the sealed approval's purge", timeout=30)
    assert handoffs(stack) == []
    assert invocations(stack, "ExecutorFunction", run) == []
    assert not ebs_encryption_on(stack)
    assert moto_calls.count(EBS_APPLY) == 0
    outcomes = assert_stopped_cleanly(stack, run, moto_calls)
    # The approval function's held SendTaskSuccess came too late: its task was already failed or stopped, so it
    # recorded the approval abandoned.
    assert set(outcomes.values()) == {"abandoned"}
    [change] = mission_report(stack, run.mission_id).changes
    # The trigger fails the waiting task with Approval.Halted, then stops the execution. If the state machine acts
    # on the failure first, it records the change skipped with the decision "halted" (a halt after an approval
    # decides, as a refusal does); if the stop lands first, the execution is aborted with the change approved and
    # halted. Either way the report says the kill switch stopped it and nothing was applied.
    assert (change.decision, change.outcome) in {("halted", "skipped"), ("approved", "halted")}


def test_a_kill_while_the_executor_reads_before_its_aws_call_applies_nothing(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog, rearmed: None
) -> None:
    run, held, _ = trigger_while_held(stack, moto_calls, lambda call: call.name == EBS_READ and call.by_role_session)

    # The executor had its RemediationRole session and was reading the resource; the halt flag stopped it before
    # its one mutating call.
    assert held.by_role_session
    [executor] = invocations(stack, "ExecutorFunction", run)
    assert executor.error_type is None
    results = [
        json.loads(item["details"])["result"]
        for item in trail_of(stack, run.mission_id)
        if item["action"] == "executor.result"
    ]
    assert [result["outcome"] for result in results] == ["halted"]
    assert moto_calls.count(EBS_APPLY) == 0
    assert not ebs_encryption_on(stack)
    outcomes = assert_stopped_cleanly(stack, run, moto_calls)
    assert set(outcomes.values()) == {"halted"}


def test_a_kill_right_after_the_executors_aws_call_applies_nothing_more(
    stack: LocalStack, vulnerable: SeededAccount, moto_calls: MotoCallLog, rearmed: None
) -> None:
    applied = threading.Event()

    def verifying_after_the_change(call: MotoCall) -> bool:
        if call.name == EBS_APPLY:
            applied.set()
            return False
        return applied.is_set() and call.name == EBS_READ and call.by_role_session

    run, _, _ = trigger_while_held(stack, moto_calls, verifying_after_the_change)

    # The change went through before the flag, once; the executor verified it and said so. Nothing after the flag.
    assert moto_calls.count(EBS_APPLY) == 1
    assert ebs_encryption_on(stack)
    outcomes = assert_stopped_cleanly(stack, run, moto_calls)
    assert set(outcomes.values()) == {"applied"}
