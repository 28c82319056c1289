"""Approval requests as Step Functions carries them back, generated: a planned batch request with one field broken
(an item's change, a proof, the root, the approvers) either fails to parse (pydantic's ValidationError, which the
approval function reports as MalformedApprovalTask) or, once parsed, its root check passes only for the changes the
plan put under that root: InvalidChange or MerkleError otherwise, never another exception. And the batch texts the
phone shows stay within 255 characters, or are refused, whatever the mission id."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from aegis.approvals.merkle import MerkleError
from aegis.approvals.policy import ApprovalPolicy, ApproverRouting
from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis.catalogue import InvalidChange
from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.models import Risk
from tests.support.approval_plans import variants
from tests.support.properties import hostile_text, mutated, secret_values

MISSION = "m-0123456789abcdef0123"
APPROVER = "auth0|alice"
POLICY = ApprovalPolicy(
    approver_subs=(APPROVER,),
    batch_max_risk=Risk.MEDIUM,
    batch_max_changes=25,
    routing=ApproverRouting(),
    review_url_base="https://console.example.test/",
)
CHANGES = variants("enable-kms-key-rotation", 3) + variants("revoke-security-group-rules", 2)
(BATCH,) = plan_requests(MISSION, CHANGES, POLICY)
PLANNED = BATCH.model_dump(mode="json")
PLANNED_DIGESTS = sorted(change.digest for change in CHANGES)


def test_the_seed_is_one_planned_batch() -> None:
    assert BATCH.kind == "batch"
    BATCH.check_root()
    assert sorted(BATCH.digests()) == PLANNED_DIGESTS


@given(data=st.data())
def test_a_batch_with_one_field_broken_is_refused_or_still_exactly_the_planned_batch(data: st.DataObject) -> None:
    broken: Any = data.draw(mutated(PLANNED))
    try:
        request = ApprovalRequest.model_validate(broken)
    except ValidationError:
        return
    try:
        request.check_root()
    except (InvalidChange, MerkleError):
        return
    # Whatever still passes is the batch that was planned: the same root over the same changes.
    assert request.root == BATCH.root
    assert sorted(request.digests()) == PLANNED_DIGESTS


@given(mission_id=st.one_of(hostile_text(), secret_values(), st.just("m-" + "f" * 300)))
def test_batch_texts_for_any_mission_id_fit_the_phone_or_are_refused(mission_id: str) -> None:
    try:
        properties = BATCH.batch_properties(mission_id)
    except ValueError as exc:
        assert mission_id not in str(exc)  # noqa: PT017 (the refusal text is the property under test)
        return
    assert all(len(value) <= PROPERTY_VALUE_MAX for value in properties.values())
    assert properties["merkle_root"] == BATCH.root
