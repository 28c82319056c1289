"""The approval function against a scripted provider and a real Step Functions execution waiting on its token."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from aegis.catalogue import ChangeBase
from aegis_approval.ciba import CibaRequest
from aegis_approval.errors import InvalidApprovalEvent
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE
from tests.support.approval_world import RecordingTaskTokens, World
from tests.support.changes import one_of_each_kind
from tests.support.provider_double import (
    AUDIENCE,
    CLIENT_ID,
    ProviderDouble,
    RsaKey,
    forge_hs256_with_public_key,
    forge_unsigned,
    oauth_error,
)

APPROVER = "auth0|approver-1"
CHANGE, OTHER_CHANGE = one_of_each_kind()[0], one_of_each_kind()[1]
PENDING = oauth_error(400, "authorization_pending")
Reply = tuple[int, Any, dict[str, str]]


@pytest.fixture
def provider(world: World) -> ProviderDouble:
    return ProviderDouble(clock=world.clock)


@pytest.fixture
def tasks(world: World) -> RecordingTaskTokens:
    return RecordingTaskTokens(world.stepfunctions.sfn)


@pytest.fixture
def service(world: World, provider: ProviderDouble, tasks: RecordingTaskTokens) -> Any:
    settings = world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER)
    return world.service(settings, provider.client(), tasks=tasks)


def approval(change: ChangeBase = CHANGE, sub: str = APPROVER, **overrides: Any) -> Callable[..., Reply]:
    def reply(double: ProviderDouble, _: object) -> Reply:
        return (
            200,
            double.token_response(sub, digest=change.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE, **overrides),
            {},
        )

    return reply


def finished(world: World, event: dict[str, Any]) -> dict[str, Any]:
    return world.stepfunctions.finished(event["execution_arn"])


# --- approve --------------------------------------------------------------------------------------------------------
def test_an_approval_is_sealed_and_only_an_opaque_decision_reaches_step_functions(
    world: World, provider: ProviderDouble, service: Any, tasks: RecordingTaskTokens
) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.extend([PENDING, PENDING, approval()])
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}

    execution = finished(world, event)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert set(output) == {"decision", "approver_sub", "approved_at", "handoffs"}
    assert (output["decision"], output["approver_sub"]) == ("approved", APPROVER)
    assert output["approved_at"].endswith("Z")
    assert set(output["handoffs"]) == {CHANGE.change_id}

    (sealed,) = world.sealed_handoffs()
    assert sealed["handoff_id"] == output["handoffs"][CHANGE.change_id]
    assert (sealed["change_digest"], sealed["change_id"], sealed["approver_sub"]) == (
        CHANGE.digest,
        CHANGE.change_id,
        APPROVER,
    )
    opened = HandoffStore(world.tables["Handoff"], __import__("boto3").client("kms"), clock=world.clock).consume(
        output["handoffs"][CHANGE.change_id], execution_arn=event["execution_arn"], change_digest=CHANGE.digest
    )
    assert opened.token_response["access_token"] in provider.issued
    assert sealed["expires_at"] == int(world.clock()) + 600
    assert tasks.calls[-1] == "success"
    assert "heartbeat" in tasks.calls


def test_the_backchannel_request_names_the_change_and_the_approver(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.append(approval())
    service.handle(event, world.lambda_time(900))
    (sent,) = provider.requests_to("/bc-authorize")
    assert sent.form["scope"] == "openid"
    assert json.loads(sent.form["login_hint"]) == {"format": "iss_sub", "iss": provider.issuer, "sub": APPROVER}
    assert sent.form["binding_message"] == CHANGE.binding_message()
    assert sent.form["requested_expiry"] == "300"
    assert sent.form["audience"] == sent.form["resource"] == AUDIENCE
    (detail,) = json.loads(sent.form["authorization_details"])
    assert detail["type"] == AEGIS_CHANGE_DETAILS_TYPE
    assert detail["properties"]["digest"]["value"] == CHANGE.digest
    assert sent.form["client_id"] == CLIENT_ID


def test_every_outcome_is_audited_with_who_what_and_when(world: World, provider: ProviderDouble, service: Any) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.append(approval())
    service.handle(event, world.lambda_time(900))
    trail = world.audit_trail()
    assert [(item["action"], item["outcome"]) for item in trail] == [
        ("approval.requested", "requested"),
        ("approval.decided", "approved"),
    ]
    details = json.loads(trail[-1]["details"])
    assert details["change_digest"] == CHANGE.digest
    assert details["approver_sub"] == APPROVER
    assert details["change_id"] == CHANGE.change_id
    assert trail[-1]["at"]
    assert trail[-1]["actor"] == "approval"


# --- deny, expire, halt ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("replies", "error", "decision"),
    [
        ([PENDING, oauth_error(400, "access_denied")], "Approval.Denied", "denied"),
        ([PENDING, oauth_error(400, "expired_token")], "Approval.Expired", "expired"),
    ],
)
def test_denial_and_expiry_fail_the_task_with_named_errors_and_release_nothing(
    world: World, provider: ProviderDouble, service: Any, replies: list[Reply], error: str, decision: str
) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.extend(replies)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": decision}
    execution = finished(world, event)
    assert (execution["status"], execution["error"]) == ("FAILED", error)
    assert world.sealed_handoffs() == []
    assert world.audit_trail()[-1]["outcome"] == decision


def test_the_requests_own_expiry_ends_the_wait(world: World, provider: ProviderDouble, service: Any) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.backchannel_script.append((200, {"auth_req_id": "r", "expires_in": 12, "interval": 5}, {}))
    provider.token_script.extend([PENDING, PENDING])
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "expired"}
    assert finished(world, event)["error"] == "Approval.Expired"
    assert len(provider.requests_to("/oauth/token")) == 2


def test_a_halt_on_entry_fails_the_task_before_any_push(world: World, provider: ProviderDouble, service: Any) -> None:
    world.halt()
    event = world.stepfunctions.start(CHANGE)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "halted"}
    assert finished(world, event)["error"] == "Approval.Halted"
    assert provider.requests == []


def test_a_halt_during_polling_stops_before_the_next_poll(world: World, provider: ProviderDouble, service: Any) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.extend([PENDING, approval()])
    world.on_sleep.append(lambda _: world.halt() if provider.requests_to("/oauth/token") else None)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "halted"}
    assert finished(world, event)["error"] == "Approval.Halted"
    assert len(provider.requests_to("/oauth/token")) == 1
    assert world.sealed_handoffs() == []


def test_a_halt_after_the_approval_arrived_still_releases_nothing(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(CHANGE)

    def approve_then_halt(double: ProviderDouble, record: object) -> Reply:
        world.halt()
        return approval()(double, record)

    provider.token_script.append(approve_then_halt)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "halted"}
    assert world.sealed_handoffs() == []


# --- continuation ---------------------------------------------------------------------------------------------------
def test_a_continuation_carries_the_wait_into_a_second_invocation_outside_any_payload(
    world: World, provider: ProviderDouble, service: Any, tasks: RecordingTaskTokens
) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.extend([PENDING, PENDING, PENDING, approval()])
    assert service.handle(event, world.lambda_time(44)) == {"outcome": "continued"}
    assert world.stepfunctions.status(event["execution_arn"]) == "RUNNING"
    (invocation,) = world.self_invocations
    assert set(invocation) == {"continuation_id"}
    auth_req_id = provider.requests_to("/oauth/token")[0].form["auth_req_id"]
    stored = world.tables["Continuations"].get_item(Key={"id": invocation["continuation_id"]})["Item"]
    assert (stored["kind"], stored["auth_req_id"]) == ("continuation", auth_req_id)
    history = json.dumps(world.stepfunctions.history(event["execution_arn"]), default=str)
    assert auth_req_id not in history
    assert invocation["continuation_id"] not in history

    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "approved"}
    assert finished(world, event)["status"] == "SUCCEEDED"
    polls = provider.requests_to("/oauth/token")
    assert [p.form["auth_req_id"] for p in polls] == [auth_req_id] * 4
    assert [p.at - polls[0].at for p in polls] == [0, 5, 10, 15]  # the interval holds across the hand-over
    assert len(provider.requests_to("/bc-authorize")) == 1
    taken = world.tables["Continuations"].get_item(Key={"id": invocation["continuation_id"]})["Item"]
    assert "task_token" not in taken
    assert "auth_req_id" not in taken
    assert [item["outcome"] for item in world.audit_trail()] == ["requested", "continued", "approved"]

    calls_before = list(tasks.calls)
    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "duplicate"}
    assert tasks.calls == calls_before


def test_slow_down_growth_survives_a_continuation(world: World, provider: ProviderDouble, service: Any) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.extend([oauth_error(400, "slow_down"), PENDING, approval()])
    assert service.handle(event, world.lambda_time(50)) == {"outcome": "continued"}
    assert service.handle(world.self_invocations[0], world.lambda_time(900)) == {"outcome": "approved"}
    times = [p.at for p in provider.requests_to("/oauth/token")]
    assert [b - a for a, b in itertools.pairwise(times)] == [10, 10]


def test_a_failed_self_invocation_fails_the_task_and_withdraws_the_continuation(
    world: World, provider: ProviderDouble, tasks: RecordingTaskTokens
) -> None:
    def refuse(_: dict[str, str]) -> None:
        raise RuntimeError("throttled")

    settings = world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER)
    service = world.service(settings, provider.client(), tasks=tasks, invoke_self=refuse)
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.extend([PENDING, PENDING])
    assert service.handle(event, world.lambda_time(44)) == {"outcome": "failed"}
    assert finished(world, event)["error"] == "Approval.Failed"
    (continuation,) = [i for i in world.tables["Continuations"].scan()["Items"] if i["kind"] == "continuation"]
    assert "taken_at" in continuation
    assert "task_token" not in continuation


def test_a_duplicate_delivery_of_the_task_sends_no_second_push(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.append(approval())
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "duplicate"}
    assert len(provider.requests_to("/bc-authorize")) == 1


def test_an_execution_that_no_longer_waits_gets_no_push(world: World, provider: ProviderDouble, service: Any) -> None:
    event = world.stepfunctions.start(CHANGE)
    world.stepfunctions.sfn.send_task_failure(taskToken=event["task_token"], error="States.Timeout")
    finished(world, event)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "abandoned"}
    assert provider.requests_to("/bc-authorize") == []
    assert world.audit_trail()[-1]["outcome"] == "abandoned"


# --- forged or mismatched approvals ---------------------------------------------------------------------------------
def _forged_access_token(kind: str, provider: ProviderDouble) -> Callable[..., Reply]:
    def reply(double: ProviderDouble, record: object) -> Reply:
        honest = double.token_response(APPROVER, digest=CHANGE.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE)
        claims = double.access_claims(APPROVER, digest=CHANGE.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE)
        key = double.signing_key
        if kind == "other-key":
            honest["access_token"] = RsaKey.generate(kid=key.kid).sign(claims)
        elif kind == "alg-none":
            honest["access_token"] = forge_unsigned(claims, key.kid)
        elif kind == "hs256-public-key":
            honest["access_token"] = forge_hs256_with_public_key(claims, key.kid, key.public_pem)
        elif kind == "wrong-audience":
            honest["access_token"] = key.sign({**claims, "aud": "https://someone-else.example/api"})
        elif kind == "other-digest":
            return approval(OTHER_CHANGE)(double, record)
        elif kind == "token-digest-only-in-response":
            honest["access_token"] = key.sign(
                double.access_claims(APPROVER, digest=OTHER_CHANGE.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE)
            )
        elif kind == "no-authorization-details":
            honest = double.token_response(APPROVER, digest=None, details_type=AEGIS_CHANGE_DETAILS_TYPE)
        elif kind == "details-only-in-the-unsigned-response":
            # The token response still states our digest; the signed access token states no grant at all.
            honest["access_token"] = key.sign({k: v for k, v in claims.items() if k != "authorization_details"})
        elif kind == "two-details-objects-of-our-type":
            details = claims["authorization_details"]
            honest["access_token"] = key.sign({**claims, "authorization_details": details + details})
        elif kind == "access-token-of-another-client":
            honest["access_token"] = key.sign({**claims, "azp": "another-client-of-the-tenant"})
        elif kind == "access-token-naming-no-client":
            honest["access_token"] = key.sign({k: v for k, v in claims.items() if k != "azp"})
        elif kind in ("id-token-several-audiences-no-azp", "id-token-azp-of-another-client"):
            now = int(double.clock())
            id_claims = {
                "iss": double.issuer,
                "sub": APPROVER,
                "aud": [CLIENT_ID, "another-client-of-the-tenant"],
                "iat": now,
                "exp": now + 600,
            }
            if kind == "id-token-azp-of-another-client":
                id_claims["azp"] = "another-client-of-the-tenant"
            honest["id_token"] = key.sign(id_claims)
        elif kind == "another-user":
            return approval(sub="auth0|someone-else")(double, record)
        elif kind == "id-token-other-key":
            now = int(double.clock())
            honest["id_token"] = RsaKey.generate(kid=key.kid).sign(
                {"iss": double.issuer, "sub": APPROVER, "aud": CLIENT_ID, "iat": now, "exp": now + 600}
            )
        elif kind == "expired":
            honest["access_token"] = key.sign({**claims, "exp": int(double.clock()) - 120})
        return 200, honest, {}

    return reply


FORGERIES = [
    "other-key",
    "alg-none",
    "hs256-public-key",
    "wrong-audience",
    "other-digest",
    "token-digest-only-in-response",
    "no-authorization-details",
    "details-only-in-the-unsigned-response",
    "two-details-objects-of-our-type",
    "access-token-of-another-client",
    "access-token-naming-no-client",
    "id-token-several-audiences-no-azp",
    "id-token-azp-of-another-client",
    "another-user",
    "id-token-other-key",
    "expired",
]


@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_or_mismatched_approval_is_never_released(
    world: World, provider: ProviderDouble, service: Any, kind: str
) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.append(_forged_access_token(kind, provider))
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "failed"}
    execution = finished(world, event)
    assert (execution["status"], execution["error"]) == ("FAILED", "Approval.Failed")
    assert world.sealed_handoffs() == []
    assert world.audit_trail()[-1]["outcome"] == "failed"


def test_the_checks_refuse_only_what_the_forgeries_change(world: World, provider: ProviderDouble, service: Any) -> None:
    # An RFC 9068 `client_id` instead of Auth0's `azp`, and an ID token for several audiences that names us in azp:
    # both are a genuine grant to this client, and are released.
    def reply(double: ProviderDouble, record: object) -> Reply:
        claims = double.access_claims(
            APPROVER, digest=CHANGE.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE, azp=None, client_id=CLIENT_ID
        )
        now = int(double.clock())
        id_token = double.signing_key.sign(
            {
                "iss": double.issuer,
                "sub": APPROVER,
                "aud": [CLIENT_ID, "another-client-of-the-tenant"],
                "azp": CLIENT_ID,
                "iat": now,
                "exp": now + 600,
            }
        )
        access_token = double.signing_key.sign(claims)
        return 200, {"access_token": access_token, "id_token": id_token, "token_type": "Bearer"}, {}

    event = world.stepfunctions.start(CHANGE)
    provider.token_script.append(reply)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    assert len(world.sealed_handoffs()) == 1


# --- bad input ------------------------------------------------------------------------------------------------------
def test_an_event_with_an_invalid_change_fails_its_task(world: World, provider: ProviderDouble, service: Any) -> None:
    event = world.stepfunctions.start(CHANGE)
    (item,) = event["request"]["items"]
    tampered_item = {**item, "change": {**item["change"], "after": item["change"]["before"]}}
    tampered = {**event, "request": {**event["request"], "items": [tampered_item]}}
    assert service.handle(tampered, world.lambda_time(900)) == {"outcome": "failed"}
    assert finished(world, event)["error"] == "Approval.Failed"
    assert provider.requests == []


def test_a_malformed_task_is_failed_without_echoing_the_event(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(CHANGE)
    malformed = {**event, "mission_id": 7, "unexpected": event["task_token"]}
    assert service.handle(malformed, world.lambda_time(900)) == {"outcome": "failed"}
    assert finished(world, event)["error"] == "Approval.Failed"
    details = json.loads(world.audit_trail("unknown-mission")[-1]["details"])
    assert "malformed" in details["reason"]
    assert event["task_token"] not in json.dumps(details)
    assert provider.requests == []


def test_events_without_a_task_token_are_rejected_by_name(service: Any, world: World) -> None:
    events: list[Any] = [{}, {"change": {}}, {"continuation_id": "not-ours"}, ["list"]]
    for event in events:
        with pytest.raises(InvalidApprovalEvent):
            service.handle(event, world.lambda_time(900))


def test_the_continuation_request_keeps_its_handle_out_of_repr() -> None:
    assert "secret-handle" not in repr(CibaRequest("secret-handle", 1.0, 5.0, 1.0))
