"""Planning approval requests: grouping, chunking, the cut that keeps a batch's summary whole, singles, the two-person
rule, round robin, canonical leaf order, the root check and the JSON Step Functions carries."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from pydantic import ValidationError

from aegis.approvals.merkle import MerkleError, MerkleProof, merkle_root, verify_inclusion
from aegis.approvals.policy import NEEDS_SECOND_APPROVER, ApprovalPolicy, ApproverRouting
from aegis.approvals.requests import (
    BATCH_PROPERTY_NAMES,
    AnalystNote,
    ApprovalRequest,
    NeedsSecondApprover,
    RequestItem,
    plan_requests,
    with_analyst_notes,
)
from aegis.catalogue import ChangeBase, InvalidChange, parse_change
from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.models import Risk
from tests.support.approval_plans import OTHER_ACCOUNT, variable_kinds, variant, variants

MISSION = "m-0123456789abcdef0123"
A, B, C = "auth0|alice", "auth0|bob", "auth0|carol"
KMS, SG, BUCKET = "enable-kms-key-rotation", "revoke-security-group-rules", "enable-bucket-public-access-block"


def policy(
    *subs: str,
    batch_max_risk: Risk | None = Risk.MEDIUM,
    batch_max_changes: int = 25,
    routing: ApproverRouting | None = None,
    review_url_base: str = "",
) -> ApprovalPolicy:
    """A policy with the template's defaults (two-person at high) unless told otherwise."""
    return ApprovalPolicy(
        approver_subs=subs or (A,),
        batch_max_risk=batch_max_risk,
        batch_max_changes=batch_max_changes,
        routing=routing or ApproverRouting(),
        review_url_base=review_url_base,
    )


def ids(changes: list[ChangeBase]) -> set[str]:
    return {change.change_id for change in changes}


def planned_ids(requests: list[ApprovalRequest]) -> list[set[str]]:
    return [ids(request.changes()) for request in requests]


def every_change_once(requests: list[ApprovalRequest], changes: list[ChangeBase]) -> None:
    planned = [change.change_id for request in requests for change in request.changes()]
    assert sorted(planned) == sorted(change.change_id for change in changes)


# --- Grouping and chunking -------------------------------------------------------------------------------------------
def test_low_and_medium_changes_of_one_account_are_one_batch_high_ones_single() -> None:
    low = variants(KMS, 3)
    medium = variants(SG, 2, risk=Risk.MEDIUM)
    high = variant(BUCKET, 1, risk=Risk.HIGH)
    changes = [low[0], high, *medium, *low[1:]]
    requests = plan_requests(MISSION, changes, policy(A, B))
    assert [(r.request_id, r.kind) for r in requests] == [("r001", "batch"), ("r002", "single")]
    assert planned_ids(requests) == [ids(low + medium), {high.change_id}]
    assert requests[0].highest_risk() is Risk.MEDIUM
    assert requests[1].highest_risk() is Risk.HIGH
    every_change_once(requests, changes)


def test_batches_are_per_account_and_per_eligible_set() -> None:
    routing = ApproverRouting(checks={"kms-key-rotation-off": (B,)})
    here, there = variants(SG, 2), variants(SG, 2, account_id=OTHER_ACCOUNT)
    routed = variants(KMS, 2)
    requests = plan_requests(MISSION, [*here, *there, *routed], policy(A, B, routing=routing))
    assert planned_ids(requests) == [ids(here), ids(there), ids(routed)]
    assert [request.account_id() for request in requests] == ["123456789012", OTHER_ACCOUNT, "123456789012"]
    assert requests[2].approvers == (B,)


def test_chunks_hold_at_most_batch_max_changes() -> None:
    changes = variants(KMS, 12)
    requests = plan_requests(MISSION, changes, policy(batch_max_changes=5))
    assert [len(request.items) for request in requests] == [5, 5, 2]
    assert all(request.kind == "batch" for request in requests)
    every_change_once(requests, changes)
    # Each chunk is consecutive in the group's order: by kind, then change id.
    in_order = sorted(changes, key=lambda change: (change.kind, change.change_id))
    assert planned_ids(requests) == [ids(in_order[0:5]), ids(in_order[5:10]), ids(in_order[10:])]


def test_a_chunk_of_one_becomes_a_single_request() -> None:
    changes = variants(KMS, 3)
    requests = plan_requests(MISSION, changes, policy(batch_max_changes=2))
    assert [request.kind for request in requests] == ["batch", "single"]
    single = requests[1]
    assert single.root is None
    assert single.items[0].proof is None
    (lone,) = single.changes()
    assert lone.change_id in ids(changes)
    # One batchable change on its own is a single too.
    assert [r.kind for r in plan_requests(MISSION, variants(SG, 1), policy())] == ["single"]


def test_no_batching_when_batch_max_risk_is_none() -> None:
    changes = variants(KMS, 4)
    requests = plan_requests(MISSION, changes, policy(batch_max_risk=None))
    assert [request.kind for request in requests] == ["single"] * 4
    assert [request.changes()[0].change_id for request in requests] == [c.change_id for c in changes]


def test_the_batch_is_cut_when_the_kinds_summary_would_exceed_255_characters() -> None:
    kinds = variable_kinds()
    changes = [variant(kind, 1) for kind in kinds]
    # Every kind once: the summary of all of them would be too long for one approval property.
    all_in_one = ", ".join(f"{kind}: 1" for kind in sorted(kinds))
    assert len(all_in_one) > PROPERTY_VALUE_MAX
    requests = plan_requests(MISSION, changes, policy())
    assert len(requests) >= 2
    every_change_once(requests, changes)
    for request in requests:
        summary = request.kinds_summary()
        assert len(summary) <= PROPERTY_VALUE_MAX
        # Nothing is cut short: every kind of the request is named with its count.
        assert summary == ", ".join(f"{kind}: 1" for kind in sorted(c.kind for c in request.changes()))
        if request.kind == "batch":
            assert request.batch_properties(MISSION)["kinds"] == summary


def test_every_batch_property_fits_even_at_the_longest_review_url() -> None:
    base = "https://console.example/" + "p" * 160
    changes = [variant(kind, n) for kind in variable_kinds() for n in range(3)]
    requests = plan_requests(MISSION, changes, policy(review_url_base=base))
    for request in requests:
        if request.kind == "batch":
            properties = request.batch_properties(MISSION)
            assert list(properties) == list(BATCH_PROPERTY_NAMES)
            assert all(len(value) <= PROPERTY_VALUE_MAX for value in properties.values())
    every_change_once(requests, changes)


def test_batch_properties() -> None:
    changes = [*variants(SG, 3, risk=Risk.MEDIUM), *variants(KMS, 2)]
    (request,) = plan_requests(MISSION, changes, policy(review_url_base="https://console.example/"))
    assert request.batch_properties(MISSION) == {
        "mission": MISSION,
        "count": "5",
        "kinds": f"{SG}: 3, {KMS}: 2",
        "risk": "medium",
        "account": "123456789012",
        "review_url": f"https://console.example/#/missions/{MISSION}/requests/r001",
        "merkle_root": request.root,
    }
    (without_console,) = plan_requests(MISSION, changes, policy())
    assert "review_url" not in without_console.batch_properties(MISSION)
    assert without_console.review_url is None
    single = plan_requests(MISSION, changes[:1], policy())[0]
    with pytest.raises(ValueError, match="only a batch"):
        single.batch_properties(MISSION)


def test_kinds_summary_orders_by_count_then_kind() -> None:
    changes = [*variants(KMS, 3), *variants(SG, 9), *variants(BUCKET, 3)]
    (request,) = plan_requests(MISSION, changes, policy())
    assert request.kinds_summary() == f"{SG}: 9, {BUCKET}: 3, {KMS}: 3"


# --- Two-person rule -------------------------------------------------------------------------------------------------
def test_two_person_changes_are_always_single_with_two_distinct_approvers() -> None:
    high = variants(KMS, 4, risk=Risk.HIGH)
    # Even when high risk may be batched, a change that needs two approvers is never batched.
    requests = plan_requests(MISSION, high, policy(A, B, C, batch_max_risk=Risk.HIGH))
    assert [request.kind for request in requests] == ["single"] * 4
    for request in requests:
        assert len(request.approvers) == 2
        assert len(set(request.approvers)) == 2
    # Round robin over the set, two at a time.
    subs, start = (A, B, C), _start(MISSION, 3)
    assert [request.approvers for request in requests] == [
        (subs[(start + 2 * i) % 3], subs[(start + 2 * i + 1) % 3]) for i in range(4)
    ]


def test_a_change_without_two_eligible_approvers_needs_a_second_approver() -> None:
    high = variant(KMS, 1, risk=Risk.HIGH)
    other_high = variant(SG, 1, risk=Risk.HIGH)
    fine = variants(BUCKET, 2)
    with pytest.raises(NeedsSecondApprover) as caught:
        plan_requests(MISSION, [*fine, high, other_high], policy(A))
    assert caught.value.change_ids == (high.change_id, other_high.change_id)
    assert caught.value.rule == NEEDS_SECOND_APPROVER
    # Routed to a single approver in a deployment of three: still refused, never downgraded.
    routing = ApproverRouting(checks={"kms-key-rotation-off": (B,)})
    with pytest.raises(NeedsSecondApprover) as routed:
        plan_requests(MISSION, [high, other_high], policy(A, B, C, routing=routing))
    assert routed.value.change_ids == (high.change_id,)


# --- Round robin -----------------------------------------------------------------------------------------------------
def _start(mission: str, size: int) -> int:
    return int(hashlib.sha256(mission.encode()).hexdigest()[:8], 16) % size


def test_round_robin_per_eligible_set_from_a_mission_dependent_start() -> None:
    singles = variants(KMS, 7)
    requests = plan_requests(MISSION, singles, policy(A, B, C, batch_max_risk=None))
    subs = (A, B, C)
    start = _start(MISSION, 3)
    assert [request.approvers for request in requests] == [(subs[(start + i) % 3],) for i in range(7)]
    # Deterministic per mission.
    assert plan_requests(MISSION, singles, policy(A, B, C, batch_max_risk=None)) == requests


def test_round_robin_counts_each_eligible_set_on_its_own() -> None:
    routing = ApproverRouting(checks={"kms-key-rotation-off": (B, C)})
    kms = variants(KMS, 3)
    sg = variants(SG, 3)
    changes = [kms[0], sg[0], kms[1], sg[1], kms[2], sg[2]]
    requests = plan_requests(MISSION, changes, policy(A, B, C, batch_max_risk=None, routing=routing))
    kms_approvers = [r.approvers[0] for r in requests if r.changes()[0].kind == KMS]
    sg_approvers = [r.approvers[0] for r in requests if r.changes()[0].kind == SG]
    assert kms_approvers == [(B, C)[(_start(MISSION, 2) + i) % 2] for i in range(3)]
    assert sg_approvers == [(A, B, C)[(_start(MISSION, 3) + i) % 3] for i in range(3)]


def test_two_person_and_one_person_requests_share_the_counter_of_their_set() -> None:
    high, low = variant(KMS, 1, risk=Risk.HIGH), variant(SG, 1)
    requests = plan_requests(MISSION, [high, low], policy(A, B, C, batch_max_risk=None))
    subs, start = (A, B, C), _start(MISSION, 3)
    assert requests[0].approvers == (subs[start], subs[(start + 1) % 3])
    assert requests[1].approvers == (subs[(start + 2) % 3],)


def test_missions_spread_over_approvers() -> None:
    change = variants(KMS, 1)
    firsts = Counter(plan_requests(f"m-{n:020x}", change, policy(A, B, C))[0].approvers[0] for n in range(60))
    assert set(firsts) == {A, B, C}
    assert min(firsts.values()) >= 10


# --- Order, ids and leaves -------------------------------------------------------------------------------------------
def test_requests_in_the_order_of_their_first_change_in_the_plan() -> None:
    kms = variants(KMS, 2)
    high = variant(SG, 1, risk=Risk.HIGH)
    other = variants(BUCKET, 2, account_id=OTHER_ACCOUNT)
    changes = [other[0], kms[1], high, kms[0], other[1]]
    requests = plan_requests(MISSION, changes, policy(A, B))
    assert planned_ids(requests) == [ids(other), ids(kms), {high.change_id}]
    assert [request.request_id for request in requests] == ["r001", "r002", "r003"]


def test_request_ids_count_from_one_with_three_digits() -> None:
    requests = plan_requests(MISSION, variants(KMS, 12), policy(batch_max_risk=None))
    assert [request.request_id for request in requests] == [f"r{n:03d}" for n in range(1, 13)]


def test_a_change_twice_in_the_plan_is_refused() -> None:
    change = variant(KMS, 1)
    with pytest.raises(ValueError, match="twice"):
        plan_requests(MISSION, [change, change], policy())


def test_batch_items_are_in_canonical_leaf_order_with_their_proofs() -> None:
    changes = variants(KMS, 7)
    (request,) = plan_requests(MISSION, changes, policy())
    digests = request.digests()
    assert digests == sorted(change.digest for change in changes)
    assert request.root == merkle_root(digests)
    for index, (item, digest) in enumerate(zip(request.items, digests, strict=True)):
        proof = item.merkle_proof()
        assert proof is not None
        assert (proof.leaf_index, proof.tree_size) == (index, 7)
        assert verify_inclusion(digest, proof, request.root)
    request.check_root()


def test_item_changes_are_the_changes_json_exactly() -> None:
    changes = variants(KMS, 3)
    (request,) = plan_requests(MISSION, changes, policy())
    by_id = {change.change_id: change for change in changes}
    for item in request.items:
        change = by_id[str(item.change["change_id"])]
        assert item.change == change.model_dump(mode="json")


# --- The root check --------------------------------------------------------------------------------------------------
def _batch() -> ApprovalRequest:
    (request,) = plan_requests(MISSION, variants(KMS, 5), policy())
    request.check_root()
    return request


def _with_items(request: ApprovalRequest, items: list[RequestItem]) -> ApprovalRequest:
    return ApprovalRequest.model_validate({**request.model_dump(mode="json"), "items": [i.model_dump() for i in items]})


def test_check_root_detects_a_tampered_item() -> None:
    request = _batch()
    items = list(request.items)
    # Still a valid change (risk is not part of its identity), so only its digest gives the tampering away.
    tampered = items[2].change | {"risk": "medium"}
    assert parse_change(tampered).change_id == items[2].change["change_id"]
    forged_items = [*items[:2], RequestItem(change=tampered, proof=items[2].proof), *items[3:]]
    forged = _with_items(request, sorted(forged_items, key=lambda item: parse_change(item.change).digest))
    with pytest.raises(MerkleError, match="does not recompute"):
        forged.check_root()
    # Tampered into something that is no catalogue member at all: refused before any hashing.
    for broken in (items[2].change | {"kind": "x"}, items[2].change | {"extra": "field"}):
        forged = _with_items(request, [*items[:2], RequestItem(change=broken, proof=items[2].proof), *items[3:]])
        with pytest.raises(InvalidChange):
            forged.check_root()


def test_check_root_detects_a_substituted_change() -> None:
    request = _batch()
    smuggled = variant(KMS, 99)
    items = list(request.items)
    items[0] = RequestItem(change=smuggled.model_dump(mode="json"), proof=items[0].proof)
    # In canonical order, so that only the root can give the substitution away.
    forged = _with_items(request, sorted(items, key=lambda item: parse_change(item.change).digest))
    with pytest.raises(MerkleError, match="does not recompute"):
        forged.check_root()


def test_check_root_detects_a_forged_root_reordered_items_and_a_wrong_proof() -> None:
    request = _batch()
    with pytest.raises(MerkleError, match="does not recompute"):
        ApprovalRequest.model_validate({**request.model_dump(mode="json"), "root": "0" * 64}).check_root()
    reordered = _with_items(request, list(reversed(request.items)))
    with pytest.raises(MerkleError, match="canonical leaf order"):
        reordered.check_root()
    items = list(request.items)
    swapped = [
        RequestItem(change=items[0].change, proof=items[1].proof),
        RequestItem(change=items[1].change, proof=items[0].proof),
        *items[2:],
    ]
    with pytest.raises(MerkleError, match="proof"):
        _with_items(request, swapped).check_root()
    # A dropped item changes the root.
    with pytest.raises(MerkleError, match="does not recompute"):
        _with_items(request, items[1:]).check_root()


def test_check_root_of_a_single_checks_nothing_it_does_not_have() -> None:
    (single,) = plan_requests(MISSION, variants(KMS, 1), policy())
    single.check_root()


# --- JSON ------------------------------------------------------------------------------------------------------------
def test_json_round_trip() -> None:
    changes = [*variants(KMS, 4), variant(SG, 1, risk=Risk.HIGH)]
    requests = plan_requests(MISSION, changes, policy(A, B, review_url_base="https://console.example/"))
    carried = json.loads(json.dumps([request.model_dump(mode="json") for request in requests]))
    assert [ApprovalRequest.model_validate(obj) for obj in carried] == requests
    batch, single = carried
    assert set(batch) == {"request_id", "kind", "approvers", "root", "review_url", "items"}
    assert batch["kind"] == "batch"
    assert isinstance(batch["approvers"], list)
    assert set(batch["items"][0]) == {"change", "proof", "analyst"}
    assert batch["items"][0]["analyst"] is None  # no analyst ran
    assert MerkleProof.from_json(batch["items"][0]["proof"]).tree_size == 4
    assert single["kind"] == "single"
    assert single["root"] is None
    assert single["items"][0]["proof"] is None
    assert len(single["approvers"]) == 2
    assert single["review_url"] == f"https://console.example/#/missions/{MISSION}/requests/r002"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r | {"extra": 1},
        lambda r: r | {"kind": "bulk"},
        lambda r: r | {"request_id": "1"},
        lambda r: r | {"approvers": []},
        lambda r: r | {"approvers": [A, A]},
        lambda r: r | {"approvers": [A, B]},  # a batch has one approver
        lambda r: r | {"approvers": [A, B, C]},
        lambda r: r | {"root": None},
        lambda r: r | {"root": "Z" * 64},
        lambda r: r | {"items": r["items"][:1]},
        lambda r: r | {"items": []},
        lambda r: r | {"items": [r["items"][0] | {"proof": None}, *r["items"][1:]]},
        lambda r: r | {"items": [r["items"][0] | {"proof": {"leaf_index": 0}}, *r["items"][1:]]},
        lambda r: r | {"items": [r["items"][0] | {"note": "x"}, *r["items"][1:]]},
        lambda r: r | {"kind": "single"},
    ],
)
def test_malformed_request_json_is_refused(mutate: object) -> None:
    batch = _batch().model_dump(mode="json")
    with pytest.raises(ValidationError):
        ApprovalRequest.model_validate(mutate(batch))  # type: ignore[operator]


def test_a_single_with_a_root_or_proof_or_two_items_is_refused() -> None:
    (single,) = plan_requests(MISSION, variants(KMS, 1), policy())
    data = single.model_dump(mode="json")
    proof = {"leaf_index": 0, "tree_size": 1, "path": []}
    for bad in (
        data | {"root": "0" * 64},
        data | {"items": [data["items"][0] | {"proof": proof}]},
        data | {"items": data["items"] * 2},
    ):
        with pytest.raises(ValidationError, match="single"):
            ApprovalRequest.model_validate(bad)


def test_a_request_is_frozen() -> None:
    request = _batch()
    with pytest.raises(ValidationError):
        request.kind = "single"  # type: ignore[misc]


# --- the analyst's notes ---------------------------------------------------------------------------------------------
def test_analyst_notes_ride_on_their_items_and_bind_nothing() -> None:
    changes = [*variants(KMS, 3), variant(SG, 1, risk=Risk.HIGH)]
    planned = plan_requests(MISSION, changes, policy(A, B))
    notes = {
        changes[1].change_id: AnalystNote(priority=2, rationale="key rotation"),
        changes[3].change_id: AnalystNote(priority=1, rationale="world-open SSH: fix first"),
    }
    carried = with_analyst_notes(planned, notes)
    # The same requests, roots and proofs: the note is outside every change, so outside every digest.
    assert [_without_notes(request) for request in carried] == planned
    batch, single = carried
    batch.check_root()
    by_change = {str(item.change["change_id"]): item.analyst for item in batch.items}
    assert by_change == {change.change_id: notes.get(change.change_id) for change in changes[:3]}
    assert single.items[0].analyst is not None
    assert single.items[0].analyst.shown() == "P1: world-open SSH: fix first"
    # Through JSON, as Step Functions carries it.
    again = [ApprovalRequest.model_validate(json.loads(json.dumps(r.model_dump(mode="json")))) for r in carried]
    assert again == carried
    assert with_analyst_notes(planned, {}) == planned


def _without_notes(request: ApprovalRequest) -> ApprovalRequest:
    items = tuple(item.model_copy(update={"analyst": None}) for item in request.items)
    return request.model_copy(update={"items": items})


@pytest.mark.parametrize(
    "note",
    [
        {"priority": 0, "rationale": "x"},
        {"priority": 5, "rationale": "x"},
        {"priority": "1", "rationale": "x"},
        {"priority": 1, "rationale": ""},
        {"priority": 1, "rationale": "x" * 201},
        {"priority": 1, "rationale": "x", "change": "rm -rf"},
    ],
)
def test_an_analyst_note_out_of_its_bounds_is_refused(note: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AnalystNote.model_validate(note)
