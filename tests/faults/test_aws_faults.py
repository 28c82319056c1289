"""AWS answering a function's call with an error in the middle of a whole mission on the local stack: DynamoDB
throttling or a conditional-check failure on the executor's and the agent's audit writes, and EC2 throttling the
remediation call itself.

The error is answered in place of moto's, as moto's server would serialize it (aegis_local.aws.lambdas.faults), from
a botocore hook on the named function's calls only; each attempt of botocore's retry loop is one answer. Each mission
fixes one finding (EBS default encryption off, made so again before each test), approved on the emulated phone.
Each test asserts the mission's end state, that moto saw the change's mutating call at most once, that the audit
trail is complete (every change's terminal record, the chain verified) and that the leak audit is clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from aegis_local.auth0 import EmulatorConfig
from aegis_local.aws.lambdas import AwsError, AwsFault, FiredFault
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.seed import SeededAccount
from tests.support.faults import (
    MissionRun,
    MotoCallLog,
    assert_applied_at_most_once,
    assert_no_leak,
    assert_trail_complete,
    fix_one_check,
    mission_report,
    records_of,
)

CHECK = "ec2-ebs-default-encryption-off"
APPLY = "ec2:EnableEbsEncryptionByDefault"
MISSION_TIMEOUT = 120.0
THROTTLED = AwsError(
    "ProvisionedThroughputExceededException", "The level of configured provisioned throughput exceeded"
)
TAKEN = AwsError("ConditionalCheckFailedException", "The conditional request failed")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    config = EmulatorConfig.default().model_copy(update={"ciba_interval_seconds": 1})
    with LocalStack(emulator_config=config) as running:
        yield running


@pytest.fixture
def finding(stack: LocalStack, seeded: SeededAccount) -> None:
    """The finding each mission fixes, present again whatever an earlier test applied."""
    stack.client("ec2").disable_ebs_encryption_by_default()


def audit_write(stack: LocalStack, action: str) -> Callable[[Mapping[str, Any]], bool]:
    """Matches the PutItem of one audit record (`action`) to the Audit table, as the audit log writes it."""
    table = stack.physical_id("AuditTable")

    def matches(params: Mapping[str, Any]) -> bool:
        item = params.get("Item")
        return params.get("TableName") == table and isinstance(item, Mapping) and item.get("action") == action

    return matches


def fix_ebs_encryption(stack: LocalStack, *faults: AwsFault) -> tuple[MissionRun, list[FiredFault]]:
    with stack.lambdas.faults.inject(*faults) as fired:
        run, progress = fix_one_check(stack, CHECK, timeout=MISSION_TIMEOUT)
    assert (run.status, run.execution_status) == ("completed", "SUCCEEDED"), progress.text()
    return run, list(fired)


def assert_fixed_once(stack: LocalStack, run: MissionRun, moto_calls: MotoCallLog) -> str:
    """The change applied exactly once, its outcome recorded and verified, the report complete, nothing leaked."""
    (change,) = run.plan
    assert assert_applied_at_most_once(moto_calls, run.plan) == {change.change_id: 1}
    assert stack.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
    assert assert_trail_complete(stack, run.mission_id, [change.change_id]) == {change.change_id: "applied"}
    ((_, outcome, result),) = records_of(stack, run.mission_id, "change.result")
    assert (outcome, result["verified"]) == ("applied", "fixed")
    report = mission_report(stack, run.mission_id)
    assert report.status == "completed"
    assert [(c.change_id, c.outcome, c.verified) for c in report.changes] == [(change.change_id, "applied", "fixed")]
    ((_, report_outcome, _),) = records_of(stack, run.mission_id, "mission.report")
    assert report_outcome == "proposed"
    assert_no_leak(stack)
    return change.change_id


def test_a_throttled_executor_audit_write_is_retried_and_the_outcome_still_recorded(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    throttle = AwsFault(
        function="ExecutorFunction",
        operation="dynamodb:PutItem",
        effect=THROTTLED,
        times=2,
        matches=audit_write(stack, "executor.applied"),
    )

    run, fired = fix_ebs_encryption(stack, throttle)

    assert [(f.operation, f.effect) for f in fired] == [("dynamodb:PutItem", THROTTLED.code)] * 2
    change_id = assert_fixed_once(stack, run, moto_calls)
    # Written once, after the throttled attempts: what the executor applied, with its before-state.
    ((actor, outcome, applied),) = records_of(stack, run.mission_id, "executor.applied")
    assert (actor, outcome, applied["change_id"]) == ("executor", "applied", change_id)
    assert applied["before_state"] == {"enabled": False}


def test_a_conditional_check_failure_on_the_executor_audit_write_is_retried_and_the_outcome_still_recorded(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    refuse = AwsFault(
        function="ExecutorFunction",
        operation="dynamodb:PutItem",
        effect=TAKEN,
        matches=audit_write(stack, "executor.applied"),
    )

    run, fired = fix_ebs_encryption(stack, refuse)

    assert len(fired) == 1
    change_id = assert_fixed_once(stack, run, moto_calls)
    ((actor, outcome, applied),) = records_of(stack, run.mission_id, "executor.applied")
    assert (actor, outcome, applied["change_id"]) == ("executor", "applied", change_id)
    ((_, result_outcome, _),) = records_of(stack, run.mission_id, "executor.result")
    assert result_outcome == "applied"


def test_a_conditional_check_failure_on_the_agent_change_result_write_still_completes_the_report(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    refuse = AwsFault(
        function="AgentResumeFunction",
        operation="dynamodb:PutItem",
        effect=TAKEN,
        matches=audit_write(stack, "change.result"),
    )

    run, fired = fix_ebs_encryption(stack, refuse)

    assert len(fired) == 1
    assert_fixed_once(stack, run, moto_calls)


def test_a_throttled_agent_report_write_is_retried_and_the_report_recorded(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    throttle = AwsFault(
        function="AgentResumeFunction",
        operation="dynamodb:PutItem",
        effect=AwsError("ThrottlingException", "Rate of requests exceeds the allowed throughput."),
        times=2,
        matches=audit_write(stack, "mission.report"),
    )

    run, fired = fix_ebs_encryption(stack, throttle)

    assert len(fired) == 2
    assert_fixed_once(stack, run, moto_calls)


def test_a_throttled_remediation_call_is_retried_and_applied_exactly_once(
    stack: LocalStack, finding: None, moto_calls: MotoCallLog
) -> None:
    throttle = AwsFault(
        function="ExecutorFunction",
        operation=APPLY,
        effect=AwsError("RequestLimitExceeded", "Request limit exceeded."),
        times=2,
    )

    run, fired = fix_ebs_encryption(stack, throttle)

    # Two attempts answered by the fault, the third reached moto: applied once, and recorded applied.
    assert len(fired) == 2
    assert_fixed_once(stack, run, moto_calls)
