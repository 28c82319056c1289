"""The aegis-batch authorization_details the approver sees for a batch, its binding message, and the grant checks the
approval and the executor rely on (the root the provider signed, the kind of grant)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aegis.approvals.policy import ApprovalPolicy
from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.models import Risk
from aegis_auth.errors import ApprovalMismatch
from aegis_auth.rar import (
    AEGIS_BATCH_DETAILS_TYPE,
    AEGIS_CHANGE_DETAILS_TYPE,
    BatchGrant,
    batch_authorization_details,
    batch_binding_message,
    change_authorization_details,
    granted_batch,
    granted_kind,
    require_granted_root,
)
from aegis_local.auth0.rar import parse_authorization_details, validate_binding_message
from tests.support.approval_plans import variable_kinds, variant, variants

MISSION = "m-0123456789abcdef0123"
APPROVER = "auth0|alice"
SG, KMS = "revoke-security-group-rules", "enable-kms-key-rotation"
CONSOLE = "https://console.example/"


def plan(changes: list[Any], review_url_base: str = CONSOLE) -> list[ApprovalRequest]:
    return plan_requests(MISSION, changes, ApprovalPolicy(approver_subs=(APPROVER,), review_url_base=review_url_base))


def batch(review_url_base: str = CONSOLE) -> ApprovalRequest:
    (request,) = plan([*variants(SG, 9, risk=Risk.MEDIUM), *variants(KMS, 3)], review_url_base)
    assert request.kind == "batch"
    return request


def claims(*details: dict[str, Any]) -> dict[str, Any]:
    return {"sub": APPROVER, "authorization_details": list(details)}


def test_one_guardian_shaped_object_with_the_seven_properties_in_order() -> None:
    request = batch()
    details = batch_authorization_details(MISSION, request)
    assert len(details) == 1
    (detail,) = details
    assert detail["type"] == AEGIS_BATCH_DETAILS_TYPE
    assert detail["instruction"] == "Approve these 12 AWS changes as reviewed in the console"
    properties = detail["properties"]
    assert [(name, p["name"], p["display_order"], p["value"]) for name, p in properties.items()] == [
        ("mission", "Mission", 1, MISSION),
        ("count", "Changes", 2, "12"),
        ("kinds", "By kind", 3, f"{SG}: 9, {KMS}: 3"),
        ("risk", "Highest risk", 4, "medium"),
        ("account", "Account", 5, "123456789012"),
        ("review_url", "Review", 6, f"{CONSOLE}#/missions/{MISSION}/requests/r001"),
        ("merkle_root", "Merkle root (SHA-256)", 7, request.root),
    ]
    for prop in properties.values():
        assert set(prop) == {"display", "name", "display_order", "value"}
        assert prop["display"] is True
        assert isinstance(prop["value"], str)
    # Within every limit Auth0 sets (the local emulator checks the documented ones).
    assert parse_authorization_details(json.dumps(details), [AEGIS_BATCH_DETAILS_TYPE]) == details


def test_without_a_console_the_review_property_is_left_out() -> None:
    details = batch_authorization_details(MISSION, batch(review_url_base=""))
    names = list(details[0]["properties"])
    assert names == ["mission", "count", "kinds", "risk", "account", "merkle_root"]
    assert [p["display_order"] for p in details[0]["properties"].values()] == [1, 2, 3, 4, 5, 6]


def test_every_planned_batch_fits_without_cutting() -> None:
    base = CONSOLE + "p" * 150
    changes = [variant(kind, n) for kind in variable_kinds() for n in range(4)]
    for request in plan(changes, review_url_base=base):
        if request.kind != "batch":
            continue
        details = batch_authorization_details(MISSION, request)
        parse_authorization_details(json.dumps(details), [AEGIS_BATCH_DETAILS_TYPE])
        values = [p["value"] for p in details[0]["properties"].values()]
        assert all(len(value) <= PROPERTY_VALUE_MAX for value in values)
        assert values[2] == request.kinds_summary()


def test_an_overlong_value_is_refused_never_cut() -> None:
    # A mission id too long to show whole: the function refuses rather than shortening it.
    with pytest.raises(ValueError, match="255"):
        batch_authorization_details("m-" + "0" * 300, batch(review_url_base=""))


def test_a_single_request_has_no_batch_details_or_binding_message() -> None:
    (single,) = plan(variants(KMS, 1))
    with pytest.raises(ValueError, match="only a batch"):
        batch_authorization_details(MISSION, single)
    with pytest.raises(ValueError, match="only a batch"):
        batch_binding_message(single)


def test_binding_message() -> None:
    request = batch()
    assert request.root is not None
    message = batch_binding_message(request)
    assert message == f"Approve 12 changes #{request.root[:6]}"
    assert validate_binding_message(message) == message
    assert re.fullmatch(r"[A-Za-z0-9 +\-_.,:#]{1,64}", message)
    # The largest batch the policy allows still fits.
    (largest,) = plan_requests(
        MISSION, variants(KMS, 100), ApprovalPolicy(approver_subs=(APPROVER,), batch_max_changes=100)
    )
    assert validate_binding_message(batch_binding_message(largest)) == batch_binding_message(largest)


# --- What the token grants -------------------------------------------------------------------------------------------
def test_the_granted_root_is_the_one_batch_object_of_the_token() -> None:
    request = batch()
    assert request.root is not None
    details = batch_authorization_details(MISSION, request)
    granted = claims(*details)
    require_granted_root(granted, request.root)
    assert granted_batch(granted) == BatchGrant(root=request.root, count=12)
    assert granted_kind(granted) == "batch"
    # Objects of other types are not ours to judge.
    require_granted_root(claims(*details, {"type": "urn:auth0:schemas:authorization-details:v1:other"}), request.root)


def test_another_root_is_refused() -> None:
    request, other = batch(), batch(review_url_base="")
    (second,) = plan(variants(KMS, 2, start=50))
    assert second.root is not None
    with pytest.raises(ApprovalMismatch, match="another Merkle root"):
        require_granted_root(claims(*batch_authorization_details(MISSION, request)), second.root)
    assert other.root == request.root  # the console is not part of the root


def test_two_batch_objects_or_none_are_refused() -> None:
    request = batch()
    assert request.root is not None
    (detail,) = batch_authorization_details(MISSION, request)
    with pytest.raises(ApprovalMismatch, match="2 aegis-batch objects; exactly one"):
        require_granted_root(claims(detail, detail), request.root)
    with pytest.raises(ApprovalMismatch, match="no aegis-batch object"):
        require_granted_root(claims(*change_authorization_details(request.changes()[0])), request.root)
    with pytest.raises(ApprovalMismatch, match="states no authorization_details"):
        require_granted_root({"sub": APPROVER}, request.root)
    with pytest.raises(ApprovalMismatch, match="no aegis-batch object"):
        require_granted_root({"authorization_details": "not a list"}, request.root)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"merkle_root": None}, "Merkle root"),
        ({"merkle_root": {"value": "A" * 64}}, "Merkle root"),
        ({"merkle_root": {"value": "0" * 63}}, "Merkle root"),
        ({"count": None}, "count"),
        ({"count": {"value": "0"}}, "count"),
        ({"count": {"value": "-1"}}, "count"),
        ({"count": {"value": 12}}, "count"),
        ({"count": {"value": "\uff11\uff12"}}, "count"),
    ],
)
def test_a_malformed_batch_object_is_refused(change: dict[str, Any], says: str) -> None:
    request = batch()
    assert request.root is not None
    (detail,) = batch_authorization_details(MISSION, request)
    properties = {name: value for name, value in detail["properties"].items() if name not in change}
    properties |= {name: value for name, value in change.items() if value is not None}
    with pytest.raises(ApprovalMismatch, match=says):
        granted_batch(claims(detail | {"properties": properties}))


def test_granted_kind() -> None:
    request = batch()
    single = change_authorization_details(request.changes()[0])
    (batch_detail,) = batch_authorization_details(MISSION, request)
    assert granted_kind(claims(*single)) == "single"
    assert granted_kind(claims(batch_detail)) == "batch"
    with pytest.raises(ApprovalMismatch, match="both"):
        granted_kind(claims(*single, batch_detail))
    with pytest.raises(ApprovalMismatch, match="neither"):
        granted_kind(claims({"type": "urn:auth0:schemas:authorization-details:v1:other"}))
    with pytest.raises(ApprovalMismatch, match="neither"):
        granted_kind(claims())
    with pytest.raises(ApprovalMismatch, match="states no authorization_details"):
        granted_kind({"sub": APPROVER})
    assert AEGIS_CHANGE_DETAILS_TYPE != AEGIS_BATCH_DETAILS_TYPE
