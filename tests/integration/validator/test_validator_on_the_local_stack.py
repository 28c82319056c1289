"""Forged plans submitted straight to the mission state machine of template.yaml on the local stack, as anyone who
may call states:StartExecution could: the real ValidatorFunction (its template environment, the Audit table with
its ByChange index) refuses them before any approval is requested, audits the refusal, tells the agent change by
change and ends the execution failed. A valid plan reaches the approvals planned into requests, each change inside
exactly one.

The approval, executor and resume functions are routed to recorders (the stack's override seam); the validator is
the real one.
"""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aegis.approvals.requests import ApprovalRequest
from aegis.audit import AuditLog, read_trail
from aegis.catalogue import ChangeBase, Undo
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.catalogue.kinds.strengthen_password_policy import PasswordPolicy, StrengthenPasswordPolicy
from aegis.models import Risk
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import demo_emulator_config
from tests.support.executions import wait_until_ended


class Recorders:
    def __init__(self) -> None:
        self.approvals: queue.Queue[dict[str, Any]] = queue.Queue()
        self.executed: list[dict[str, Any]] = []
        self.resumed: list[dict[str, Any]] = []

    def approval(self, event: dict[str, Any], context: Any) -> None:
        self.approvals.put(event)

    def executor(self, event: dict[str, Any], context: Any) -> Any:
        self.executed.append(event)
        return {"change_id": event["change"]["change_id"], "outcome": "applied", "reason": ""}

    def resume(self, event: dict[str, Any], context: Any) -> Any:
        self.resumed.append(event)
        return {"mission_id": event["mission_id"], "status": "completed"}

    def pending_approvals(self) -> list[dict[str, Any]]:
        found = []
        while not self.approvals.empty():
            found.append(self.approvals.get_nowait())
        return found


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Two approvers: an undo is a high-risk change, which needs two distinct approvers (ApprovalTwoPersonRisk).
    with LocalStack(emulator_config=demo_emulator_config(approvers=2)) as running:
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


def account(stack: LocalStack) -> str:
    return stack.endpoints.account_id


def region(stack: LocalStack) -> str:
    return str(stack.parameters["ScanRegions"]).split(",")[0]


def key_rotation(stack: LocalStack, index: int = 0) -> ChangeBase:
    return EnableKmsKeyRotation.propose(
        check_id="kms-key-rotation-off",
        resource_arn=f"arn:aws:kms:{region(stack)}:{account(stack)}:key/{uuid.UUID(int=index)}",
        account_id=account(stack),
        region=region(stack),
        risk=Risk.LOW,
        before=KeyRotation(rotation_enabled=False),
        after=KeyRotation(rotation_enabled=True),
    )


def open_ssh(stack: LocalStack) -> ChangeBase:
    rule = SecurityGroupRule(
        rule_id="sgr-0123456789abcdef0",
        is_egress=False,
        ip_protocol="tcp",
        from_port=22,
        to_port=22,
        cidr_ipv4="0.0.0.0/0",
    )
    return RevokeSecurityGroupRules.propose(
        check_id="ec2-admin-port-open-ipv4",
        resource_arn=f"arn:aws:ec2:{region(stack)}:{account(stack)}:security-group/sg-0abc",
        account_id=account(stack),
        region=region(stack),
        risk=Risk.MEDIUM,
        before=SecurityGroupRules(group_id="sg-0abc", rules=(rule,)),
        after=SecurityGroupRules(group_id="sg-0abc", rules=()),
    )


def weak_passwords(stack: LocalStack) -> ChangeBase:
    before = PasswordPolicy(minimum_password_length=8)
    return StrengthenPasswordPolicy.propose(
        check_id="iam-password-policy-weak",
        resource_arn=f"arn:aws:iam::{account(stack)}:account-password-policy",
        account_id=account(stack),
        region="us-east-1",
        risk=Risk.LOW,
        before=before,
        after=before.strengthened(),
    )


def start(stack: LocalStack, changes: list[Any], name: str | None = None) -> tuple[str, str]:
    mission_id = "m-" + uuid.uuid4().hex[:20]
    wired = [c.model_dump(mode="json") if isinstance(c, ChangeBase) else c for c in changes]
    arn = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn("MissionStateMachine"),
        name=name or mission_id,
        input=json.dumps({"mission_id": mission_id, "changes": wired}),
    )["executionArn"]
    return mission_id, arn


def finish(stack: LocalStack, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    return wait_until_ended(stack.client("stepfunctions"), execution_arn, timeout)


def audit_table(stack: LocalStack) -> Any:
    return (
        stack.session()
        .resource("dynamodb", endpoint_url=stack.endpoints.moto_url)
        .Table(stack.physical_id("AuditTable"))
    )


def verdicts(stack: LocalStack, key: str) -> list[dict[str, Any]]:
    items = sorted(read_trail(audit_table(stack), key), key=lambda item: item["seq"])
    return [
        {**item, "details": json.loads(item["details"])} for item in items if item["action"].startswith("validator.")
    ]


def test_a_valid_plan_reaches_the_approvals_planned_into_requests(stack: LocalStack, recorders: Recorders) -> None:
    changes = [open_ssh(stack), weak_passwords(stack)]
    mission_id, arn = start(stack, changes)
    # Medium and low, one account, the same approvers: one batch, so one approval task for its one approver.
    deadline = time.monotonic() + 20
    while recorders.approvals.empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    approvals = recorders.pending_approvals()
    for approval in approvals:
        stack.client("stepfunctions").send_task_failure(
            taskToken=approval["task_token"], error="Approval.Denied", cause="test"
        )
    finished = finish(stack, arn)

    assert finished["status"] == "SUCCEEDED"
    [approval] = approvals
    request = ApprovalRequest.model_validate(approval["request"])
    request.check_root()  # the root and the proofs are the changes' own
    assert request.kind == "batch"
    assert list(request.approvers) == [approval["approver_sub"]]
    assert approval["approver_sub"] in str(stack.parameters["ApproverSubs"]).split(",")
    assert sorted((item.change for item in request.items), key=lambda c: str(c["change_id"])) == sorted(
        (c.model_dump(mode="json") for c in changes), key=lambda c: c["change_id"]
    )
    assert request.review_url is None  # no console served with this stack
    [accepted] = verdicts(stack, mission_id)
    assert (accepted["action"], accepted["actor"]) == ("validator.accepted", "validator")
    assert [c["change_id"] for c in accepted["details"]["changes"]] == [c.change_id for c in changes]
    assert [r["root"] for r in accepted["details"]["requests"]] == [request.root]
    assert stack.lambdas.records("ValidatorFunction")[-1].error_type is None
    # Denying the batch denied both changes.
    [resumed] = recorders.resumed
    assert sorted((r["change_id"], r["decision"]) for group in resumed["results"] for r in group) == sorted(
        (c.change_id, "denied") for c in changes
    )


def test_a_plan_over_the_change_cap_is_refused_before_any_approval_and_the_agent_is_told(
    stack: LocalStack, recorders: Recorders
) -> None:
    cap = int(stack.parameters["MaxChangesPerMission"])
    changes = [key_rotation(stack, index) for index in range(cap + 1)]
    mission_id, arn = start(stack, changes)
    finished = finish(stack, arn)

    assert (finished["status"], finished.get("error")) == ("FAILED", "Validation.PlanRefused")
    assert recorders.pending_approvals() == []
    assert recorders.executed == []
    [resumed] = recorders.resumed
    assert resumed == {
        "mission_id": mission_id,
        "results": [
            {"change_id": c.change_id, "decision": "failed", "outcome": "skipped", "reason": "Validation.PlanRefused"}
            for c in changes
        ],
    }
    [refused] = verdicts(stack, mission_id)
    assert (refused["action"], refused["outcome"]) == ("validator.refused", "refused")
    assert [p["rule"] for p in refused["details"]["problems"]] == ["too-many-changes"]
    assert stack.lambdas.records("ValidatorFunction")[-1].error_type == "Validation.PlanRefused"


def test_forged_changes_are_refused_each_by_its_rule(stack: LocalStack, recorders: Recorders) -> None:
    ssh = open_ssh(stack)
    other_account = type(ssh).propose(
        **(
            ssh.model_dump(exclude={"kind", "change_id"})
            | {"account_id": "210987654321", "resource_arn": ssh.resource_arn.replace(account(stack), "210987654321")}
        )
    )
    tampered = ssh.model_dump(mode="json")
    tampered["before"]["rules"][0]["cidr_ipv4"] = "10.0.0.0/8"  # the approver would be shown another rule
    mission_id, arn = start(stack, [other_account, tampered])
    finished = finish(stack, arn)

    assert (finished["status"], finished.get("error")) == ("FAILED", "Validation.PlanRefused")
    assert recorders.pending_approvals() == []
    [refused] = verdicts(stack, mission_id)
    # The other account's change names its own account in its ARN: refused once for its account, and the plan once
    # for spanning two accounts (the tampered change is about this one).
    assert [(p["index"], p["rule"]) for p in refused["details"]["problems"]] == [
        (None, "account-out-of-scope"),
        (0, "account-out-of-scope"),
        (1, "not-a-catalogue-change"),
    ]


def missions_table(stack: LocalStack) -> Any:
    return (
        stack.session()
        .resource("dynamodb", endpoint_url=stack.endpoints.moto_url)
        .Table(stack.physical_id("MissionsTable"))
    )


def in_account(change: ChangeBase, account_id: str, stack: LocalStack) -> ChangeBase:
    return type(change).propose(
        **(
            change.model_dump(exclude={"kind", "change_id"})
            | {"account_id": account_id, "resource_arn": change.resource_arn.replace(account(stack), account_id)}
        )
    )


def start_for(stack: LocalStack, changes: list[ChangeBase], item: dict[str, Any] | None) -> tuple[str, str]:
    """Start a mission whose Missions item (as the agent writes it before the execution) is `item`, if any."""
    mission_id = "m-" + uuid.uuid4().hex[:20]
    if item is not None:
        missions_table(stack).put_item(Item={"mission_id": mission_id, **item})
    arn = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn("MissionStateMachine"),
        name=mission_id,
        input=json.dumps({"mission_id": mission_id, "changes": [c.model_dump(mode="json") for c in changes]}),
    )["executionArn"]
    return mission_id, arn


def test_a_member_accounts_plan_is_accepted_in_that_accounts_mission_only(
    stack: LocalStack, recorders: Recorders
) -> None:
    member = "210987654321"
    change = in_account(key_rotation(stack, 7), member, stack)

    # Its own mission: the real validator reads the account from the Missions table and plans the request.
    accepted_id, accepted_arn = start_for(stack, [change], {"account_id": member, "org_scan": "org-" + "a" * 20})
    deadline = time.monotonic() + 20
    while recorders.approvals.empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    approvals = recorders.pending_approvals()
    assert approvals, "the member account's plan reached the approvals"
    for approval in approvals:
        stack.client("stepfunctions").send_task_failure(taskToken=approval["task_token"], error="Approval.Denied")
    assert finish(stack, accepted_arn)["status"] == "SUCCEEDED"
    [accepted] = verdicts(stack, accepted_id)
    assert (accepted["action"], accepted["details"]["account_id"]) == ("validator.accepted", member)

    # The same change in a mission of the security account, of another member, or with no item at all: refused.
    for item in ({"account_id": account(stack)}, {"account_id": "333344445555"}, None):
        refused_id, refused_arn = start_for(stack, [change], item)
        assert finish(stack, refused_arn).get("error") == "Validation.PlanRefused"
        [refused] = verdicts(stack, refused_id)
        assert [p["rule"] for p in refused["details"]["problems"]] == ["account-out-of-scope"]
    assert recorders.pending_approvals() == []


def test_a_plan_spanning_two_accounts_is_refused_on_the_stack(stack: LocalStack, recorders: Recorders) -> None:
    member = "210987654321"
    changes = [key_rotation(stack, 8), in_account(key_rotation(stack, 9), member, stack)]
    mission_id, arn = start_for(stack, changes, {"account_id": member})
    assert finish(stack, arn).get("error") == "Validation.PlanRefused"
    [refused] = verdicts(stack, mission_id)
    assert [(p["index"], p["rule"], p["detail"]) for p in refused["details"]["problems"]] == [
        (None, "account-out-of-scope", "a plan spans several accounts")
    ]
    assert recorders.pending_approvals() == []


def test_an_undo_is_refused_until_the_executor_has_audited_the_change_applied(
    stack: LocalStack, recorders: Recorders
) -> None:
    original = key_rotation(stack, 99)
    undo = Undo.of(original)
    refused_id, refused_arn = start(stack, [undo])
    assert finish(stack, refused_arn).get("error") == "Validation.PlanRefused"
    [refused] = verdicts(stack, refused_id)
    assert [p["rule"] for p in refused["details"]["problems"]] == ["undo-not-applied"]
    assert recorders.pending_approvals() == []

    # The record the executor writes once it applied the change (aegis_executor.execute, `executor.applied`).
    applied_in = "m-" + uuid.uuid4().hex[:20]
    AuditLog(audit_table(stack), "executor").append(
        applied_in,
        "executor.applied",
        "applied",
        change_id=original.change_id,
        execution_arn=stack.state_machine_arn("MissionStateMachine").replace(":stateMachine:", ":execution:")
        + f":{applied_in}",
        digest=original.digest,
        approver_sub="auth0|approver",
    )
    accepted_id, accepted_arn = start(stack, [undo])
    deadline = time.monotonic() + 20
    while recorders.approvals.qsize() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # A request of its own, asked of two distinct approvers (the two-person rule).
    first, second = recorders.pending_approvals()
    assert first["request"] == second["request"]
    assert first["request"]["kind"] == "single"
    assert sorted(first["request"]["approvers"]) == sorted({first["approver_sub"], second["approver_sub"]})
    assert [item["change"] for item in first["request"]["items"]] == [undo.model_dump(mode="json")]
    stack.client("stepfunctions").send_task_failure(taskToken=first["task_token"], error="Approval.Denied")
    assert finish(stack, accepted_arn)["status"] == "SUCCEEDED"
    assert [v["action"] for v in verdicts(stack, accepted_id)] == ["validator.accepted"]


def test_a_high_risk_change_is_asked_of_two_distinct_approvers_and_one_denial_denies_it(
    stack: LocalStack, recorders: Recorders
) -> None:
    high = type(weak_passwords(stack)).propose(
        **(weak_passwords(stack).model_dump(exclude={"kind", "change_id"}) | {"risk": Risk.HIGH})
    )
    _, arn = start(stack, [high])
    deadline = time.monotonic() + 20
    while recorders.approvals.qsize() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    first, second = recorders.pending_approvals()
    assert {first["approver_sub"], second["approver_sub"]} == set(str(stack.parameters["ApproverSubs"]).split(","))
    stack.client("stepfunctions").send_task_failure(taskToken=first["task_token"], error="Approval.Denied", cause="x")
    assert finish(stack, arn)["status"] == "SUCCEEDED"

    assert recorders.executed == []
    [resumed] = recorders.resumed
    assert resumed["results"] == [
        [{"change_id": high.change_id, "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"}]
    ]


def test_an_execution_not_named_after_its_mission_is_malformed_and_nobody_is_answered(
    stack: LocalStack, recorders: Recorders
) -> None:
    name = "forged-" + uuid.uuid4().hex[:8]
    mission_id, arn = start(stack, [key_rotation(stack)], name=name)
    finished = finish(stack, arn)

    assert (finished["status"], finished.get("error")) == ("FAILED", "Validation.PlanMalformed")
    assert recorders.resumed == []
    assert recorders.pending_approvals() == []
    [malformed] = verdicts(stack, mission_id)
    assert (malformed["outcome"], malformed["details"]["reason"]) == (
        "malformed",
        "the execution is not named after its mission",
    )
