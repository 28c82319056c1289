"""The demo's phone: what the approver is shown for a request, how it is matched to the plan, how it is answered —
by flags or by a person at the terminal — and the emulator's lapse, which lets a request expire without waiting."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from aegis.catalogue import ChangeBase
from aegis_auth.rar import change_authorization_details
from aegis_local.auth0 import (
    DEFAULT_APPROVER_SUB,
    GuardianError,
    ManualClock,
)
from aegis_local.scenario.phone import (
    Answer,
    ApprovalPolicy,
    EmulatedPhone,
    PhoneRequest,
    TerminalApprover,
    UnknownCheck,
    side_by_side,
)
from tests.support.auth0_wire import Wire
from tests.support.changes import one_of_each_kind
from tests.unit.local.phone_emulator import approval_wire, ask_approval, poll

CHANGES = one_of_each_kind()
PASSWORD = next(c for c in CHANGES if c.kind == "strengthen-password-policy")
KMS = next(c for c in CHANGES if c.kind == "enable-kms-key-rotation")
CLOCK = ManualClock()


@pytest.fixture(scope="module")
def wire() -> Iterator[Wire]:
    with approval_wire(CLOCK, ciba_interval_seconds=1, ciba_requests_per_user_per_minute=100) as running:
        yield running


def ask(wire: Wire, change: ChangeBase) -> str:
    return ask_approval(wire, change.binding_message(), change_authorization_details(change))


def test_a_request_on_the_phone_is_matched_to_the_plan_by_its_digest(wire: Wire) -> None:
    auth_req_id = ask(wire, PASSWORD)
    phone = EmulatedPhone(wire.emulator, DEFAULT_APPROVER_SUB)

    [request] = [r for r in phone.pending() if r.auth_req_id == auth_req_id]

    assert request.binding_message == PASSWORD.binding_message()
    assert request.digest == PASSWORD.digest
    assert request.change_id == PASSWORD.change_id
    assert request.instruction.startswith("Approve exactly this AWS change")
    assert request.matching_change(CHANGES) is PASSWORD
    # Another change with the same id but different content has another digest: it is not what was asked.
    assert request.matching_change([c for c in CHANGES if c is not PASSWORD]) is None
    phone.answer(request, Answer.DENY)
    assert poll(wire, auth_req_id).json()["error"] == "access_denied"


def test_a_lapsed_request_expires_at_once_and_can_no_longer_be_answered(wire: Wire) -> None:
    emulator = wire.emulator
    auth_req_id = ask(wire, KMS)
    phone = EmulatedPhone(emulator, DEFAULT_APPROVER_SUB)
    [request] = [r for r in phone.pending() if r.auth_req_id == auth_req_id]

    phone.answer(request, Answer.EXPIRE)

    assert auth_req_id not in {r.auth_req_id for r in phone.pending()}
    answer = poll(wire, auth_req_id)
    assert (answer.status_code, answer.json()["error"]) == (400, "expired_token")
    with pytest.raises(GuardianError, match=r"not_pending|expired"):
        emulator.approve(auth_req_id)
    with pytest.raises(GuardianError, match="unknown_request"):
        emulator.lapse("no-such-request")


def test_the_policy_answers_by_check_and_refuses_contradictions() -> None:
    policy = ApprovalPolicy(approve_all=True, deny=frozenset({PASSWORD.check_id}), let_expire=frozenset({KMS.check_id}))
    assert policy.answer_for(PASSWORD) is Answer.DENY
    assert policy.answer_for(KMS) is Answer.EXPIRE
    others = [c for c in CHANGES if c.check_id not in {PASSWORD.check_id, KMS.check_id}]
    assert {policy.answer_for(c) for c in others} == {Answer.APPROVE}
    assert ApprovalPolicy(deny=frozenset({PASSWORD.check_id})).answer_for(KMS) is None  # a person decides
    drift = ApprovalPolicy(drift=frozenset({KMS.check_id}))
    assert drift.answer_for(KMS) is Answer.APPROVE  # drift approves; the resource changes afterwards
    trail = next(c for c in CHANGES if c.kind == "create-multi-region-trail")
    no_recipe = ApprovalPolicy(approve_all=True, drift=frozenset({trail.check_id}))
    # Nobody can change this resource out of band: approving would apply what --drift promised would not be.
    assert no_recipe.answer_for(trail) is Answer.DENY
    assert no_recipe.why(trail) == "--drift knows no out-of-band edit for create-multi-region-trail"
    with pytest.raises(ValueError, match="both --deny and --drift"):
        ApprovalPolicy(deny=frozenset({"a"}), drift=frozenset({"a"}))
    with pytest.raises(UnknownCheck, match="no-such-check"):
        ApprovalPolicy(deny=frozenset({"no-such-check"})).validate({PASSWORD.check_id})


def test_the_terminal_shows_what_the_phone_shows_and_the_diff_then_asks() -> None:
    request = PhoneRequest.from_pending(
        {
            "auth_req_id": "req-1",
            "binding_message": PASSWORD.binding_message(),
            "authorization_details": change_authorization_details(PASSWORD),
            "expires_at": "2030-01-01T00:00:00Z",
        }
    )
    output = io.StringIO()
    replies = iter(["maybe", "a"])
    approver = TerminalApprover(output, read_line=lambda prompt: next(replies))

    assert approver.ask(request, PASSWORD) is Answer.APPROVE

    shown = output.getvalue()
    assert PASSWORD.binding_message() in shown
    assert f"{PASSWORD.digest} (matches change {PASSWORD.change_id} of the plan)" in shown
    assert "minimum_password_length" in shown  # the before/after states, side by side
    assert "answer a (approve), d (deny) or e (let it expire)" in shown  # the unclear reply was asked again
    assert shown.count(TerminalApprover.PROMPT) == 2  # on the approver's output, not wherever input() would print


def test_the_terminal_denies_what_matches_no_change_and_what_it_cannot_ask() -> None:
    request = PhoneRequest.from_pending({"auth_req_id": "req-2", "binding_message": "Open port 22 #000000"})
    output = io.StringIO()
    assert TerminalApprover(output, read_line=lambda prompt: "a").ask(request, None) is Answer.DENY
    assert "matches no change" in output.getvalue()

    def closed(prompt: str) -> str:
        raise EOFError

    assert TerminalApprover(io.StringIO(), read_line=closed).ask(request, PASSWORD) is Answer.DENY


def test_side_by_side_marks_what_changes() -> None:
    lines = side_by_side({"enabled": False, "name": "x"}, {"enabled": True, "name": "x"}, width=60)
    changed = [line for line in lines if line.startswith("~")]
    assert len(changed) == 1
    assert '"enabled": false' in changed[0]
    assert '"enabled": true' in changed[0]
    assert any(line.startswith(" ") and '"name": "x"' in line for line in lines)
