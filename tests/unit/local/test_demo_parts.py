"""The demo's moving parts without a stack: its command line, the executor gate behind --kill-after and --drift, and
how a mission that never resumed is reconstructed from its audit trail."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aegis.catalogue import ChangeBase
from aegis.models import Decision, Outcome
from aegis_local.cli.main import build_parser, main
from aegis_local.reporting.mission_report import explain, results_from_trail
from aegis_local.scenario.demo import DemoUsageError, options_from_args, stack_arguments
from aegis_local.scenario.driver import ExecutorInterceptor
from tests.support.changes import one_of_each_kind

CHANGES = [c for c in one_of_each_kind() if c.kind != "undo"]


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["demo", *argv])


# ---------------------------------------------------------------------------------------------------------------
# the command line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no terminal to play the approver's phone"),
        (["--deny", "kms-key-rotation-off"], "no terminal"),
        (["--approve", "all", "--deny", "no-such-check"], "unknown check id(s): no-such-check"),
        (["--approve", "all", "--check", "nope"], "unknown check id(s) for --check: nope"),
        (["--approve", "all", "--deny", "kms-key-rotation-off", "--drift", "kms-key-rotation-off"], "both --deny"),
        (["--dry-run", "--kill-after", "2"], "--dry-run requests no approval"),
        (["--approve", "all", "--kill-after", "0"], "at least 1"),
        (["--issuer", "https://tenant.eu.auth0.com/"], "also needs --client-id, --client-secret-file"),
        (["--approve", "all", "--audience", "https://api"], "belong to --issuer"),
        (
            [
                "--issuer",
                "https://t.eu.auth0.com/",
                "--client-id",
                "a",
                "--client-secret-file",
                "/dev/null",
                "--approver-sub",
                "s",
                "--killswitch-client-id",
                "m2m",
            ],
            "go together",
        ),
        (
            [
                "--issuer",
                "https://t.eu.auth0.com/",
                "--client-id",
                "a",
                "--client-secret-file",
                "/dev/null",
                "--approver-sub",
                "s",
                "--executor-client-id",
                "exchange-app",
            ],
            "--executor-client-id and --executor-client-secret-file go together",
        ),
        (["--approve", "all", "--executor-client-id", "x"], "belong to --issuer"),
    ],
)
def test_usage_errors_exit_2_before_anything_starts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_your_own_tenant_needs_a_readable_secret_and_no_scripted_answers(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    tenant = ["--issuer", "https://tenant.eu.auth0.com", "--client-id", "app", "--approver-sub", "auth0|me"]
    with pytest.raises(DemoUsageError, match="cannot read --client-secret-file"):
        options_from_args(parse(*tenant, "--client-secret-file", str(secret)), terminal=False)
    secret.write_text("\n")
    with pytest.raises(DemoUsageError, match="is empty"):
        options_from_args(parse(*tenant, "--client-secret-file", str(secret)), terminal=False)
    secret.write_text("s3cr3t-value-of-the-client\n")
    with pytest.raises(DemoUsageError, match="answers on their own phone"):
        options_from_args(parse(*tenant, "--client-secret-file", str(secret), "--approve", "all"), terminal=False)

    options = options_from_args(
        parse(*tenant, "--client-secret-file", str(secret), "--drift", "kms-key-rotation-off"), terminal=False
    )

    assert options.tenant is not None
    assert options.tenant.issuer == "https://tenant.eu.auth0.com/"
    assert options.tenant.client_secret.get_secret_value() == "s3cr3t-value-of-the-client"
    assert "s3cr3t" not in repr(options)
    arguments = stack_arguments(options)
    assert arguments["auth0"] is False
    # Without an M2M or executor application of its own, the kill switch and the executor use the same one.
    assert arguments["secrets"] == {
        "ApprovalAuth0ClientSecretArn": "s3cr3t-value-of-the-client",
        "ExecutorAuth0ClientSecretArn": "s3cr3t-value-of-the-client",
        "KillSwitchAuth0ClientSecretArn": "s3cr3t-value-of-the-client",
    }
    assert arguments["parameters"]["KillSwitchAuth0ClientId"] == "app"
    assert arguments["parameters"]["ExecutorAuth0ClientId"] == "app"
    # moto's STS evaluates nothing, so the connection's name and the approver stand in for what IAM would trust.
    assert arguments["parameters"]["RemediationOidcAudience"] != "sts.amazonaws.com"
    assert arguments["parameters"]["RemediationOidcSubjects"] == "auth0|me"
    assert arguments["parameters"]["Auth0Issuer"] == "https://tenant.eu.auth0.com/"
    assert arguments["parameters"]["ApproverSubs"] == "auth0|me"
    assert "s3cr3t" not in json.dumps(arguments["parameters"])


def test_your_own_tenant_can_give_each_trust_domain_its_own_application(tmp_path: Path) -> None:
    """A tenant set up like a deployment: one application per trust domain, each with its own secret file."""
    files = {}
    for role in ("approval", "executor", "killswitch"):
        files[role] = tmp_path / role
        files[role].write_text(f"secret-of-the-{role}-application\n")
    args = parse(
        *["--issuer", "https://tenant.eu.auth0.com", "--approver-sub", "auth0|me", "--dry-run"],
        *["--client-id", "approval-app", "--client-secret-file", str(files["approval"])],
        *["--executor-client-id", "executor-app", "--executor-client-secret-file", str(files["executor"])],
        *["--killswitch-client-id", "m2m-app", "--killswitch-client-secret-file", str(files["killswitch"])],
    )

    arguments = stack_arguments(options_from_args(args, terminal=False))

    assert arguments["secrets"] == {
        "ApprovalAuth0ClientSecretArn": "secret-of-the-approval-application",
        "ExecutorAuth0ClientSecretArn": "secret-of-the-executor-application",
        "KillSwitchAuth0ClientSecretArn": "secret-of-the-killswitch-application",
    }
    parameters = arguments["parameters"]
    assert (parameters["ApprovalAuth0ClientId"], parameters["ExecutorAuth0ClientId"]) == (
        "approval-app",
        "executor-app",
    )
    assert parameters["KillSwitchAuth0ClientId"] == "m2m-app"
    assert "secret-of" not in json.dumps(parameters)


def test_without_flags_a_terminal_plays_the_phone_and_flags_script_it() -> None:
    assert options_from_args(parse(), terminal=True).interactive
    scripted = options_from_args(
        parse("--approve", "all", "--let-expire", "kms-key-rotation-off", "--report-dir", "out"), terminal=False
    )
    assert not scripted.interactive
    assert scripted.policy.let_expire == {"kms-key-rotation-off"}
    assert scripted.report_dir == Path("out")
    assert not options_from_args(parse("--dry-run"), terminal=False).interactive
    arguments = stack_arguments(scripted)
    assert arguments["emulator_config"].ciba_interval_seconds == 1
    assert arguments["parameters"]["MaxSharePerResourceType"] == "1"


# ---------------------------------------------------------------------------------------------------------------
# the executor gate


def test_kill_after_holds_any_executor_that_could_apply_one_change_too_many() -> None:
    gate = ExecutorInterceptor(kill_after=2)
    started: list[str] = []
    lock = threading.Lock()

    def handler(event: Any, context: Any) -> dict[str, Any]:
        with lock:
            started.append(event["change"]["change_id"])
        time.sleep(0.05)
        return {"change_id": event["change"]["change_id"], "outcome": "applied"}

    context = type("Context", (), {"get_remaining_time_in_millis": staticmethod(lambda: 60_000)})()
    events = [{"change": change.model_dump(mode="json")} for change in CHANGES[:5]]
    threads = [threading.Thread(target=gate, args=(event, context, handler)) for event in events]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while gate.applied_count() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the other three stay held for as long as the kill switch takes

    assert gate.applied_count() == 2
    assert len(started) == 2
    gate.mark_killed()
    for thread in threads:
        thread.join(5)
    assert len(started) == 5  # released: each finds the halt flag (here: the fake handler just runs)


def test_drift_edits_the_resource_once_before_the_executor_runs() -> None:
    order: list[str] = []
    target = CHANGES[0]

    def edit(change: ChangeBase) -> str:
        order.append(f"edit {change.change_id}")
        return "changed by hand"

    def handler(event: Any, context: Any) -> dict[str, Any]:
        order.append(f"execute {event['change']['change_id']}")
        return {"outcome": "drift"}

    gate = ExecutorInterceptor(drift_checks=frozenset({target.check_id}), edit=edit)
    for change in (target, CHANGES[1], target):
        gate({"change": change.model_dump(mode="json")}, None, handler)

    assert order == [
        f"edit {target.change_id}",
        f"execute {target.change_id}",
        f"execute {CHANGES[1].change_id}",
        f"execute {target.change_id}",  # a retried invocation is not edited twice
    ]
    assert gate.drifted == {target.change_id: "changed by hand"}


# ---------------------------------------------------------------------------------------------------------------
# a mission that never resumed


def entry(actor: str, action: str, outcome: str, **details: Any) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "at": "2030-01-01T00:00:00Z",
        "details": json.dumps(details),
    }


def test_results_of_a_stopped_mission_come_from_its_audit_trail() -> None:
    applied, denied, approved_only, untouched = CHANGES[:4]
    trail = [
        entry("approval", "approval.decided", "approved", change_id=applied.change_id, approver_sub="auth0|a"),
        entry(
            "executor",
            "executor.result",
            "applied",
            change_id=applied.change_id,
            result={"outcome": "applied", "reason": "", "verified_after": {"enabled": True}},
        ),
        entry("approval", "approval.decided", "denied", change_id=denied.change_id, reason="the approver denied"),
        entry("approval", "approval.decided", "approved", change_id=approved_only.change_id),
        entry("killswitch", "mission.halted", "ok", approvals_failed=1),
    ]

    results = {
        r.change_id: r for r in results_from_trail([applied, denied, approved_only, untouched], trail, halted=True)
    }

    assert (results[applied.change_id].decision, results[applied.change_id].outcome) == (
        Decision.APPROVED,
        Outcome.APPLIED,
    )
    assert results[applied.change_id].verified_after == {"enabled": True}
    assert (results[denied.change_id].decision, results[denied.change_id].outcome) == (Decision.DENIED, Outcome.SKIPPED)
    assert results[approved_only.change_id].outcome == Outcome.HALTED
    assert (results[untouched.change_id].decision, results[untouched.change_id].outcome) == (
        Decision.HALTED,
        Outcome.SKIPPED,
    )


def test_the_agents_own_halted_record_wins_over_the_trail() -> None:
    change = CHANGES[0]
    trail = [
        entry("approval", "approval.decided", "approved", change_id=change.change_id),
        entry(
            "agent",
            "mission.halted",
            "halted",
            results=[
                {"change_id": change.change_id, "decision": "halted", "outcome": "skipped", "reason": "Approval.Halted"}
            ],
        ),
    ]
    [result] = results_from_trail([change], trail, halted=True)
    assert (result.decision, result.reason) == (Decision.HALTED, "Approval.Halted")


def test_every_ending_is_explained_in_words() -> None:
    assert explain("approved", "applied", "", approver="auth0|a") == ""
    assert explain("denied", "skipped", "Approval.Denied", approver="auth0|a", at="t").startswith(
        "denied on the phone by auth0|a at t [Approval.Denied]"
    )
    assert "expired unanswered" in explain("expired", "skipped", "Approval.Expired", approver=None)
    drift = explain("approved", "drift", "no longer matches", approver="auth0|a", out_of_band="re-created rule")
    assert "changed before execution (re-created rule): nothing was applied" in drift
    assert (
        explain("halted", "skipped", "Approval.Halted", approver=None) == "stopped by the kill switch [Approval.Halted]"
    )
