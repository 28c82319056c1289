"""The authorization_details the approver sees, and the digest check both halves rely on."""

from __future__ import annotations

import json

import pytest

from aegis.catalogue import ChangeBase
from aegis_auth.errors import ApprovalMismatch
from aegis_auth.rar import (
    AEGIS_CHANGE_DETAILS_TYPE,
    MAX_PROPERTIES,
    carried_digests,
    change_authorization_details,
    require_change_digest,
    require_granted_digest,
)
from tests.support.changes import one_of_each_kind

CHANGES = one_of_each_kind()


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.kind)
def test_every_kind_yields_one_guardian_shaped_object_carrying_its_digest(change: ChangeBase) -> None:
    details = change_authorization_details(change)
    assert len(details) == 1
    (detail,) = details
    assert detail["type"] == AEGIS_CHANGE_DETAILS_TYPE
    assert detail["instruction"].startswith("Approve exactly this AWS change: ")
    assert len(detail["instruction"]) <= 255
    properties = detail["properties"]
    assert 1 <= len(properties) <= 10
    assert properties["digest"]["value"] == change.digest
    assert properties["change_id"]["value"] == change.change_id
    assert sorted(p["display_order"] for p in properties.values()) == list(range(1, len(properties) + 1))
    for name, prop in properties.items():
        assert set(prop) == {"display", "name", "display_order", "value"}
        assert prop["display"] is True
        assert isinstance(prop["value"], str)
        assert len(prop["value"]) <= 255
        assert len(prop["name"]) <= 255
        assert all(c.isalnum() or c in "_.-" for c in name)
    assert len(json.dumps(details).encode()) <= 5 * 1024


def test_the_digest_check_accepts_our_digest_and_nothing_else() -> None:
    change, other = CHANGES[0], CHANGES[1]
    details = change_authorization_details(change)
    require_change_digest(details, change.digest)
    assert carried_digests(details) == [change.digest]
    with pytest.raises(ApprovalMismatch, match="another change digest"):
        require_change_digest(details, other.digest)
    with pytest.raises(ApprovalMismatch, match="2 aegis-change objects; exactly one"):
        require_change_digest(details + change_authorization_details(other), change.digest)
    with pytest.raises(ApprovalMismatch, match="no aegis-change object"):
        require_change_digest([{"type": "urn:auth0:schemas:authorization-details:v1:other"}], change.digest)
    with pytest.raises(ApprovalMismatch, match="no aegis-change object"):
        require_change_digest("not a list", change.digest)
    with pytest.raises(ApprovalMismatch):
        require_change_digest([{"type": AEGIS_CHANGE_DETAILS_TYPE, "properties": {}}], change.digest)


def test_plain_string_properties_are_read_too() -> None:
    change = CHANGES[0]
    require_change_digest([{"type": AEGIS_CHANGE_DETAILS_TYPE, "properties": {"digest": change.digest}}], change.digest)


def test_exactly_one_object_of_our_type_even_when_every_copy_carries_our_digest() -> None:
    change = CHANGES[0]
    (ours,) = change_authorization_details(change)
    with pytest.raises(ApprovalMismatch, match="2 aegis-change objects; exactly one"):
        require_change_digest([ours, ours], change.digest)
    with pytest.raises(ApprovalMismatch, match="3 aegis-change objects"):
        require_change_digest([ours, dict(ours), {"type": AEGIS_CHANGE_DETAILS_TYPE}], change.digest)
    # Objects of other types are another API's business: they neither satisfy nor spoil the check.
    require_change_digest([{"type": "urn:auth0:schemas:authorization-details:v1:other"}, ours], change.digest)


def test_the_grant_is_read_from_the_signed_access_token_only() -> None:
    change, other = CHANGES[0], CHANGES[1]
    ours, theirs = change_authorization_details(change), change_authorization_details(other)
    require_granted_digest({"authorization_details": ours}, change.digest)
    # The token response's own authorization_details is unsigned: no fallback to it, so no way to pass it at all.
    with pytest.raises(ApprovalMismatch, match="access token states no authorization_details"):
        require_granted_digest({}, change.digest)
    with pytest.raises(ApprovalMismatch, match="another change digest"):
        require_granted_digest({"authorization_details": theirs}, change.digest)
    with pytest.raises(ApprovalMismatch, match="no aegis-change object"):
        require_granted_digest({"authorization_details": []}, change.digest)


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.kind)
def test_the_approver_is_shown_the_account_of_the_change_within_auth0s_property_limit(change: ChangeBase) -> None:
    (detail,) = change_authorization_details(change)
    properties = detail["properties"]
    assert properties["account"]["value"] == change.account_id
    assert properties["account"]["name"] == "Account"
    # Right after the risk, before the region: where and whose, next to each other.
    assert properties["account"]["display_order"] == properties["risk"]["display_order"] + 1
    assert properties["region"]["display_order"] == properties["account"]["display_order"] + 1
    assert len(properties) <= MAX_PROPERTIES


def test_a_member_accounts_bucket_change_names_that_account_though_its_arn_names_none() -> None:
    (bucket,) = [c for c in CHANGES if c.kind == "enable-bucket-public-access-block"]
    member = type(bucket).propose(
        **bucket.model_dump(exclude={"change_id", "kind", "account_id"}), account_id="210987654321"
    )
    (detail,) = change_authorization_details(member)
    assert "210987654321" not in member.resource_arn
    assert detail["properties"]["account"]["value"] == "210987654321"
    assert detail["properties"]["digest"]["value"] == member.digest != bucket.digest
