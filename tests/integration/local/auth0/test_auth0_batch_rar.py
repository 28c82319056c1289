"""The emulated tenant accepts a batch approval as Auth0 would: the Aegis API registers the aegis-batch RAR type
beside aegis-change, the phone shows the one aegis-batch object as asked, and the approved token carries it in its
own authorization_details claim. The batch objects are the ones the approval function sends (aegis_auth.rar), for
batches the planner makes (aegis.approvals.requests), up to the largest a batch may be."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.policy import ApprovalPolicy
from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis_auth.rar import (
    AEGIS_BATCH_DETAILS_TYPE,
    batch_authorization_details,
    batch_binding_message,
    require_granted_root,
)
from aegis_local.auth0 import AEGIS_BATCH_TYPE, AEGIS_CHANGE_TYPE, DEFAULT_API_AUDIENCE, DEFAULT_APPROVER_SUB
from aegis_local.auth0.config import EmulatorConfig
from tests.support.approval_plans import variable_kinds, variants
from tests.support.auth0_wire import Wire

MISSION = "m-5d41402abc4b2a76b971"
REVIEW_BASE = "https://d1234abcd.cloudfront.net/"


def planned_batch(count: int, kinds: list[str]) -> ApprovalRequest:
    changes = [change for n, kind in enumerate(kinds) for change in variants(kind, count // len(kinds), start=n * 1000)]
    policy = ApprovalPolicy(approver_subs=(DEFAULT_APPROVER_SUB,), batch_max_changes=100, review_url_base=REVIEW_BASE)
    (request,) = plan_requests(MISSION, changes, policy)
    assert request.kind == "batch"
    return request


def test_the_projects_api_registers_both_approval_types_and_discovery_says_so(wire: Wire) -> None:
    (api,) = [api for api in EmulatorConfig.default().resource_servers if api.identifier == DEFAULT_API_AUDIENCE]
    assert api.authorization_details_types == (AEGIS_CHANGE_TYPE, AEGIS_BATCH_TYPE)
    assert AEGIS_BATCH_TYPE == AEGIS_BATCH_DETAILS_TYPE  # the emulator's name is the approval function's
    discovery = wire.http.get(".well-known/openid-configuration").json()
    assert {AEGIS_CHANGE_TYPE, AEGIS_BATCH_TYPE} <= set(discovery["authorization_details_types_supported"])


@pytest.mark.parametrize(
    ("count", "kinds"),
    [
        (12, ["revoke-security-group-rules", "enable-kms-key-rotation"]),
        # The largest batch a deployment may configure (100 changes), of four kinds.
        (100, variable_kinds()[:4]),
    ],
    ids=["twelve", "largest"],
)
def test_a_planned_batch_is_accepted_shown_on_the_phone_and_granted_in_the_token(
    wire: Wire, count: int, kinds: list[str]
) -> None:
    request = planned_batch(count, kinds)
    details = batch_authorization_details(MISSION, request)
    binding_message = batch_binding_message(request)
    started = wire.start_request(binding_message=binding_message, authorization_details=json.dumps(details))

    (shown,) = wire.emulator.pending(DEFAULT_APPROVER_SUB)
    assert shown["auth_req_id"] == started["auth_req_id"]
    assert shown["binding_message"] == binding_message
    assert shown["authorization_details"] == details  # exactly one object, as asked, all 7 properties

    wire.emulator.approve(started["auth_req_id"])
    wire.clock.advance(started["interval"])
    tokens = wire.poll(started["auth_req_id"]).json()
    claims = wire.verify(tokens["access_token"], audience=DEFAULT_API_AUDIENCE)
    assert claims["authorization_details"] == details
    require_granted_root(claims, request.root or "")


def _with(detail: dict[str, Any], **properties: Any) -> str:
    return json.dumps([{**detail, "properties": {**detail["properties"], **properties}}])


def test_a_batch_object_over_auth0s_limits_is_refused(wire: Wire) -> None:
    (detail,) = batch_authorization_details(MISSION, planned_batch(12, ["enable-kms-key-rotation"]))
    value = {"display": True, "name": "Extra", "display_order": 8, "value": "x"}
    too_many = _with(detail, **{f"extra{n}": value for n in range(4)})  # 11 properties
    too_long = _with(detail, kinds={**detail["properties"]["kinds"], "value": "k" * 256})
    for refused in (too_many, too_long):
        response = wire.bc_authorize(authorization_details=refused)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_authorization_details")
    wire.clock.advance(61)
    accepted = wire.bc_authorize(authorization_details=_with(detail, kinds={**detail["properties"]["kinds"]}))
    assert accepted.status_code == 200, accepted.text
