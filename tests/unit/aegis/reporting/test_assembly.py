"""How the report of a mission that never resumed is reconstructed from its audit trail, and how every ending is
explained in words."""

from __future__ import annotations

import json
from typing import Any

from aegis.models import Decision, Outcome
from aegis.reporting.assembly import ENDED_NOTE, RUNNING_NOTE, assemble_document, explain, results_from_trail
from tests.support.changes import one_of_each_kind

CHANGES = [c for c in one_of_each_kind() if c.kind != "undo"]


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
    late = explain("expired", "skipped", "Executor.ApprovalExpired", approver="auth0|a")
    assert late == (
        "approved by auth0|a, but the approval's token expired before the change ran: nothing was applied"
        " [Executor.ApprovalExpired]"
    )
    drift = explain("approved", "drift", "no longer matches", approver="auth0|a", out_of_band="re-created rule")
    assert "changed before execution (re-created rule): nothing was applied" in drift
    assert (
        explain("halted", "skipped", "Approval.Halted", approver=None) == "stopped by the kill switch [Approval.Halted]"
    )


def test_a_mission_whose_execution_ended_without_resuming_the_agent_is_reported_as_it_ended() -> None:
    """The item keeps "awaiting_approval" when the execution is stopped by hand, times out or fails (the agent is
    never resumed): the kill switch's `mission.ended` record (or its halt) says what became of the mission."""
    stopped = [entry("killswitch", "mission.ended", "aborted")]
    halted = [entry("killswitch", "mission.halted", "ok"), entry("killswitch", "mission.ended", "aborted")]
    timed_out = [entry("killswitch", "mission.ended", "timed_out")]

    def status_of(trail: list[dict[str, Any]], status: str = "awaiting_approval") -> tuple[str, list[str]]:
        document = assemble_document(
            mission_id="m-00000000000000000000",
            item=None,
            trail=trail,
            agent_report=None,
            status=status,
            no_report_note=RUNNING_NOTE,
        )
        return document.status, document.notes

    assert status_of(stopped) == ("stopped", [ENDED_NOTE])
    assert status_of(halted)[0] == "halted"
    assert status_of(timed_out)[0] == "timed_out"
    assert status_of([]) == ("awaiting_approval", [RUNNING_NOTE])
    # A status the agent wrote itself is never overridden.
    assert status_of(stopped, "completed")[0] == "completed"
