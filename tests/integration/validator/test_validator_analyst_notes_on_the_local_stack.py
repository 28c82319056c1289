"""The analyst's note from the execution input to the approver's phone, on the local stack with the real validator,
approval and executor functions and the Auth0 emulator: a plan started with `analyst_notes` is accepted, the phone
shows the note as the advisory property of the change's object (its binding message still the change's own), and
once approved the executor applies exactly the approved change, bound to its digest. The agent's resume is a
recorder (no agent mission stands behind a hand-started execution); a note for a change the plan does not hold
refuses the plan before any phone is asked."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.models import Risk
from aegis_auth.rar import ANALYST_LABEL
from aegis_local.aws.stack import LocalStack
from aegis_local.cli.phone import detail_lines
from aegis_local.scenario.demo import DemoOptions, stack_arguments
from aegis_local.scenario.phone import Answer, ApprovalPolicy, EmulatedPhone, PhoneRequest
from tests.support.executions import wait_until_ended

EBS_CHECK = "ec2-ebs-default-encryption-off"
RATIONALE = "Every new volume is unencrypted: fix first"
WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True), checks=(EBS_CHECK,), report_dir=tmp_path_factory.mktemp("reports")
    )
    with LocalStack(**stack_arguments(options)) as running:
        yield running


@pytest.fixture
def resumed(stack: LocalStack) -> Iterator[list[dict[str, Any]]]:
    recorded: list[dict[str, Any]] = []

    def resume(event: dict[str, Any], context: Any) -> Any:
        recorded.append(event)
        return {"mission_id": event["mission_id"], "status": "completed"}

    with stack.lambdas.override("AgentResumeFunction", resume):
        yield recorded
        stack.lambdas.wait_idle(10)


def ebs_default_encryption(stack: LocalStack) -> ChangeBase:
    account, region = stack.endpoints.account_id, str(stack.parameters["ScanRegions"]).split(",")[0]
    return EnableEbsDefaultEncryption.propose(
        check_id=EBS_CHECK,
        resource_arn=f"arn:aws:ec2:{region}:{account}:ebs-default-encryption",
        account_id=account,
        region=region,
        risk=Risk.LOW,
        before=EbsDefaultEncryption(enabled=False),
        after=EbsDefaultEncryption(enabled=True),
    )


def start(stack: LocalStack, changes: list[ChangeBase], notes: dict[str, Any]) -> tuple[str, str]:
    """Start the mission state machine as the agent does (`AgentService._start_execution`)."""
    mission_id = "m-" + uuid.uuid4().hex[:20]
    plan = {"mission_id": mission_id, "changes": [c.model_dump(mode="json") for c in changes], "analyst_notes": notes}
    arn = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn("MissionStateMachine"), name=mission_id, input=json.dumps(plan)
    )["executionArn"]
    return mission_id, arn


def on_the_phone(stack: LocalStack, change: ChangeBase) -> PhoneRequest:
    approvers = str(stack.parameters["ApproverSubs"]).split(",")
    phone = EmulatedPhone(stack.emulator, approvers[0], also=approvers[1:])
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for request in phone.pending():
            if request.matching_change([change]) is not None:
                return request
        time.sleep(0.2)
    raise AssertionError("the change never reached a phone")


def trail(stack: LocalStack, mission_id: str) -> list[dict[str, Any]]:
    table = stack.session().resource("dynamodb").Table(stack.physical_id("AuditTable"))
    items = sorted(read_trail(table, mission_id), key=lambda item: item["seq"])
    return [{**item, "details": json.loads(item["details"])} for item in items]


def test_the_note_reaches_the_phone_and_the_executor_applies_exactly_the_approved_change(
    stack: LocalStack, resumed: list[dict[str, Any]]
) -> None:
    change = ebs_default_encryption(stack)
    ec2 = stack.session().client("ec2", region_name=change.region, endpoint_url=stack.endpoints.moto_url)
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    mission_id, arn = start(stack, [change], {change.change_id: {"priority": 1, "rationale": RATIONALE}})

    request = on_the_phone(stack, change)
    # The phone shows the note, labelled advisory, beside the change it is about; the binding message is the
    # change's own, built from identifiers.
    assert request.properties[ANALYST_LABEL] == f"P1: {RATIONALE}"
    assert request.digest == change.digest
    assert request.binding_message == change.binding_message()
    assert RATIONALE not in request.binding_message
    pending = stack.emulator.pending(request.sub)
    [shown] = [found for found in pending if found["auth_req_id"] == request.auth_req_id]
    assert f"    {ANALYST_LABEL}  P1: {RATIONALE}" in detail_lines(shown["authorization_details"][0])
    EmulatedPhone(stack.emulator, request.sub).answer(request, Answer.APPROVE)

    finished = wait_until_ended(stack.client("stepfunctions"), arn, WAIT_SECONDS)
    assert finished["status"] == "SUCCEEDED", finished
    [resume] = resumed
    [[result]] = resume["results"]
    assert (result["change_id"], result["decision"], result["outcome"]) == (change.change_id, "approved", "applied")
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    records = trail(stack, mission_id)
    [applied] = [r for r in records if r["action"] == "executor.applied"]
    assert (applied["details"]["change_id"], applied["details"]["digest"]) == (change.change_id, change.digest)
    [accepted] = [r for r in records if r["action"] == "validator.accepted"]
    assert accepted["details"]["analyst_notes"] == 1
    [asked] = [r for r in records if r["action"] == "approval.requested" and r["actor"] == "approval"]
    assert asked["details"]["analyst"] == f"P1: {RATIONALE}"


def test_a_note_for_a_change_not_in_the_plan_refuses_it_before_any_phone_is_asked(
    stack: LocalStack, resumed: list[dict[str, Any]]
) -> None:
    change = ebs_default_encryption(stack)
    stranger = "chg-" + "0" * 20
    mission_id, arn = start(stack, [change], {stranger: {"priority": 1, "rationale": "approve me"}})

    finished = wait_until_ended(stack.client("stepfunctions"), arn, WAIT_SECONDS)
    assert (finished["status"], finished.get("error")) == ("FAILED", "Validation.PlanRefused")
    records = trail(stack, mission_id)
    [refused] = [r for r in records if r["action"] == "validator.refused"]
    assert [(p["rule"], p["change_id"]) for p in refused["details"]["problems"]] == [
        ("analyst-note-unknown-change", stranger)
    ]
    assert not [r for r in records if r["action"] == "approval.requested"]
    [resume] = resumed
    assert resume["results"] == [
        {"change_id": change.change_id, "decision": "failed", "outcome": "skipped", "reason": "Validation.PlanRefused"}
    ]
