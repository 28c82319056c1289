"""The kill switch against a real mission on the local stack: the agent's scan, the mission state machine, the
approval function polling CIBA at the Auth0 emulator, the executor, and the kill switch function, all the real
handlers of template.yaml.

One mission with three changes, caught at three moments: one approved and about to be applied (its executor held
at its entry), one whose approval is polling, one still waiting on the approver's phone. After the trigger none of
them changes anything, the execution ends, the scan rules are disabled, every unconsumed approval is purged, the
approver's refresh tokens are revoked (by the kill switch's own M2M client, the approval application holding no
Management API grant), RemediationRole and UndoRole carry AegisHalted and the deny-older-sessions policy. Re-arming
lifts AegisHalted and lets a new scan start a new mission.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from aegis.audit import read_trail
from aegis.reporting.assembly import audit_details
from aegis_local.auth0 import (
    CIBA_GRANT,
    CLIENT_CREDENTIALS_GRANT,
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVAL_CLIENT_ID,
    REFRESH_TOKEN_GRANT,
    ClientConfig,
    EmulatorConfig,
    GuardianError,
)
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.seed import SeededAccount, seed_account

pytestmark = pytest.mark.e2e

CHECKS = ["ec2-ebs-default-encryption-off", "iam-password-policy-weak", "kms-key-rotation-off"]
ABOUT_TO_APPLY = "Enable EBS default encryption"
POLLING = "Strengthen IAM password policy"
WAITING_ON_PHONE = "Enable rotation kms key"
TIMEOUT = 60.0
# An application through which the approver holds a refresh token: the approval application is issued none, and the
# kill switch revokes every refresh token of the approvers, whichever client holds it.
REFRESH_TOKEN_CLIENT = "e2e-approver-app"


def emulator_config() -> EmulatorConfig:
    """The default tenant with one-second CIBA polls. The application client keeps its own grants (no client
    credentials, no Management API): the kill switch calls the Management API as its own M2M client."""
    config = EmulatorConfig.default().model_copy(update={"ciba_interval_seconds": 1})
    app = config.client(DEFAULT_APPROVAL_CLIENT_ID)
    assert CLIENT_CREDENTIALS_GRANT not in app.grant_types
    assert not app.management_scopes
    holder = ClientConfig(client_id=REFRESH_TOKEN_CLIENT, grant_types=(CIBA_GRANT, REFRESH_TOKEN_GRANT))
    return config.model_copy(update={"clients": (*config.clients, holder)})


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Each change a request of its own (no batches): the test stops the mission with one change about to apply, one
    # being polled and one still on the phone.
    with LocalStack(emulator_config=emulator_config(), parameters={"ApprovalBatchMaxRisk": "none"}) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(stack: LocalStack) -> SeededAccount:
    return seed_account(stack.session(), stack.identity.region)


class ExecutorGate:
    """Holds each executor invocation at its entry until released, then runs the real executor handler."""

    def __init__(self, stack: LocalStack) -> None:
        self._code = stack.function("ExecutorFunction").code_dir / "app.py"
        self.entered = threading.Event()
        self.release = threading.Event()
        self.results: list[Any] = []

    def __call__(self, event: Any, context: Any) -> Any:
        # Loaded here, in the invocation's thread, so that it reads the executor's own environment.
        spec = importlib.util.spec_from_file_location("executor_app_behind_gate", self._code)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.entered.set()
        assert self.release.wait(TIMEOUT), "the test never released the executor"
        result = module.handler(event, context)
        self.results.append(result)
        return result


def approver_refresh_token(stack: LocalStack, sub: str) -> tuple[httpx.Client, str]:
    """A refresh token of the approver from an ordinary CIBA approval, to show the kill switch revokes it."""
    emulator = stack.emulator
    client_id = REFRESH_TOKEN_CLIENT
    secret = emulator.client_secret(client_id)
    http = httpx.Client(base_url=emulator.issuer, timeout=5)
    started = http.post(
        "bc-authorize",
        data={
            "client_id": client_id,
            "client_secret": secret,
            "scope": "openid offline_access",
            "login_hint": json.dumps({"format": "iss_sub", "iss": emulator.issuer, "sub": sub}),
            "binding_message": "Kill switch e2e",
            "audience": DEFAULT_API_AUDIENCE,
        },
    ).json()
    emulator.approve(started["auth_req_id"])
    time.sleep(started["interval"])
    answer = http.post(
        "oauth/token",
        data={
            "client_id": client_id,
            "client_secret": secret,
            "grant_type": CIBA_GRANT,
            "auth_req_id": started["auth_req_id"],
        },
    )
    assert answer.status_code == 200, answer.text
    return http, answer.json()["refresh_token"]


def refresh_works(stack: LocalStack, http: httpx.Client, refresh_token: str) -> bool:
    client_id = REFRESH_TOKEN_CLIENT
    answer = http.post(
        "oauth/token",
        data={
            "client_id": client_id,
            "client_secret": stack.emulator.client_secret(client_id),
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
    )
    return answer.status_code == 200


def invoke_kill_switch(stack: LocalStack, action: str, reason: str) -> dict[str, Any]:
    answer = stack.client("lambda").invoke(
        FunctionName=stack.physical_id("KillSwitchFunction"),
        Payload=json.dumps({"action": action, "reason": reason, "requested_by": "e2e-oncall"}),
    )
    assert "FunctionError" not in answer, answer["Payload"].read()
    return json.loads(answer["Payload"].read())


def executions(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn())["executions"]


def pending_by_message(stack: LocalStack, sub: str) -> dict[str, str]:
    """auth_req_id of each pending request, keyed by the start of its binding message."""
    found: dict[str, str] = {}
    for request in stack.emulator.pending(sub):
        for prefix in (ABOUT_TO_APPLY, POLLING, WAITING_ON_PHONE):
            if request["binding_message"].startswith(prefix):
                found[prefix] = request["auth_req_id"]
    return found


def account_state(stack: LocalStack, seeded: SeededAccount) -> dict[str, Any]:
    ec2 = stack.client("ec2")
    iam = stack.client("iam")
    kms = stack.client("kms")
    return {
        "ebs_default_encryption": ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"],
        "password_policy": iam.get_account_password_policy()["PasswordPolicy"],
        "kms_rotation": kms.get_key_rotation_status(KeyId=seeded.kms_keys["no-rotation"])["KeyRotationEnabled"],
    }


def remediation_role_policy(stack: LocalStack, name: str, role: str = "RemediationRole") -> dict[str, Any] | None:
    iam = stack.client("iam")
    try:
        document = iam.get_role_policy(RoleName=stack.physical_id(role), PolicyName=name)
    except iam.exceptions.NoSuchEntityException:
        return None
    policy = document["PolicyDocument"]
    return json.loads(policy) if isinstance(policy, str) else policy


def failures_in(stack: LocalStack, execution_arn: str) -> list[str]:
    """The errors of the execution's failed tasks."""
    history = stack.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    return [event["taskFailedEventDetails"]["error"] for event in history if event["type"] == "TaskFailed"]


def test_a_trigger_stops_a_mission_at_every_stage_and_rearming_lets_the_next_one_run(
    stack: LocalStack, seeded: SeededAccount
) -> None:
    approver = stack.parameters["ApproverSubs"].split(",")[0]
    before = account_state(stack, seeded)
    assert before["ebs_default_encryption"] is False
    assert before["kms_rotation"] is False
    http, refresh_token = approver_refresh_token(stack, approver)
    assert refresh_works(stack, http, refresh_token)
    gate = ExecutorGate(stack)

    with stack.lambdas.override("ExecutorFunction", gate):
        stack.fire_scan({"regions": [stack.identity.region], "checks": CHECKS, "dry_run": False})
        (mission,) = wait_for(lambda: executions(stack), "the mission to start")
        requests = wait_for(
            lambda: (found := pending_by_message(stack, approver)) and len(found) == 3 and found,
            "three approval requests on the approver's phone",
        )
        # One change approved: its executor is now about to apply it.
        stack.emulator.approve(requests[ABOUT_TO_APPLY])
        assert gate.entered.wait(TIMEOUT), "the approved change never reached the executor"

        report = invoke_kill_switch(stack, "trigger", "e2e: stop the mission at every stage")

        assert report["ok"], [s for s in report["steps"] if not s["ok"]]
        assert report["halted"] is True
        # The approver's phone can no longer approve what was still waiting on it.
        with pytest.raises(GuardianError):
            stack.emulator.approve(requests[WAITING_ON_PHONE])
        gate.release.set()
        wait_for(
            lambda: all(e["status"] != "RUNNING" for e in executions(stack)) and stack.lambdas.wait_idle(1),
            "the mission to end",
        )

    # None of the three changes was applied: the executor that was about to apply stopped at the halt flag, and
    # the two approvals still open were failed with Approval.Halted.
    assert account_state(stack, seeded) == before
    (executor_run,) = stack.lambdas.records("ExecutorFunction")
    assert executor_run.error_type is None
    (result,) = gate.results
    assert result["outcome"] == "halted"
    assert failures_in(stack, mission["executionArn"]).count("Approval.Halted") == 2
    steps = {step["step"]: step for step in report["steps"]}
    assert steps["stop_executions"]["details"]["approvals_failed"] >= 2
    # The approval the executor was about to use (the only one sealed) was purged by the kill switch before the
    # executor could discard it itself: by the trigger's own purge step, or by the end-of-execution purge that its
    # StopExecution set off, whichever reached it first (their order is not fixed, on AWS either). None is left.
    assert steps["purge_handoffs"]["ok"]
    audit = stack.session().resource("dynamodb").Table(stack.physical_id("AuditTable"))

    def purged_by_the_kill_switch() -> int:
        at_the_end = [
            audit_details(item).get("deleted", 0)
            for item in read_trail(audit, mission["name"])
            if item["action"] == "handoff.purged"
        ]
        return int(steps["purge_handoffs"]["details"]["deleted"]) + sum(at_the_end)

    wait_for(purged_by_the_kill_switch, "the sealed approval's purge")
    handoffs = stack.session().resource("dynamodb").Table(stack.physical_id("HandoffTable"))
    assert handoffs.scan()["Items"] == []
    # The scan rules are off (the purge of ended missions stays on), the approver's refresh tokens are revoked, the
    # approver is blocked, and RemediationRole denies every session issued before the trigger.
    assert {name: rule["State"] for name, rule in stack.rules().items()} == {
        "ScheduledScanRule": "DISABLED",
        "ScanRequestRule": "DISABLED",
        "UndoRequestRule": "DISABLED",
        "MissionEndedRule": "ENABLED",
    }
    assert not refresh_works(stack, http, refresh_token)
    revocations = [e for e in stack.emulator.management_events() if e.action == "revoke_access"]
    assert [e.user_id for e in revocations] == [approver]
    # The approver's one refresh token: the mission's approvals carried none (CIBA asks for no offline_access).
    assert revocations[0].detail == "refresh_tokens_revoked=1"
    assert stack.emulator.is_blocked(approver)
    policy = remediation_role_policy(stack, "AegisDenyOlderSessions")
    assert policy is not None
    assert policy["Statement"][0]["Effect"] == "Deny"
    assert "aws:TokenIssueTime" in policy["Statement"][0]["Condition"]["DateLessThan"]
    # And while halted, no session at all: not even one issued after the trigger.
    halted_policy = remediation_role_policy(stack, "AegisHalted")
    assert halted_policy is not None
    assert [(s["Effect"], s["Action"], s["Resource"], s.get("Condition")) for s in halted_policy["Statement"]] == [
        ("Deny", "*", "*", None)
    ]
    # UndoRole, exactly as RemediationRole.
    assert remediation_role_policy(stack, "AegisHalted", "UndoRole") == halted_policy
    assert remediation_role_policy(stack, "AegisDenyOlderSessions", "UndoRole") == policy
    assert ("mission.halted", "ok") in [(i["action"], i["outcome"]) for i in read_trail(audit, mission["name"])]
    # A scheduled scan cannot start anything while halted.
    assert stack.fire_schedule() is None

    rearmed = invoke_kill_switch(stack, "rearm", "e2e: incident closed")

    assert rearmed["ok"], [s for s in rearmed["steps"] if not s["ok"]]
    assert rearmed["halted"] is False
    assert not stack.emulator.is_blocked(approver)
    assert not refresh_works(stack, http, refresh_token)  # re-arming restores no credential
    assert remediation_role_policy(stack, "AegisHalted") is None
    assert remediation_role_policy(stack, "AegisHalted", "UndoRole") is None

    # Sessions issued before the re-arm stay denied (a session of the halt included): the cutoff moved forward.
    def cutoff(document: dict[str, Any] | None) -> str:
        assert document is not None
        return str(document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"])

    rearm_cutoff = cutoff(remediation_role_policy(stack, "AegisDenyOlderSessions"))
    assert rearm_cutoff >= cutoff(policy)
    assert cutoff(remediation_role_policy(stack, "AegisDenyOlderSessions", "UndoRole")) == rearm_cutoff
    stack.fire_scan({"regions": [stack.identity.region], "checks": ["kms-key-rotation-off"], "dry_run": False})
    earlier = set(requests.values())
    new_requests = wait_for(
        lambda: (
            [e for e in executions(stack) if e["status"] == "RUNNING"]
            and [r for r in stack.emulator.pending(approver) if r["auth_req_id"] not in earlier]
        ),
        "a new mission waiting for approval after re-arming",
    )
    # Leave nothing running: the approver denies, and the new mission ends.
    for request in new_requests:
        stack.emulator.deny(request["auth_req_id"])
    wait_for(
        lambda: all(e["status"] != "RUNNING" for e in executions(stack)) and stack.lambdas.wait_idle(1),
        "the new mission to end",
    )
    http.close()
