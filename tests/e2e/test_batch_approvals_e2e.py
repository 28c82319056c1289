"""Approvals at scale on the local stack, every function the real handler of template.yaml, driven the way
`aegis-local demo` drives a mission on the seeded account (the emulated phones answer):

- a batch approved end to end: one push for all its changes, each change applied on its own, checked by the executor
  against the root the approver signed, with its own proof;
- a batch denied: every change in it denied, none applied;
- a batch whose approval expires midway: the API's access tokens live a minute here (Auth0's minimum; 10 minutes in
  the default tenant), the changes run one at a time and the later ones after the token expired: those end
  `expired` with the executor's reason, never applied on a stale approval;
- the two-person rule: the same approver answering twice (both of a high-risk request's approval tasks asked of one
  sub) is refused by the executor, nothing applied;
- routing: ApproverRouting sends one check to the second approver, who alone is asked about it.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from aegis.audit import read_trail
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import (
    DEMO_SECOND_APPROVER_SUB,
    Console,
    DemoOptions,
    DemoResult,
    demo_emulator_config,
    run_on_stack,
    stack_arguments,
)
from aegis_local.scenario.phone import ApprovalPolicy

pytestmark = pytest.mark.e2e

# Low risk, one account, the same approvers: the planner makes them one batch.
LOW = ("ec2-ebs-default-encryption-off", "iam-password-policy-weak", "kms-key-rotation-off")
HIGH = "s3-account-public-access-block-off"  # high risk: two distinct approvers
ROUTED = "kms-key-rotation-off"


def run(
    tmp_path: Path,
    options: DemoOptions,
    *,
    emulator_config: Any = None,
    intercept: dict[str, Callable[[Any, Any, Callable[[Any, Any], Any]], Any]] | None = None,
) -> tuple[DemoResult, str, dict[str, Any]]:
    """The demo's mission on a fresh stack; what the audit trail and the Handoff table hold afterwards."""
    arguments = stack_arguments(options)
    if emulator_config is not None:
        arguments["emulator_config"] = emulator_config
    output = io.StringIO()
    with LocalStack(**arguments) as stack:
        registered = [stack.lambdas.intercept(name, interceptor) for name, interceptor in (intercept or {}).items()]
        for context in registered:
            context.__enter__()
        try:
            result = run_on_stack(stack, options, Console(output))
        finally:
            for context in reversed(registered):
                context.__exit__(None, None, None)
        stack.lambdas.wait_idle(15)
        dynamodb = stack.session().resource("dynamodb")
        trail = read_trail(dynamodb.Table(stack.physical_id("AuditTable")), result.run.mission_id)
        left = dynamodb.Table(stack.physical_id("HandoffTable")).scan()["Items"]
        facts = {
            "trail": [{**item, "details": json.loads(item["details"])} for item in trail],
            "handoffs_left": left,
            "approvers": str(stack.parameters["ApproverSubs"]).split(","),
            "account": account_facts(stack.session(), result.seeded),
        }
    return result, output.getvalue(), facts


def account_facts(session: boto3.Session, seeded: Any) -> dict[str, Any]:
    """What the three low-risk changes would fix, read from the account."""
    ec2, iam, kms = session.client("ec2"), session.client("iam"), session.client("kms")
    return {
        "ebs": ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"],
        "password_length": iam.get_account_password_policy()["PasswordPolicy"].get("MinimumPasswordLength"),
        "rotation": kms.get_key_rotation_status(KeyId=seeded.kms_keys["no-rotation"])["KeyRotationEnabled"],
    }


def by_check(result: DemoResult) -> dict[str, Any]:
    return {change.check_id: change for change in result.report.changes}


def records(facts: dict[str, Any], action: str, actor: str | None = None) -> list[dict[str, Any]]:
    return [item for item in facts["trail"] if item["action"] == action and actor in (None, item["actor"])]


def test_a_batch_is_approved_with_one_push_and_each_change_is_applied_against_its_root(tmp_path: Path) -> None:
    options = DemoOptions(policy=ApprovalPolicy(approve_all=True), checks=LOW, report_dir=tmp_path / "reports")
    result, output, facts = run(tmp_path, options)

    assert result.exit_code == 0, output
    changes = by_check(result)
    assert set(changes) == set(LOW)
    assert {(c.decision, c.outcome, c.verified) for c in changes.values()} == {("approved", "applied", "fixed")}
    [request_id] = {c.request_id for c in changes.values()}
    [root] = {c.batch_root for c in changes.values()}
    assert root is not None
    [request] = result.report.requests
    assert (request.request_id, request.kind, request.root, request.count, request.pushes) == (
        request_id,
        "batch",
        root,
        3,
        1,
    )
    assert result.report.pushes == 1
    # The executor checked every change against the root the approver signed, and consumed its own handoff.
    applied = records(facts, "executor.applied")
    assert sorted(r["details"]["change_id"] for r in applied) == sorted(c.change_id for c in changes.values())
    assert {r["details"]["batch_root"] for r in applied} == {root}
    handoff_ids = [a["handoff_id"] for r in applied for a in r["details"]["approvals"]]
    assert len(set(handoff_ids)) == 3, "one handoff per change, each consumed once"
    assert facts["handoffs_left"] == []


def test_a_denied_batch_denies_every_change_in_it_and_applies_none(tmp_path: Path) -> None:
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True, deny=frozenset({"r001"})),
        checks=LOW,
        report_dir=tmp_path / "reports",
    )
    result, output, facts = run(tmp_path, options)

    assert result.exit_code == 0, output
    changes = by_check(result)
    assert {(c.request_id, c.decision, c.outcome) for c in changes.values()} == {("r001", "denied", "skipped")}
    assert {c.verified for c in changes.values()} == {"still_failing"}
    assert records(facts, "executor.applied") == []
    assert (facts["account"]["ebs"], facts["account"]["rotation"]) == (False, False)
    assert facts["account"]["password_length"] != 14
    assert facts["handoffs_left"] == []


def test_a_batch_whose_approval_expires_midway_applies_nothing_on_the_stale_approval(tmp_path: Path) -> None:
    config = demo_emulator_config()
    servers = tuple(
        server.model_copy(update={"token_lifetime_seconds": 60}) if server.authorization_details_types else server
        for server in config.resource_servers
    )
    config = config.model_copy(update={"resource_servers": servers})
    ran: list[str] = []
    lock = threading.Lock()

    def slow_after_the_first(event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        """The first change runs at once; each later one waits until the approval's token has expired (the handoff
        says when: it expires with the token), as a long batch would."""
        with lock:
            ran.append(event["change"]["change_id"])
            first = len(ran) == 1
        if not first:
            handoff_id = event["approval"]["approvals"][0]["handoffs"][event["change"]["change_id"]]
            table = boto3.resource("dynamodb").Table(handoffs_table[0])
            item = table.get_item(Key={"handoff_id": handoff_id}).get("Item")
            assert item is not None, "the change's handoff is there until it is consumed"
            time.sleep(max(0.0, float(item["expires_at"]) - time.time()) + 2)
        return handler(event, context)

    handoffs_table: list[str] = []
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True),
        checks=LOW,
        report_dir=tmp_path / "reports",
        # One change at a time, so the later ones run after the token expired.
        parameters={"MapMaxConcurrency": "1"},
        timeout_seconds=600,
    )
    arguments = stack_arguments(options)
    arguments["emulator_config"] = config
    output = io.StringIO()
    with LocalStack(**arguments) as stack:
        handoffs_table.append(str(stack.physical_id("HandoffTable")))
        with stack.lambdas.intercept("ExecutorFunction", slow_after_the_first):
            result = run_on_stack(stack, options, Console(output))
        stack.lambdas.wait_idle(15)
        left = stack.session().resource("dynamodb").Table(handoffs_table[0]).scan()["Items"]

    assert result.exit_code == 0, output.getvalue()
    changes = {c.change_id: c for c in result.report.changes}
    assert len(ran) == 3
    first, *later = ran
    assert (changes[first].decision, changes[first].outcome) == ("approved", "applied")
    for change_id in later:
        change = changes[change_id]
        assert (change.decision, change.outcome) == ("expired", "skipped")
        assert change.reason.endswith("[Executor.ApprovalExpired]")
        assert change.verified == "still_failing"
    # Consumed and refused, or purged at the end: no approval outlives its mission.
    assert left == []


def test_the_same_approver_twice_is_refused_by_the_two_person_rule(tmp_path: Path) -> None:
    def one_approver_for_both(event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        """Both approval tasks of the two-person request asked of its first approver: the approval function allows
        it (that sub is one of the request's approvers), the executor must not."""
        if isinstance(event, dict) and "request" in event:
            event = {**event, "approver_sub": event["request"]["approvers"][0]}
        return handler(event, context)

    options = DemoOptions(policy=ApprovalPolicy(approve_all=True), checks=(HIGH,), report_dir=tmp_path / "reports")
    result, output, facts = run(tmp_path, options, intercept={"ApprovalFunction": one_approver_for_both})

    assert result.exit_code == 0, output
    [change] = result.report.changes
    assert change.check_id == HIGH
    assert (change.decision, change.outcome) == ("approved", "failed")
    assert change.reason.endswith("[Executor.ApprovalInvalid]")
    assert change.verified == "still_failing"
    assert records(facts, "executor.applied") == []
    decided = [r for r in records(facts, "approval.decided") if r["outcome"] == "approved"]
    assert len(decided) == 2
    assert len({r["details"]["approver_sub"] for r in decided}) == 1, "both approvals were the same sub's"
    assert facts["handoffs_left"] == []


def test_a_check_routed_to_the_second_approver_is_asked_of_that_approver_alone(tmp_path: Path) -> None:
    routing = {"checks": {ROUTED: [DEMO_SECOND_APPROVER_SUB]}}
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True),
        checks=LOW,
        report_dir=tmp_path / "reports",
        parameters={"ApproverRouting": json.dumps(routing)},
    )
    result, output, facts = run(tmp_path, options)

    assert result.exit_code == 0, output
    approvers = facts["approvers"]
    assert len(approvers) == 2
    changes = by_check(result)
    assert {(c.decision, c.outcome) for c in changes.values()} == {("approved", "applied")}
    assert changes[ROUTED].approved_by == [DEMO_SECOND_APPROVER_SUB]
    # The others share a batch of their own (another set of eligible approvers), asked of one approver.
    others = [changes[check] for check in LOW if check != ROUTED]
    assert len({c.request_id for c in others}) == 1
    assert changes[ROUTED].request_id not in {c.request_id for c in others}
    assert len({sub for c in others for sub in c.approved_by}) == 1
    requested = records(facts, "approval.requested", actor="approval")
    routed = [r for r in requested if r["details"]["request_id"] == changes[ROUTED].request_id]
    assert [r["details"]["approver_sub"] for r in routed] == [DEMO_SECOND_APPROVER_SUB]
