"""The identity provider failing in the middle of a mission, injected per request at the Auth0 emulator.

Each test runs one whole mission on the local stack (the agent's scan, the state machine, the approval function
polling CIBA, the executor exchanging at Token Vault) with one fault armed at one seam: `bc-authorize`, the CIBA poll
and the Token Vault exchange (both `/oauth/token`, told apart by grant type), and the JWKS. A fault is a 5xx, or a
delay longer than the functions' HTTP read timeout (aegis_jwt.discovery.HTTP_TIMEOUT), for the next n matching
requests. A fault within the functions' limits is retried and the change is applied once; a fault outlasting them
ends in a named failure, and nothing is applied without a verified approval. Besides: the tenant's signing key
rotated in the middle of a mission, and a storm of `slow_down` answers to the CIBA polls.

Every test ends with the four checks of the fault matrix: the mission's end state and the change's final record,
applied at most once by the calls moto saw, the audit trail complete (every change's final `change.result` record and
the chain verified), and the leak audit clean.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

import aegis_approval.ciba
from aegis.audit import read_trail
from aegis.reporting.assembly import audit_details
from aegis_approval.ciba import MAX_TRANSIENT_FAILURES, SLOW_DOWN_INCREMENT_SECONDS
from aegis_jwt.discovery import HTTP_TIMEOUT
from aegis_local.auth0 import CIBA_GRANT, TOKEN_VAULT_GRANT, Auth0Emulator, EmulatorConfig
from aegis_local.auth0.app import BC_AUTHORIZE_PATH, JWKS_PATH, TOKEN_PATH, ObservedRequest
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.seed import SeededAccount
from tests.support.faults import (
    MissionRun,
    MotoCallLog,
    ProgressLog,
    assert_applied_at_most_once,
    assert_no_leak,
    audit_table,
    change_results,
    run_mission,
)

EBS_CHECK = "ec2-ebs-default-encryption-off"
KMS_CHECK = "kms-key-rotation-off"
MISSION_TIMEOUT = 150.0
CIBA_INTERVAL_SECONDS = 1
# The functions give up on a provider answer after the read timeout: a delay past it is a timeout to them.
TIMEOUT_DELAY = float(HTTP_TIMEOUT.read or 10.0) + 1.0
# Attempts the executor makes at Token Vault before the change fails (aegis_executor.execute.Executor).
EXCHANGE_ATTEMPTS = 3
# The state machine's wait for an approval (ApprovalTimeoutSeconds, at its minimum): a slow_down storm must not
# push the approval past it.
APPROVAL_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # One-second CIBA polls; every mission pushes to the same approver, and the failed bc-authorize attempts of the
    # persistent faults take pacing slots, so neither the emulator's per-user limit nor the approver's pacing may
    # be what a test runs into.
    config = EmulatorConfig.default().model_copy(
        update={"ciba_interval_seconds": CIBA_INTERVAL_SECONDS, "ciba_requests_per_user_per_minute": 1000}
    )
    parameters = {
        "ApproverPushesPerMinute": "60",
        "ApprovalTimeoutSeconds": str(APPROVAL_TIMEOUT_SECONDS),
        # Each change its own request, so that one change can be approved before a rotation and one after.
        "ApprovalBatchMaxRisk": "none",
    }
    with LocalStack(emulator_config=config, parameters=parameters) as running:
        yield running


@dataclass
class Provider:
    """The emulator as the test arms it, and what it was sent since the test began."""

    emulator: Auth0Emulator
    since: float  # time.monotonic() at the test's start, as the emulator stamps each request

    def seen(self, path: str, grant_type: str | None = None) -> list[ObservedRequest]:
        return [
            seen
            for seen in self.emulator.observed_requests()
            if seen.at >= self.since and seen.path == path and (grant_type is None or seen.grant_type == grant_type)
        ]


@pytest.fixture
def provider(stack: LocalStack, seeded: SeededAccount) -> Iterator[Provider]:
    """Nothing armed, and the two findings the missions fix present again (a module's missions share one account)."""
    stack.client("ec2").disable_ebs_encryption_by_default()
    stack.client("kms").disable_key_rotation(KeyId=seeded.kms_keys["no-rotation"])
    emulator = stack.emulator
    emulator.clear_faults()
    yield Provider(emulator, time.monotonic())
    emulator.clear_faults()


def mission(stack: LocalStack, *checks: str, answer: str = "approve") -> tuple[MissionRun, ProgressLog]:
    progress = ProgressLog()
    run = run_mission(
        stack,
        {"regions": [stack.identity.region], "checks": list(checks or (EBS_CHECK,)), "dry_run": False},
        answer=answer,  # type: ignore[arg-type]
        timeout=MISSION_TIMEOUT,
        progress=progress,
    )
    assert run.ended, f"{run.problems}\n{progress.text()}"
    assert run.status == "completed", progress.text()
    return run, progress


def approval_decisions(stack: LocalStack, mission_id: str) -> list[dict[str, Any]]:
    return [
        {"outcome": item.get("outcome"), **audit_details(item)}
        for item in read_trail(audit_table(stack), mission_id)
        if item.get("actor") == "approval" and item.get("action") == "approval.decided"
    ]


def pushes(stack: LocalStack, mission_id: str) -> int:
    """How many CIBA requests the approval function recorded as sent."""
    return sum(
        1
        for item in read_trail(audit_table(stack), mission_id)
        if item.get("actor") == "approval" and item.get("action") == "approval.requested"
    )


def handoffs_left(stack: LocalStack) -> list[Any]:
    return list(stack.session().resource("dynamodb").Table(stack.physical_id("HandoffTable")).scan()["Items"])


def ebs_encryption_on(stack: LocalStack) -> bool:
    return bool(stack.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"])


def survived(stack: LocalStack, moto_calls: MotoCallLog, run: MissionRun) -> dict[str, Any]:
    """The fault was retried within limits: the change applied exactly once, verified, recorded; nothing leaked."""
    (change,) = run.plan
    assert assert_applied_at_most_once(moto_calls, run.plan) == {change.change_id: 1}
    assert ebs_encryption_on(stack)
    record = change_results(stack, run.mission_id, [c.change_id for c in run.plan])[change.change_id]
    assert (record["outcome"], record["decision"], record["verified"]) == ("applied", "approved", "fixed")
    assert handoffs_left(stack) == []
    assert_no_leak(stack)
    return record


def failed_by_name(stack: LocalStack, moto_calls: MotoCallLog, run: MissionRun) -> dict[str, Any]:
    """The fault outlasted the limits: the change ends failed with a named error, nothing applied, no approval left
    to use, nothing leaked. Returns the change's final record."""
    (change,) = run.plan
    assert assert_applied_at_most_once(moto_calls, run.plan) == {change.change_id: 0}
    assert not ebs_encryption_on(stack)
    record = change_results(stack, run.mission_id, [c.change_id for c in run.plan])[change.change_id]
    assert record["outcome"] in ("failed", "skipped"), record
    assert handoffs_left(stack) == []
    assert_no_leak(stack)
    return record


# -- bc-authorize ---------------------------------------------------------------------------------------------------


def test_bc_authorize_answering_500_is_retried_and_the_change_applied_once(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    provider.emulator.inject_fault(BC_AUTHORIZE_PATH, status=500, count=2)

    run, _ = mission(stack)

    survived(stack, moto_calls, run)
    assert [seen.fault is not None for seen in provider.seen(BC_AUTHORIZE_PATH)] == [True, True, False]
    assert pushes(stack, run.mission_id) == 1


def test_bc_authorize_timing_out_is_retried_and_the_late_push_approves_nothing_twice(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    # Served late: the provider sends the push its client gave up on, and the retry sends a second one. The phone
    # approves both; only the request the function polls yields a token.
    provider.emulator.inject_fault(BC_AUTHORIZE_PATH, delay_seconds=TIMEOUT_DELAY)

    run, _ = mission(stack)

    survived(stack, moto_calls, run)
    assert [seen.fault is not None for seen in provider.seen(BC_AUTHORIZE_PATH)] == [True, False]
    (decided,) = approval_decisions(stack, run.mission_id)
    assert decided["outcome"] == "approved"


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The approval function's backoff between unanswered requests, a tenth as long: what is under test is how many
    attempts it makes before giving up, not how long it waits between them (tests/unit/approval cover the waits).
    Its 1, 2, 4, 8, 16 s would otherwise make each of these tests half a minute longer."""
    monkeypatch.setattr(aegis_approval.ciba, "BACKOFF_BASE_SECONDS", aegis_approval.ciba.BACKOFF_BASE_SECONDS / 10)


@pytest.mark.usefixtures("quick_backoff")
def test_bc_authorize_failing_past_the_limit_fails_the_approval_by_name_and_pushes_nothing(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    provider.emulator.inject_fault(BC_AUTHORIZE_PATH, status=503, count=MAX_TRANSIENT_FAILURES + 1)

    run, _ = mission(stack)

    record = failed_by_name(stack, moto_calls, run)
    assert record["decision"] == "failed"
    # Every attempt was answered by the fault, none by the tenant: no push ever reached the approver's phone.
    attempts = provider.seen(BC_AUTHORIZE_PATH)
    assert [seen.fault is not None for seen in attempts] == [True] * MAX_TRANSIENT_FAILURES
    (decided,) = approval_decisions(stack, run.mission_id)
    assert (decided["outcome"], decided["error"]) == ("failed", "Approval.Failed")
    assert decided["reason"].startswith("CibaFailed: backchannel authentication failed: HTTP 503")
    assert pushes(stack, run.mission_id) == 0


# -- the CIBA poll --------------------------------------------------------------------------------------------------


def test_a_ciba_poll_answering_500_is_polled_again_and_the_change_applied_once(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    provider.emulator.inject_fault(TOKEN_PATH, grant_type=CIBA_GRANT, status=500, count=2)

    run, _ = mission(stack)

    survived(stack, moto_calls, run)
    polls = provider.seen(TOKEN_PATH, CIBA_GRANT)
    assert [seen.fault is not None for seen in polls[:2]] == [True, True]
    assert polls[-1].fault is None
    assert not provider.seen(TOKEN_PATH, TOKEN_VAULT_GRANT)[0].fault  # the exchange met no fault of the poll's


def test_a_ciba_poll_timing_out_is_polled_again_and_the_change_applied_once(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    # Never reaching the tenant (held, then 504): the grant is not consumed, so polling again is safe.
    provider.emulator.inject_fault(TOKEN_PATH, grant_type=CIBA_GRANT, status=504, delay_seconds=TIMEOUT_DELAY)

    run, _ = mission(stack)

    survived(stack, moto_calls, run)
    polls = provider.seen(TOKEN_PATH, CIBA_GRANT)
    assert polls[0].fault is not None
    assert polls[-1].fault is None
    assert len({seen.ciba_request for seen in polls}) == 1  # the same auth_req_id, not a new push


@pytest.mark.usefixtures("quick_backoff")
def test_ciba_polls_failing_past_the_limit_fail_the_approval_by_name_and_seal_nothing(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    provider.emulator.inject_fault(TOKEN_PATH, grant_type=CIBA_GRANT, status=502, count=MAX_TRANSIENT_FAILURES + 1)

    run, _ = mission(stack)

    failed_by_name(stack, moto_calls, run)
    assert len(provider.seen(TOKEN_PATH, CIBA_GRANT)) == MAX_TRANSIENT_FAILURES
    (decided,) = approval_decisions(stack, run.mission_id)
    assert (decided["outcome"], decided["error"]) == ("failed", "Approval.Failed")
    assert decided["reason"].startswith("CibaFailed: token endpoint unavailable: HTTP 502")
    assert provider.seen(TOKEN_PATH, TOKEN_VAULT_GRANT) == []


# -- the Token Vault exchange ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [{"status": 500, "count": EXCHANGE_ATTEMPTS - 1}, {"delay_seconds": TIMEOUT_DELAY}],
    ids=["500", "timeout"],
)
def test_a_token_exchange_without_an_answer_is_sent_again_and_the_change_applied_once(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog, fault: dict[str, Any]
) -> None:
    provider.emulator.inject_fault(TOKEN_PATH, grant_type=TOKEN_VAULT_GRANT, **fault)

    run, _ = mission(stack)

    survived(stack, moto_calls, run)
    exchanges = provider.seen(TOKEN_PATH, TOKEN_VAULT_GRANT)
    assert [seen.fault is not None for seen in exchanges] == [True] * fault.get("count", 1) + [False]
    assert all(seen.fault is None for seen in provider.seen(TOKEN_PATH, CIBA_GRANT))


def test_a_token_exchange_failing_past_the_limit_fails_the_change_by_name_with_nothing_applied(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    provider.emulator.inject_fault(TOKEN_PATH, grant_type=TOKEN_VAULT_GRANT, status=503, count=EXCHANGE_ATTEMPTS + 1)

    run, _ = mission(stack)

    record = failed_by_name(stack, moto_calls, run)
    assert (record["outcome"], record["decision"], record["reason"]) == (
        "failed",
        "approved",
        "Executor.TokenExchangeFailed",
    )
    assert len(provider.seen(TOKEN_PATH, TOKEN_VAULT_GRANT)) == EXCHANGE_ATTEMPTS
    # No AWS session was ever asked for: the executor stopped before STS.
    assert moto_calls.count("sts:AssumeRoleWithWebIdentity") == 0


# -- the JWKS -------------------------------------------------------------------------------------------------------


def test_the_approvals_keys_unreachable_past_the_retry_fail_the_approval_by_name_and_seal_nothing(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    # A new signing key: the approval function's verifier must fetch the JWKS for the token's kid, and meets the fault.
    provider.emulator.rotate_keys()
    provider.emulator.inject_fault(JWKS_PATH, status=500, count=5)

    run, _ = mission(stack)

    failed_by_name(stack, moto_calls, run)
    (decided,) = approval_decisions(stack, run.mission_id)
    assert (decided["outcome"], decided["error"]) == ("failed", "Approval.Failed")
    assert decided["reason"].startswith("TokenInvalid: the provider's JWKS")
    assert provider.seen(TOKEN_PATH, TOKEN_VAULT_GRANT) == []


@pytest.mark.parametrize("fault", [{"status": 500}, {"delay_seconds": TIMEOUT_DELAY}], ids=["500", "timeout"])
def test_the_approvals_keys_without_an_answer_once_are_fetched_again_and_the_change_applied_once(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog, fault: dict[str, Any]
) -> None:
    provider.emulator.rotate_keys()
    provider.emulator.inject_fault(JWKS_PATH, **fault)

    run, _ = mission(stack)

    survived(stack, moto_calls, run)
    # The fetch that met the fault, then the one sent again, which found the new key.
    faulted, *after = provider.seen(JWKS_PATH)
    assert faulted.fault is not None
    assert after
    assert all(seen.fault is None for seen in after)


def test_the_executors_keys_unreachable_refuse_the_change_by_name_with_nothing_applied(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    emulator = provider.emulator
    emulator.rotate_keys()

    def keys_down_for_the_executor(event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        # Armed once the approval verified its token (the executor is entered only then), so the fault meets the
        # executor's own fetch of the keys.
        emulator.inject_fault(JWKS_PATH, status=503, count=5)
        return handler(event, context)

    with stack.lambdas.intercept("ExecutorFunction", keys_down_for_the_executor):
        run, _ = mission(stack)

    record = failed_by_name(stack, moto_calls, run)
    assert (record["decision"], record["reason"]) == ("approved", "Executor.ApprovalInvalid")
    assert moto_calls.count("sts:AssumeRoleWithWebIdentity") == 0
    refused = [
        audit_details(item)
        for item in read_trail(audit_table(stack), run.mission_id)
        if item.get("action") == "executor.approval_invalid"
    ]
    assert len(refused) == 1
    assert "JWKS answered HTTP 503" in refused[0]["reason"]


# -- key rotation ---------------------------------------------------------------------------------------------------


def test_a_key_rotated_mid_mission_verifies_new_approvals_and_the_old_keys_tokens(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog, seeded: SeededAccount
) -> None:
    emulator = provider.emulator
    approver = str(stack.parameters["ApproverSubs"]).split(",")[0]
    held, release = threading.Event(), threading.Event()
    earlier = {request["auth_req_id"] for request in emulator.pending(approver)}

    def hold_the_first_change(event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        # The first approved change waits here, its approval sealed under the old key, until the key has rotated.
        if not held.is_set():
            held.set()
            assert release.wait(MISSION_TIMEOUT), "the test never released the executor"
        return handler(event, context)

    with (
        stack.lambdas.intercept("ExecutorFunction", hold_the_first_change),
        ThreadPoolExecutor(1) as background,
    ):
        running = background.submit(mission, stack, EBS_CHECK, KMS_CHECK, answer="none")
        try:
            requests = wait_for(
                lambda: (
                    len(found := [r for r in emulator.pending(approver) if r["auth_req_id"] not in earlier]) == 2
                    and found
                ),
                "the mission's two requests on the approver's phone",
            )
            first, second = sorted(requests, key=lambda r: not r["binding_message"].startswith("Enable EBS"))
            emulator.approve(first["auth_req_id"])
            assert held.wait(MISSION_TIMEOUT), "the first approved change never reached the executor"
            old_kid = emulator.signing_kid()
            new_kid = emulator.rotate_keys()
            rotated_at = time.monotonic()
            emulator.approve(second["auth_req_id"])
        finally:
            release.set()
        run, _ = running.result(timeout=MISSION_TIMEOUT + 30)

    assert new_kid != old_kid
    # The old key is still published beside the new one, so what it signed verifies until it expires.
    assert {key["kid"] for key in emulator.tenant.jwks()["keys"]} == {old_kid, new_kid}
    counts = assert_applied_at_most_once(moto_calls, run.plan)
    assert set(counts.values()) == {1}
    records = change_results(stack, run.mission_id, [c.change_id for c in run.plan])
    assert {(r["outcome"], r["verified"]) for r in records.values()} == {("applied", "fixed")}
    assert ebs_encryption_on(stack)
    assert stack.client("kms").get_key_rotation_status(KeyId=seeded.kms_keys["no-rotation"])["KeyRotationEnabled"]
    # The token signed with the new key named a kid no earlier JWKS held: the keys were fetched again.
    assert [seen for seen in provider.seen(JWKS_PATH) if seen.at > rotated_at]
    assert handoffs_left(stack) == []
    assert_no_leak(stack)


# -- slow_down ------------------------------------------------------------------------------------------------------


def test_a_slow_down_storm_grows_the_poll_interval_by_5_s_each_time_and_the_mission_completes(
    stack: LocalStack, provider: Provider, moto_calls: MotoCallLog
) -> None:
    storm = 2
    provider.emulator.slow_down_storm(storm)

    run, _ = mission(stack)

    survived(stack, moto_calls, run)
    polls = provider.seen(TOKEN_PATH, CIBA_GRANT)
    assert [seen.fault is not None for seen in polls] == [True] * storm + [False]
    assert len({seen.ciba_request for seen in polls}) == 1
    # CIBA Core 7.3 / RFC 8628 3.5: each slow_down adds 5 s to the interval for every later poll. The poll after
    # the k-th slow_down comes no sooner than interval + 5k seconds after it.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(polls)]
    wanted = [CIBA_INTERVAL_SECONDS + SLOW_DOWN_INCREMENT_SECONDS * k for k in range(1, storm + 1)]
    assert all(gap >= floor for gap, floor in zip(gaps, wanted, strict=True)), (gaps, wanted)
    # And the whole storm stayed within the state machine's wait for the approval.
    assert polls[-1].at - polls[0].at < APPROVAL_TIMEOUT_SECONDS


def wait_for(condition: Callable[[], Any], what: str, timeout: float = MISSION_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value
