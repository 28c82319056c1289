"""A function's process dying between two steps of a whole mission on the local stack: the executor after or before
its AWS call (or before it consumed its approval), the approval function after sealing the hand-off and before
answering Step Functions.

A "death" is `FunctionDied`, raised from a botocore hook at the named AWS call of the named function
(aegis_local.aws.lambdas.faults, which says what a thread's death leaves untested: `finally` blocks still run). The
local Lambda runtime reports it as Lambda reports a process exit (`Runtime.ExitError`) and discards the container.

Each mission fixes one finding (EBS default encryption off, made so again before each test) and is approved on the
emulated phone. Each test asserts the mission's end state, that moto saw the change's mutating call at most once,
that every change has its terminal audit record and the audit chain verifies, and that the leak audit is clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from aegis_local.auth0 import EmulatorConfig
from aegis_local.aws.lambdas import DIE, AwsFault, FiredFault, InvocationRecord
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.seed import SeededAccount
from tests.support.faults import (
    MissionRun,
    MotoCallLog,
    ProgressLog,
    assert_applied_at_most_once,
    assert_no_leak,
    change_results,
    fix_one_check,
    mission_report,
    records_of,
)
from tests.support.waiting import wait_for

CHECK = "ec2-ebs-default-encryption-off"
APPLY = "ec2:EnableEbsEncryptionByDefault"
# The template's minimum heartbeat: an approval function that stops answering is given up after this long.
HEARTBEAT_SECONDS = 30
MISSION_TIMEOUT = 120.0
OUTCOME_UNKNOWN = "the outcome is unknown until the resource is scanned again"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    config = EmulatorConfig.default().model_copy(update={"ciba_interval_seconds": 1})
    with LocalStack(emulator_config=config, parameters={"ApprovalHeartbeatSeconds": str(HEARTBEAT_SECONDS)}) as running:
        yield running


@pytest.fixture
def finding(stack: LocalStack, seeded: SeededAccount) -> None:
    """The finding each mission fixes, present again whatever an earlier test applied."""
    stack.client("ec2").disable_ebs_encryption_by_default()


def fix_ebs_encryption(stack: LocalStack) -> tuple[MissionRun, ProgressLog]:
    return fix_one_check(stack, CHECK, timeout=MISSION_TIMEOUT)


def ebs_encryption_on(stack: LocalStack) -> bool:
    return bool(stack.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"])


def invocations_since(stack: LocalStack, logical_id: str, before: int) -> list[InvocationRecord]:
    return stack.lambdas.records(logical_id)[before:]


def handoffs_of(stack: LocalStack, execution_arn: str) -> list[dict[str, Any]]:
    table = stack.session().resource("dynamodb").Table(stack.physical_id("HandoffTable"))
    return [item for item in table.scan()["Items"] if item.get("execution_arn") == execution_arn]


def wait_for_no_handoff(stack: LocalStack, execution_arn: str) -> None:
    """The mission's end reaches the kill switch through MissionEndedRule, which purges what the execution left."""
    wait_for(lambda: not handoffs_of(stack, execution_arn), "the ended execution's hand-offs to be purged", timeout=30)


def replay_executor(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
    """Invoke the executor again with the request Step Functions sent it, as a retry of that invocation would: its
    answer (the runtime's error payload when it raised)."""
    sfn = stack.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    executor_arn = stack.function("ExecutorFunction").function_arn
    sent = [
        json.loads(event["taskScheduledEventDetails"]["parameters"])
        for event in events
        if event["type"] == "TaskScheduled"
    ]
    (request,) = [parameters["Payload"] for parameters in sent if parameters.get("FunctionName") == executor_arn]
    answer = stack.client("lambda").invoke(FunctionName=executor_arn, Payload=json.dumps(request))
    payload: dict[str, Any] = json.loads(answer["Payload"].read())
    return payload


def one_fired(fired: list[FiredFault], function_name: str) -> FiredFault:
    (firing,) = fired
    assert firing.function_name == function_name
    return firing


def test_an_executor_dying_after_its_aws_call_is_never_run_again_and_its_change_ends_outcome_unknown_then_verified(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    executors_before = len(stack.lambdas.records("ExecutorFunction"))
    fault = AwsFault(function="ExecutorFunction", operation=APPLY, when="after", effect=DIE)

    with stack.lambdas.faults.inject(fault) as fired:
        run, progress = fix_ebs_encryption(stack)

    death = one_fired(fired, stack.physical_id("ExecutorFunction"))
    (change,) = run.plan
    assert (run.status, run.execution_status) == ("completed", "SUCCEEDED"), progress.text()
    # AWS applied the call the executor died after, once: the executor was never invoked again for the change, and
    # its hand-off is spent (consumed before the call), so nothing could apply it a second time.
    assert assert_applied_at_most_once(moto_calls, run.plan) == {change.change_id: 1}
    assert ebs_encryption_on(stack)
    (executor,) = invocations_since(stack, "ExecutorFunction", executors_before)
    assert (executor.request_id, executor.error_type) == (death.request_id, "Runtime.ExitError")
    assert handoffs_of(stack, str(run.execution_arn)) == []
    # The executor's ledger saw the apply start, and no result: what it did is not known from its own records.
    assert [outcome for _, outcome, _ in records_of(stack, run.mission_id, "executor.applying")] == ["applying"]
    assert records_of(stack, run.mission_id, "executor.result") == []
    # The change ends "outcome unknown", and the re-scan at resume says the fix is in place.
    ended = change_results(stack, run.mission_id, [change.change_id])[change.change_id]
    assert (ended["outcome"], ended["verified"]) == ("failed", "fixed")
    assert ended["reason"].startswith("Runtime.ExitError")
    assert OUTCOME_UNKNOWN in ended["reason"]
    (reported,) = mission_report(stack, run.mission_id).changes
    assert (reported.decision, reported.outcome, reported.verified) == ("approved", "failed", "fixed")
    assert OUTCOME_UNKNOWN in reported.reason
    # Even replayed by hand once the fix was undone, the invocation cannot apply the change again.
    stack.client("ec2").disable_ebs_encryption_by_default()
    replayed = replay_executor(stack, str(run.execution_arn))
    assert replayed.get("outcome") != "applied", replayed
    assert moto_calls.count(APPLY) == 1
    assert not ebs_encryption_on(stack)
    assert_no_leak(stack)


def test_an_executor_dying_before_its_aws_call_applies_nothing_and_its_change_ends_outcome_unknown(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    fault = AwsFault(function="ExecutorFunction", operation=APPLY, when="before", effect=DIE)

    with stack.lambdas.faults.inject(fault) as fired:
        run, progress = fix_ebs_encryption(stack)

    one_fired(fired, stack.physical_id("ExecutorFunction"))
    (change,) = run.plan
    assert (run.status, run.execution_status) == ("completed", "SUCCEEDED"), progress.text()
    assert assert_applied_at_most_once(moto_calls, run.plan) == {change.change_id: 0}
    assert not ebs_encryption_on(stack)
    # The approval was spent before the call (never silently lost: the change is reported, the re-scan says the
    # finding is still there).
    assert handoffs_of(stack, str(run.execution_arn)) == []
    ended = change_results(stack, run.mission_id, [change.change_id])[change.change_id]
    assert (ended["outcome"], ended["verified"]) == ("failed", "still_failing")
    assert OUTCOME_UNKNOWN in ended["reason"]
    (reported,) = mission_report(stack, run.mission_id).changes
    assert (reported.outcome, reported.verified) == ("failed", "still_failing")
    assert_no_leak(stack)


def test_an_executor_dying_before_it_consumed_its_approval_applies_nothing_and_the_unspent_approval_is_purged(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    handoff_table = stack.physical_id("HandoffTable")
    consume = AwsFault(
        function="ExecutorFunction",
        operation="dynamodb:DeleteItem",
        when="before",
        effect=DIE,
        matches=lambda params: params.get("TableName") == handoff_table,
    )

    with stack.lambdas.faults.inject(consume) as fired:
        run, progress = fix_ebs_encryption(stack)

    one_fired(fired, stack.physical_id("ExecutorFunction"))
    (change,) = run.plan
    assert (run.status, run.execution_status) == ("completed", "SUCCEEDED"), progress.text()
    assert assert_applied_at_most_once(moto_calls, run.plan) == {change.change_id: 0}
    assert not ebs_encryption_on(stack)
    # The approval was sealed and never opened; the execution's end purges it, so it cannot be used later.
    ((_, decision, sealed),) = records_of(stack, run.mission_id, "approval.decided")
    assert decision == "approved"
    assert sealed["handoff_id"]
    wait_for_no_handoff(stack, str(run.execution_arn))
    ended = change_results(stack, run.mission_id, [change.change_id])[change.change_id]
    assert (ended["outcome"], ended["verified"]) == ("failed", "still_failing")
    assert OUTCOME_UNKNOWN in ended["reason"]
    assert_no_leak(stack)


def test_an_approval_dying_after_sealing_times_out_at_its_heartbeat_and_its_change_is_never_applied(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    executors_before = len(stack.lambdas.records("ExecutorFunction"))
    approvals_before = len(stack.lambdas.records("ApprovalFunction"))
    fault = AwsFault(function="ApprovalFunction", operation="states:SendTaskSuccess", when="before", effect=DIE)

    with stack.lambdas.faults.inject(fault) as fired:
        run, progress = fix_ebs_encryption(stack)

    death = one_fired(fired, stack.physical_id("ApprovalFunction"))
    (change,) = run.plan
    assert (run.status, run.execution_status) == ("completed", "SUCCEEDED"), progress.text()
    died = [r for r in invocations_since(stack, "ApprovalFunction", approvals_before) if r.error_type]
    assert [(r.request_id, r.error_type) for r in died] == [(death.request_id, "Runtime.ExitError")]
    # The approver approved and the hand-off was sealed, but Step Functions never heard of it: the task timed out at
    # its heartbeat, the change failed with that reason, and no executor ever ran.
    ((_, decision, sealed),) = records_of(stack, run.mission_id, "approval.decided")
    assert decision == "approved"
    assert sealed["handoff_id"]
    assert invocations_since(stack, "ExecutorFunction", executors_before) == []
    assert assert_applied_at_most_once(moto_calls, run.plan) == {change.change_id: 0}
    assert not ebs_encryption_on(stack)
    wait_for_no_handoff(stack, str(run.execution_arn))
    ended = change_results(stack, run.mission_id, [change.change_id])[change.change_id]
    assert (ended["decision"], ended["outcome"], ended["reason"]) == ("failed", "skipped", "Approval.HeartbeatTimedOut")
    (reported,) = mission_report(stack, run.mission_id).changes
    assert reported.outcome == "skipped"
    assert reported.reason.endswith("[Approval.HeartbeatTimedOut]")
    assert_no_leak(stack)
