"""Approve X, execute X: every way of presenting an approval that does not release exactly this change, in this
execution, by this approver, is `Executor.ApprovalInvalid` — and nothing is applied, no credential is obtained, and
every handoff the request names for the change is gone. (Batches and the two-person rule:
test_executor_batches_and_two_person.py.)"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from jose import jwt

from aegis.catalogue import ChangeBase
from aegis_auth.rar import change_authorization_details
from aegis_executor.errors import ApprovalInvalid
from aegis_local.auth0 import DEFAULT_EXECUTOR_CLIENT_ID
from aegis_local.auth0.keys import SigningKey
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES, Case
from tests.support.executor_world import World, handoff_of

OTHER_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:aegis-mission:m-2"


def _resign(
    world: World, token_response: dict[str, Any], signer: Callable[[dict[str, Any]], str], **changes: Any
) -> dict[str, Any]:
    """The token response with its access token's claims changed and signed again by `signer`."""
    claims = {**jwt.get_unverified_claims(token_response["access_token"]), **changes}
    forged = {**token_response, "access_token": signer(claims)}
    if "authorization_details" in changes:
        forged["authorization_details"] = changes["authorization_details"]
    return forged


def _real_key(world: World) -> Callable[[dict[str, Any]], str]:
    """The tenant's own signing key: a token that verifies, so only the claim under test can refuse it."""
    return world.emulator.tenant.keys.sign


def _foreign_key_same_kid(world: World) -> Callable[[dict[str, Any]], str]:
    forger = dataclasses.replace(SigningKey.generate("forger"), kid=world.emulator.signing_kid())
    return forger.sign


def _foreign_key(world: World) -> Callable[[dict[str, Any]], str]:
    return SigningKey.generate("forger").sign


def _attempt(world: World, case: Case, payload: dict[str, Any]) -> ApprovalInvalid:
    with pytest.raises(ApprovalInvalid) as refused:
        world.invoke(payload)
    assert type(refused.value).__name__ == "Executor.ApprovalInvalid"
    assert case.facts() == case.facts_before, "nothing was applied"
    assert world.sts_calls == [], "no credential was obtained"
    assert world.remediation_calls == []
    assert world.audit("executor.approval_invalid")
    assert world.audit("executor.result") == []
    change_id = payload["change"]["change_id"]
    named = [approval["handoffs"].get(change_id) for approval in payload["approval"]["approvals"]]
    assert not any(world.handoff_exists(h) for h in named if h), "every handoff named for the change is gone"
    return refused.value


def test_a_replayed_handoff_is_refused_in_another_execution(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    assert world.invoke(world.payload(case.change, approval))["outcome"] == "applied"
    boto3.client("kms", region_name=REGION).disable_key_rotation(KeyId=case.change.resource_arn)
    world.sts_calls.clear()
    world.remediation_calls.clear()
    before = len(world.audit("executor.approval_invalid"))

    with pytest.raises(ApprovalInvalid, match="HandoffAlreadyConsumed"):
        world.invoke(world.payload(case.change, approval, execution_arn=OTHER_EXECUTION))

    assert case.facts() is False
    assert world.sts_calls == []
    assert len(world.audit("executor.approval_invalid")) == before + 1


def test_a_handoff_for_another_change_is_refused_and_destroyed(world: World) -> None:
    approved = CASES["enable-kms-key-rotation"]()
    presented = CASES["enable-kms-key-rotation"]()
    approval = world.approve_one(approved.change)
    handoff_id = handoff_of(approval, approved.change)
    # The approval's handoff for one change, named as the handoff of another.
    relabelled = {**approval, "handoffs": {presented.change.change_id: handoff_id}}

    error = _attempt(world, presented, world.payload(presented.change, relabelled))

    assert "HandoffContextMismatch" in str(error)
    assert approved.facts() is False
    assert not world.handoff_exists(handoff_id), "a handoff that failed a check is gone (fail closed)"


def test_an_approval_naming_no_handoff_for_this_change_is_refused(world: World) -> None:
    approved = CASES["enable-kms-key-rotation"]()
    presented = CASES["enable-kms-key-rotation"]()
    approval = world.approve_one(approved.change)

    error = _attempt(world, presented, world.payload(presented.change, approval))

    assert f"name no handoff for change {presented.change.change_id}" in str(error)
    # Another change's handoff is that change's to consume.
    assert world.handoff_exists(handoff_of(approval, approved.change))


def test_a_handoff_sealed_for_another_execution_is_refused(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    error = _attempt(world, case, world.payload(case.change, approval, execution_arn=OTHER_EXECUTION))
    assert "HandoffContextMismatch" in str(error)


def test_a_handoff_whose_stored_context_was_rewritten_fails_kms_decryption(world: World) -> None:
    # Someone who can write the Handoff table (but not use the key) relabels a handoff for another execution.
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    world.tables["handoff"].update_item(
        Key={"handoff_id": handoff_of(approval, case.change)},
        UpdateExpression="SET execution_arn = :other",
        ExpressionAttributeValues={":other": OTHER_EXECUTION},
    )
    error = _attempt(world, case, world.payload(case.change, approval, execution_arn=OTHER_EXECUTION))
    assert "KMS refused" in str(error) or "does not belong to this context" in str(error)


def test_an_unknown_handoff_is_refused(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = {**world.approve_one(case.change), "handoffs": {case.change.change_id: "0" * 32}}
    error = _attempt(world, case, world.payload(case.change, approval))
    assert "HandoffAlreadyConsumed" in str(error)


def test_an_approval_naming_another_approver_is_refused(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = {**world.approve_one(case.change), "approver_sub": "auth0|someone-else"}
    error = _attempt(world, case, world.payload(case.change, approval))
    assert "approver" in str(error)


Forgery = Callable[[World, dict[str, Any], ChangeBase], dict[str, Any]]


def _signed_by_a_foreign_key_under_the_tenants_kid(
    world: World, response: dict[str, Any], _: ChangeBase
) -> dict[str, Any]:
    return _resign(world, response, _foreign_key_same_kid(world))


def _signed_by_a_foreign_key(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    return _resign(world, response, _foreign_key(world))


def _expired(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    now = int(time.time())
    return _resign(world, response, _real_key(world), iat=now - 7200, exp=now - 3600)


def _for_another_audience(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    return _resign(world, response, _real_key(world), aud=["https://billing.example/api"])


def _granting_another_digest(world: World, response: dict[str, Any], change: ChangeBase) -> dict[str, Any]:
    other = CASES["enable-ebs-default-encryption"]().change
    return _resign(world, response, _real_key(world), authorization_details=change_authorization_details(other))


def _granting_another_digest_in_the_token_only(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    other = CASES["enable-ebs-default-encryption"]().change
    forged = _resign(world, response, _real_key(world), authorization_details=change_authorization_details(other))
    return {**forged, "authorization_details": response["authorization_details"]}


def _without_authorization_details(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    claims = {
        k: v for k, v in jwt.get_unverified_claims(response["access_token"]).items() if k != "authorization_details"
    }
    forged = {k: v for k, v in response.items() if k != "authorization_details"}
    return {**forged, "access_token": _real_key(world)(claims)}


def _details_only_in_the_unsigned_response(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    # The response still states this change's grant; the signed access token states none.
    claims = {
        k: v for k, v in jwt.get_unverified_claims(response["access_token"]).items() if k != "authorization_details"
    }
    return {**response, "access_token": _real_key(world)(claims)}


def _two_details_objects_of_our_type(world: World, response: dict[str, Any], change: ChangeBase) -> dict[str, Any]:
    details = change_authorization_details(change)
    return _resign(world, response, _real_key(world), authorization_details=details + details)


def _issued_to_another_client(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    # Any other client of the tenant: the executor's own application, which may not run CIBA at all.
    return _resign(world, response, _real_key(world), azp=DEFAULT_EXECUTOR_CLIENT_ID)


def _issued_to_no_named_client(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    claims = {k: v for k, v in jwt.get_unverified_claims(response["access_token"]).items() if k != "azp"}
    return {**response, "access_token": _real_key(world)(claims)}


def _alg_none(world: World, response: dict[str, Any], _: ChangeBase) -> dict[str, Any]:
    _header, payload, _signature = response["access_token"].split(".")
    unsigned_header = jwt.get_unverified_header(response["access_token"]) | {"alg": "none"}
    encoded = base64.urlsafe_b64encode(json.dumps(unsigned_header).encode()).rstrip(b"=").decode()
    return {**response, "access_token": f"{encoded}.{payload}."}


FORGERIES: dict[str, tuple[Forgery, str]] = {
    "token-from-a-foreign-key-under-the-tenants-kid": (_signed_by_a_foreign_key_under_the_tenants_kid, "Signature"),
    "token-from-a-foreign-key": (_signed_by_a_foreign_key, "kid"),
    "expired-token": (_expired, "expired"),
    "token-for-another-audience": (_for_another_audience, "audience"),
    "token-granting-another-digest": (_granting_another_digest, "another change digest"),
    "token-claim-granting-another-digest": (_granting_another_digest_in_the_token_only, "another change digest"),
    "token-without-authorization-details": (_without_authorization_details, "authorization_details"),
    "grant-only-in-the-unsigned-response": (_details_only_in_the_unsigned_response, "states no authorization_details"),
    "token-with-two-aegis-change-objects": (_two_details_objects_of_our_type, "exactly one"),
    "token-issued-to-another-client": (_issued_to_another_client, "issued to another client"),
    "token-naming-no-client": (_issued_to_no_named_client, "names no authorized party"),
    "unsigned-token": (_alg_none, "algorithm"),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_a_forged_token_in_a_genuine_handoff_is_refused(world: World, name: str) -> None:
    forge, reason = FORGERIES[name]
    case = CASES["enable-kms-key-rotation"]()
    genuine = world.ciba_token_response(case.change)
    approval = world.seal(forge(world, genuine, case.change), case.change)

    error = _attempt(world, case, world.payload(case.change, approval))

    assert reason in str(error)
    assert not world.handoff_exists(handoff_of(approval, case.change))
    (refused,) = world.audit("executor.approval_invalid")
    assert reason in refused["details"]["reason"]


def test_a_handoff_carrying_a_refresh_token_is_refused_without_using_or_recording_it(world: World) -> None:
    # A genuine approval sealed with a refresh token, as an approval function that did not strip it would leave it
    # (the tenant issues none to the approval application, and the approval function discards any it is given):
    # whatever sealed this, no refresh token may cross the hand-off, and the executor, another client, could not
    # revoke one anyway.
    case = CASES["enable-kms-key-rotation"]()
    refresh_token = "v1.M" + secrets.token_urlsafe(48)
    approval = world.seal({**world.ciba_token_response(case.change), "refresh_token": refresh_token}, case.change)

    error = _attempt(world, case, world.payload(case.change, approval))

    assert "refresh token" in str(error)
    assert not world.handoff_exists(handoff_of(approval, case.change))
    assert world.audit("executor.revocation") == [], "no revocation is claimed, none was attempted"
    assert refresh_token not in json.dumps(world.audit()) + world.log_stream.getvalue()


def test_the_genuine_token_of_the_same_approval_is_accepted(world: World) -> None:
    # The forgeries above are refused for what was changed, not for how the test seals them.
    case = CASES["enable-kms-key-rotation"]()
    approval = world.seal(world.ciba_token_response(case.change), case.change)
    assert world.invoke(world.payload(case.change, approval))["outcome"] == "applied"
