"""Batches and the two-person rule through the executor's real handler, with approvals the Auth0 emulator really
granted: one CIBA approval of a batch (the aegis-batch RAR carrying its Merkle root) releases each of its changes,
one execution at a time, each against its own proof; anything that is not exactly a change of the batch, with its own
proof, is `Executor.ApprovalInvalid` and nothing is applied. A high-risk change needs two distinct approvers; an
approval whose token expired before its change's turn is `Executor.ApprovalExpired`."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jose import jwt

from aegis.catalogue import ChangeBase
from aegis_auth.rar import AEGIS_BATCH_DETAILS_TYPE
from aegis_executor.errors import ApprovalExpired, ApprovalInvalid, NoConnectedAccount
from aegis_local.auth0 import DEFAULT_APPROVER_SUB
from tests.support.changes import CASES, Case
from tests.support.executor_world import SECOND_APPROVER_SUB, Batch, World, batch_request, handoff_of

KMS = "enable-kms-key-rotation"


def _cases(n: int) -> list[Case]:
    return [CASES[KMS]() for _ in range(n)]


def _approve_batch(world: World, cases: list[Case]) -> Batch:
    batch = world.approve_batch([case.change for case in cases])
    assert batch.request.kind == "batch"
    return batch


def _refused(world: World, payload: dict[str, Any], *untouched: Case) -> ApprovalInvalid:
    """Invoke and expect ApprovalInvalid: nothing applied, no credential, every handoff named for the change gone."""
    with pytest.raises(ApprovalInvalid) as refused:
        world.invoke(payload)
    assert type(refused.value).__name__ == "Executor.ApprovalInvalid"
    for case in untouched:
        assert case.facts() == case.facts_before, "nothing was applied"
    assert world.sts_calls == [], "no credential was obtained"
    assert world.remediation_calls == []
    change_id = payload["change"]["change_id"]
    named = [a["handoffs"].get(change_id) for a in payload["approval"]["approvals"]]
    assert not any(world.handoff_exists(h) for h in named if h), "every handoff named for the change is gone"
    assert world.audit("executor.approval_invalid")
    return refused.value


# --- a batch ----------------------------------------------------------------------------------------------------------
def test_a_batch_approved_with_one_tap_applies_each_change_against_its_own_proof(world: World) -> None:
    cases = _cases(3)
    request = batch_request([case.change for case in cases])
    token_response = world.batch_token_response(request)
    # What the approver signed with one tap: one aegis-batch object, carrying the batch's root and count.
    (granted,) = jwt.get_unverified_claims(token_response["access_token"])["authorization_details"]
    assert granted["type"] == AEGIS_BATCH_DETAILS_TYPE
    assert granted["properties"]["merkle_root"]["value"] == request.root
    assert granted["properties"]["count"]["value"] == "3"
    batch = Batch(request=request, approval=world.seal_each(token_response, request.changes()))

    results = [world.invoke(world.batch_payload(case.change, batch)) for case in cases]

    assert [r["outcome"] for r in results] == ["applied"] * 3, results
    assert all(case.facts() == case.facts_after for case in cases)
    assert [call["RoleSessionName"] for call in world.sts_calls] == [f"aegis-{c.change.change_id}" for c in cases]
    assert not any(world.handoff_exists(h) for h in batch.approval["handoffs"].values())
    for case, applied in zip(cases, world.audit("executor.applied"), strict=True):
        details = applied["details"]
        assert details["digest"] == case.change.digest
        assert details["batch_root"] == batch.root
        assert details["approvals"] == [
            {
                "approver_sub": DEFAULT_APPROVER_SUB,
                "handoff_id": handoff_of(batch.approval, case.change),
                "approved_at": batch.approval["approved_at"],
            }
        ]
    # A retry of one change's invocation is answered, not run again.
    assert world.invoke(world.batch_payload(cases[0].change, batch)) == results[0]
    assert len(world.sts_calls) == 3


def test_a_change_smuggled_into_a_batchs_execution_is_refused_and_nothing_applied(world: World) -> None:
    cases = _cases(2)
    smuggled = CASES[KMS]()
    batch = _approve_batch(world, cases)
    victim = cases[0]
    # Not among the batch's leaves: given a change's handoff of the batch and that change's proof.
    approval = {**batch.approval, "handoffs": {smuggled.change.change_id: handoff_of(batch.approval, victim.change)}}

    error = _refused(
        world, world.payload(smuggled.change, approval, proof=batch.proof(victim.change)), smuggled, victim
    )

    assert "HandoffContextMismatch" in str(error)
    # The handoff it tried to borrow is spent (fail closed): the change it was sealed for will not run on it either.
    assert not world.handoff_exists(handoff_of(batch.approval, victim.change))
    with pytest.raises(ApprovalInvalid, match="HandoffAlreadyConsumed"):
        world.invoke(world.batch_payload(victim.change, batch))
    assert victim.facts() == victim.facts_before
    # The rest of the batch is untouched.
    assert world.invoke(world.batch_payload(cases[1].change, batch))["outcome"] == "applied"


def test_a_change_outside_the_batch_with_the_batchs_approval_as_it_is_is_refused(world: World) -> None:
    cases = _cases(2)
    outsider = CASES[KMS]()
    batch = _approve_batch(world, cases)

    error = _refused(
        world, world.payload(outsider.change, batch.approval, proof=batch.proof(cases[0].change)), outsider
    )

    assert f"name no handoff for change {outsider.change.change_id}" in str(error)
    assert all(world.handoff_exists(h) for h in batch.approval["handoffs"].values()), "the batch's are its own"


def test_a_change_outside_the_batch_with_a_handoff_sealed_under_the_batch_token_is_refused_by_its_proof(
    world: World,
) -> None:
    # Even if something sealed the batch's token for a change outside it, no proof leads from it to the signed root.
    cases = _cases(2)
    outsider = CASES[KMS]()
    batch = _approve_batch(world, cases)
    token_response = world.batch_token_response(batch.request)
    approval = world.seal(token_response, outsider.change)

    error = _refused(world, world.payload(outsider.change, approval, proof=batch.proof(cases[0].change)), outsider)

    assert "not proven part of the batch" in str(error)


def test_a_reused_proof_is_refused(world: World) -> None:
    cases = _cases(3)
    batch = _approve_batch(world, cases)
    target, other = cases[0], cases[1]

    error = _refused(world, world.payload(target.change, batch.approval, proof=batch.proof(other.change)), target)

    assert "does not lead from the change digest to the root" in str(error)
    assert world.handoff_exists(handoff_of(batch.approval, other.change)), "the proof's owner keeps its handoff"


def test_a_reordered_proof_path_is_refused(world: World) -> None:
    cases = _cases(3)
    batch = _approve_batch(world, cases)
    # In a tree of 3, the first two leaves have a path of two hashes.
    target = next(c for c in cases if len(batch.proof(c.change)["path"]) == 2)
    proof = batch.proof(target.change)
    reordered = {**proof, "path": proof["path"][::-1]}

    error = _refused(world, world.payload(target.change, batch.approval, proof=reordered), target)

    assert "does not lead from the change digest to the root" in str(error)


def _edited(change: ChangeBase) -> ChangeBase:
    """The change edited after approval: same id (its identity: kind, resource, before, after), another digest."""
    edited = type(change).model_validate({**change.model_dump(), "check_id": "edited-after-approval"})
    assert edited.change_id == change.change_id
    assert edited.digest != change.digest
    return edited


def test_a_tampered_leaf_is_refused(world: World) -> None:
    cases = _cases(2)
    batch = _approve_batch(world, cases)
    target = cases[0]
    edited = _edited(target.change)

    error = _refused(world, world.payload(edited, batch.approval, proof=batch.proof(target.change)), target)

    # The handoff is bound to the approved digest (KMS context): the edited change cannot open it.
    assert "HandoffContextMismatch" in str(error)


def test_a_tampered_leaf_with_a_handoff_sealed_for_it_is_refused_by_the_signed_root(world: World) -> None:
    cases = _cases(2)
    batch = _approve_batch(world, cases)
    target = cases[0]
    edited = _edited(target.change)
    approval = world.seal(world.batch_token_response(batch.request), edited)

    error = _refused(world, world.payload(edited, approval, proof=batch.proof(target.change)), target)

    assert "not proven part of the batch" in str(error)


# --- expiry --------------------------------------------------------------------------------------------------------
def test_a_batch_expiring_midway_applies_what_ran_in_time_and_names_the_rest_expired(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = _cases(3)
    batch = _approve_batch(world, cases)
    assert world.invoke(world.batch_payload(cases[0].change, batch))["outcome"] == "applied"
    # The API's access tokens live 10 minutes: the rest of the batch comes after that.
    monkeypatch.setattr(world.app.executor().handoffs, "_clock", lambda: time.time() + 601)

    for late in cases[1:]:
        with pytest.raises(ApprovalExpired, match="expired before this change ran") as expired:
            world.invoke(world.batch_payload(late.change, batch))
        assert type(expired.value).__name__ == "Executor.ApprovalExpired"
        assert late.facts() == late.facts_before, "never applied on a stale approval"
        assert not world.handoff_exists(handoff_of(batch.approval, late.change))

    assert cases[0].facts() == cases[0].facts_after
    assert len(world.sts_calls) == 1
    assert [r["outcome"] for r in world.audit("executor.approval_expired")] == ["expired", "expired"]
    assert all(
        r["details"]["approvals"][0]["approver_sub"] == DEFAULT_APPROVER_SUB
        for r in world.audit("executor.approval_expired")
    )


# --- the two-person rule --------------------------------------------------------------------------------------------
def test_two_distinct_approvers_apply_a_high_risk_change(world: World) -> None:
    case = CASES["detach-policy"]()
    approvals = world.approve(case.change)
    assert [a["approver_sub"] for a in approvals] == [DEFAULT_APPROVER_SUB, SECOND_APPROVER_SUB]

    result = world.invoke(world.payload(case.change, approvals))

    assert result["outcome"] == "applied", result
    assert case.facts() == case.facts_after
    (sts_call,) = world.sts_calls
    # The first approver's token is the one Token Vault exchanges: the session is theirs.
    assert sts_call["token_claims"]["sub"] == DEFAULT_APPROVER_SUB
    (applied,) = world.audit("executor.applied")
    assert [a["approver_sub"] for a in applied["details"]["approvals"]] == [DEFAULT_APPROVER_SUB, SECOND_APPROVER_SUB]
    assert [a["handoff_id"] for a in applied["details"]["approvals"]] == [
        handoff_of([a], case.change) for a in approvals
    ]
    assert "batch_root" not in applied["details"]
    assert not any(world.handoff_exists(handoff_of([a], case.change)) for a in approvals)


def test_the_same_approver_twice_is_refused(world: World) -> None:
    case = CASES["detach-policy"]()
    approvals = [world.approve_one(case.change), world.approve_one(case.change)]

    error = _refused(world, world.payload(case.change, approvals), case)

    assert "the same approver is named twice" in str(error)


def test_one_approval_of_a_high_risk_change_is_refused(world: World) -> None:
    case = CASES["detach-policy"]()

    error = _refused(world, world.payload(case.change, [world.approve_one(case.change)]), case)

    assert "this high-risk change needs two distinct approvers; 1 approval(s) given" in str(error)


def test_one_approval_disguised_as_two_is_refused(world: World) -> None:
    # The second entry names the first approver's handoff under another approver's name.
    case = CASES["detach-policy"]()
    first = world.approve_one(case.change)
    second = {**first, "approver_sub": SECOND_APPROVER_SUB}

    error = _refused(world, world.payload(case.change, [first, second]), case)

    assert "two approvals name one handoff" in str(error)


def test_the_token_exchanged_is_the_first_approvers(world: World) -> None:
    # The second approver has no Token Vault account: first in the request, their token is the one exchanged.
    case = CASES["detach-policy"]()
    approvals = world.approve(case.change)

    with pytest.raises(NoConnectedAccount):
        world.invoke(world.payload(case.change, approvals[::-1]))

    assert case.facts() == case.facts_before
    assert world.audit("executor.approval_verified"), "both approvals were valid"
