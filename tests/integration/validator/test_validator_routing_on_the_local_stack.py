"""Approver routing on the local stack, with the real ValidatorFunction and a deployment of two approvers whose
ApproverRouting sends one check to the second approver only: that check's changes are asked of that approver alone,
the others round-robin over both, and a high-risk change of the routed check (which needs two distinct approvers) is
refused by name, never downgraded. The approval, executor and resume functions are recorders."""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aegis.approvals.policy import NEEDS_SECOND_APPROVER
from aegis.audit import read_trail
from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from aegis.models import Risk
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import DEMO_SECOND_APPROVER_SUB, demo_emulator_config
from tests.support.executions import wait_until_ended

ROUTED_CHECK = "kms-key-rotation-off"


class Recorders:
    def __init__(self) -> None:
        self.approvals: queue.Queue[dict[str, Any]] = queue.Queue()
        self.resumed: list[dict[str, Any]] = []

    def approval(self, event: dict[str, Any], context: Any) -> None:
        self.approvals.put(event)

    def executor(self, event: dict[str, Any], context: Any) -> Any:
        raise AssertionError("nothing is approved in these tests")

    def resume(self, event: dict[str, Any], context: Any) -> Any:
        self.resumed.append(event)
        return {"mission_id": event["mission_id"], "status": "completed"}

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            try:
                found.append(self.approvals.get(timeout=0.1))
            except queue.Empty:
                continue
        time.sleep(0.5)
        assert self.approvals.empty(), "more approval tasks than requests' approvers"
        return found


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    routing = {"checks": {ROUTED_CHECK: [DEMO_SECOND_APPROVER_SUB]}}
    with LocalStack(
        emulator_config=demo_emulator_config(approvers=2), parameters={"ApproverRouting": json.dumps(routing)}
    ) as running:
        yield running


@pytest.fixture
def recorders(stack: LocalStack) -> Iterator[Recorders]:
    recorded = Recorders()
    with (
        stack.lambdas.override("ApprovalFunction", recorded.approval),
        stack.lambdas.override("ExecutorFunction", recorded.executor),
        stack.lambdas.override("AgentResumeFunction", recorded.resume),
    ):
        yield recorded
        stack.lambdas.wait_idle(10)


def key_rotation(stack: LocalStack, index: int, risk: Risk = Risk.LOW) -> ChangeBase:
    account, region = stack.endpoints.account_id, str(stack.parameters["ScanRegions"]).split(",")[0]
    return EnableKmsKeyRotation.propose(
        check_id=ROUTED_CHECK,
        resource_arn=f"arn:aws:kms:{region}:{account}:key/{uuid.UUID(int=index)}",
        account_id=account,
        region=region,
        risk=risk,
        before=KeyRotation(rotation_enabled=False),
        after=KeyRotation(rotation_enabled=True),
    )


def start(stack: LocalStack, changes: list[ChangeBase]) -> tuple[str, str]:
    mission_id = "m-" + uuid.uuid4().hex[:20]
    arn = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn("MissionStateMachine"),
        name=mission_id,
        input=json.dumps({"mission_id": mission_id, "changes": [c.model_dump(mode="json") for c in changes]}),
    )["executionArn"]
    return mission_id, arn


def deny_all(stack: LocalStack, approvals: list[dict[str, Any]]) -> None:
    for approval in approvals:
        stack.client("stepfunctions").send_task_failure(taskToken=approval["task_token"], error="Approval.Denied")


def test_a_routed_check_is_asked_of_its_approver_only(stack: LocalStack, recorders: Recorders) -> None:
    approvers = str(stack.parameters["ApproverSubs"]).split(",")
    assert len(approvers) == 2
    assert DEMO_SECOND_APPROVER_SUB in approvers
    changes = [key_rotation(stack, index) for index in range(3)]
    _, arn = start(stack, changes)
    [approval] = recorders.wait_for(1)
    deny_all(stack, [approval])
    assert wait_until_ended(stack.client("stepfunctions"), arn, 30)["status"] == "SUCCEEDED"

    assert approval["approver_sub"] == DEMO_SECOND_APPROVER_SUB
    assert approval["request"]["approvers"] == [DEMO_SECOND_APPROVER_SUB]
    assert approval["request"]["kind"] == "batch"
    assert sorted(item["change"]["change_id"] for item in approval["request"]["items"]) == sorted(
        c.change_id for c in changes
    )


def test_a_high_risk_change_of_a_check_routed_to_one_approver_is_refused_never_downgraded(
    stack: LocalStack, recorders: Recorders
) -> None:
    high = key_rotation(stack, 7, Risk.HIGH)
    mission_id, arn = start(stack, [key_rotation(stack, 8), high])
    finished = wait_until_ended(stack.client("stepfunctions"), arn, 30)

    assert (finished["status"], finished.get("error")) == ("FAILED", "Validation.PlanRefused")
    assert recorders.approvals.empty()
    audit = (
        stack.session()
        .resource("dynamodb", endpoint_url=stack.endpoints.moto_url)
        .Table(stack.physical_id("AuditTable"))
    )
    [refused] = [item for item in read_trail(audit, mission_id) if item["action"] == "validator.refused"]
    problems = json.loads(refused["details"])["problems"]
    assert [(p["rule"], p["change_id"]) for p in problems] == [(NEEDS_SECOND_APPROVER, high.change_id)]
    [resumed] = recorders.resumed
    assert {r["reason"] for r in resumed["results"]} == {"Validation.PlanRefused"}
