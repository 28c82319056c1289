"""The demo's phone: what the approver is shown for a request, how it is matched to the plan, how it is answered —
by flags or by a person at the terminal — and the emulator's lapse, which lets a request expire without waiting."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from aegis.approvals.policy import ApprovalPolicy as ApprovalPolicyOfDeployment
from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis.catalogue import ChangeBase
from aegis_auth.rar import batch_authorization_details, batch_binding_message, change_authorization_details
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
    render_request,
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


# ------------------------------------------------------------------------------------------------- batches

BATCH_CHANGES = [c for c in CHANGES if c.kind not in ("undo",) and c.risk.value in ("low", "medium")][:4]


def batch_request(mission_id: str = "m-00000000000000000001") -> ApprovalRequest:
    policy = ApprovalPolicyOfDeployment(approver_subs=(DEFAULT_APPROVER_SUB,))
    [request] = [r for r in plan_requests(mission_id, BATCH_CHANGES, policy) if r.kind == "batch"]
    return request


def test_a_batch_on_the_phone_shows_its_seven_properties_and_its_root(wire: Wire) -> None:
    request = batch_request()
    auth_req_id = ask_approval(
        wire, batch_binding_message(request), batch_authorization_details("m-00000000000000000001", request)
    )
    phone = EmulatedPhone(wire.emulator, DEFAULT_APPROVER_SUB, also=[DEFAULT_APPROVER_SUB])

    [shown] = [r for r in phone.pending() if r.auth_req_id == auth_req_id]

    assert shown.is_batch
    assert (shown.merkle_root, shown.count, shown.digest, shown.sub) == (
        request.root,
        len(BATCH_CHANGES),
        None,
        DEFAULT_APPROVER_SUB,
    )
    assert list(shown.properties) == [
        "Mission",
        "Changes",
        "By kind",
        "Highest risk",
        "Account",
        "Merkle root (SHA-256)",
    ]
    assert shown.binding_message == f"Approve {len(BATCH_CHANGES)} changes #{str(request.root)[:6]}"
    assert shown.matching_change(CHANGES) is None  # a batch names no single change
    lines = render_request(shown, request.changes())
    assert f"{request.root} = the phone's" in "\n".join(lines)
    assert sum(1 for line in lines if "(matches change" in line) == len(BATCH_CHANGES)
    # The plan's changes but one: another root, said loudly.
    assert "NOT the phone's root" in "\n".join(render_request(shown, request.changes()[:-1]))
    assert "matches no request (Merkle root unknown)" in "\n".join(render_request(shown, None))
    phone.answer(shown, Answer.DENY)
    assert poll(wire, auth_req_id).json()["error"] == "access_denied"


def test_a_request_is_answered_as_a_whole_by_request_change_or_check_id() -> None:
    batch = BATCH_CHANGES
    first, second = batch[0], batch[1]
    by_request = ApprovalPolicy(approve_all=True, deny=frozenset({"r002"}))
    assert by_request.answer_for_request("r002", batch) == (Answer.DENY, "--deny r002")
    assert by_request.answer_for_request("r001", batch) == (Answer.APPROVE, "--approve all")
    by_change = ApprovalPolicy(approve_all=True, let_expire=frozenset({second.change_id}))
    answer, why = by_change.answer_for_request("r001", batch)
    assert answer is Answer.EXPIRE
    assert why == f"--let-expire {second.change_id} (with the {len(batch) - 1} other changes of its batch)"
    by_check = ApprovalPolicy(deny=frozenset({first.check_id}))
    assert by_check.answer_for_request(None, [first]) == (Answer.DENY, f"--deny {first.check_id}")
    assert by_check.answer_for_request(None, [c for c in CHANGES if c.check_id != first.check_id][:1]) is None
    # A denial wins over an expiry named for another change of the same batch.
    both = ApprovalPolicy(deny=frozenset({second.change_id}), let_expire=frozenset({first.change_id}))
    assert both.answer_for_request("r001", batch) == (
        Answer.DENY,
        f"--deny {second.change_id} (with the 3 other changes of its batch)",
    )
    # A drift in a batch approves it, unless one of its drifting changes cannot drift.
    drifting = ApprovalPolicy(approve_all=True, drift=frozenset({PASSWORD.change_id}))
    assert drifting.drifts(PASSWORD)
    assert drifting.answer_for_request("r003", [PASSWORD, KMS]) == (
        Answer.APPROVE,
        "--drift: approve, then the resource changes before the executor runs",
    )
    assert by_request.names_requests
    assert not by_change.names_requests
    assert by_change.unused(["r001"], batch) == []
    assert ApprovalPolicy(deny=frozenset({"r009", "chg-00000000000000000000"})).unused(["r001"], batch) == [
        "chg-00000000000000000000",
        "r009",
    ]


def test_ids_on_the_command_line_are_checks_changes_or_requests() -> None:
    ApprovalPolicy(deny=frozenset({"r002", PASSWORD.change_id, PASSWORD.check_id})).validate({PASSWORD.check_id})
    with pytest.raises(UnknownCheck, match="unknown check id"):
        ApprovalPolicy(deny=frozenset({"r2"})).validate({PASSWORD.check_id})
    with pytest.raises(UnknownCheck, match="--drift takes a check id or a change id"):
        ApprovalPolicy(drift=frozenset({"r002"})).validate({PASSWORD.check_id})
