"""The approval handler end to end: Auth0 emulator over HTTP, moto, a real execution waiting on its task token."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import boto3
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aegis.catalogue import ChangeBase
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE, change_authorization_details, require_granted_digest
from aegis_jwt.discovery import provider_metadata
from aegis_jwt.verify import TokenVerifier
from aegis_local.auth0.config import DEFAULT_M2M_CLIENT_ID
from aegis_local.reporting import leak_audit
from tests.integration.approval.conftest import APPROVER, AUDIENCE, CLIENT_ID, Stack
from tests.support.changes import one_of_each_kind
from tests.support.provider_double import RsaKey, forge_hs256_with_public_key, forge_unsigned

CHANGE, OTHER_CHANGE = one_of_each_kind()[0], one_of_each_kind()[3]
StackFactory = Callable[..., Stack]


def run(stack: Stack, change: ChangeBase = CHANGE, lambda_seconds: float = 900.0) -> tuple[dict[str, Any], Any]:
    event = stack.world.stepfunctions.start(change)
    return event, stack.invoke(event, lambda_seconds)


def run_to(stack: Stack, outcome: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one approval task to its `outcome`: the event, and the execution the task's answer ended."""
    event, result = run(stack)
    assert result == {"outcome": outcome}
    return event, stack.world.stepfunctions.finished(event["execution_arn"])


def test_approve_after_several_pending_polls_releases_a_sealed_verifiable_approval(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.phone.approve_after(17)
    event, execution = run_to(stack, "approved")
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert set(output) == {"decision", "approver_sub", "approved_at", "handoffs"}
    assert output["approver_sub"] == APPROVER

    polls = stack.token_polls()
    assert len(polls) >= 4  # pending, pending, pending, granted
    assert all(b - a >= 5 for a, b in itertools.pairwise(polls))

    (request,) = stack.phone.seen  # what the phone showed: the binding message and exactly one RAR object
    assert request["binding_message"] == CHANGE.binding_message()
    (detail,) = request["authorization_details"]
    assert detail["type"] == AEGIS_CHANGE_DETAILS_TYPE
    assert detail["properties"]["digest"]["value"] == CHANGE.digest

    # What the executor will do with it: consume once, verify, find the digest.
    opened = HandoffStore(stack.world.tables["Handoff"], boto3.client("kms"), clock=stack.world.clock).consume(
        output["handoffs"][CHANGE.change_id], execution_arn=event["execution_arn"], change_digest=CHANGE.digest
    )
    verifier = TokenVerifier.for_provider(provider_metadata(stack.emulator.issuer), clock=stack.world.clock)
    claims = verifier.verify(opened.token_response["access_token"], AUDIENCE)
    require_granted_digest(claims, CHANGE.digest)
    assert claims["sub"] == opened.approver_sub == APPROVER


def test_client_secret_basic_works_against_the_emulator(make_stack: StackFactory) -> None:
    stack = make_stack(auth_method="client_secret_basic")
    stack.phone.approve_after(0)
    assert run(stack)[1] == {"outcome": "approved"}


def test_deny(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.phone.deny_after(6)
    _, execution = run_to(stack, "denied")
    assert (execution["status"], execution["error"]) == ("FAILED", "Approval.Denied")
    assert stack.world.sealed_handoffs() == []


def test_expire(make_stack: StackFactory) -> None:
    stack = make_stack(requested_expiry=30)
    _, execution = run_to(stack, "expired")
    assert execution["error"] == "Approval.Expired"
    assert stack.world.clock() - stack.token_polls()[0] < 40
    assert stack.world.audit_trail()[-1]["outcome"] == "expired"


def test_slow_down_from_the_emulator_grows_the_interval(make_stack: StackFactory) -> None:
    stack = make_stack()
    fired_early = [False]

    def early_once(seconds: float) -> float:
        # A timer that fires 2 s early, once: the emulator answers 429 slow_down, as Auth0 does.
        if not fired_early[0] and stack.token_polls():
            fired_early[0] = True
            return seconds - 2
        return seconds

    stack.world.adjust_sleep = early_once
    stack.phone.approve_after(40)
    assert run(stack)[1] == {"outcome": "approved"}
    gaps = [round(b - a) for a, b in itertools.pairwise(stack.token_polls())]
    assert gaps[0] == 3  # the early poll, answered with slow_down
    assert len(gaps) >= 3
    assert all(gap >= 10 for gap in gaps[1:])  # 5 s + 5 s for the rest of the request


def test_a_5xx_in_the_middle_is_retried_without_a_second_push(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.phone.approve_after(20)
    failed = [False]

    def fail_after_first_poll(_: float) -> None:
        if len(stack.token_polls()) == 1 and not failed[0]:
            failed[0] = True
            stack.emulator.fail_next(1, 503)

    stack.world.on_sleep.insert(0, fail_after_first_poll)
    assert run(stack)[1] == {"outcome": "approved"}
    assert failed[0]
    assert [path for _, path in stack.polls].count("/bc-authorize") == 1


def test_a_continuation_across_two_invocations(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.phone.approve_after(20)
    event, result = run(stack, lambda_seconds=44)
    assert result == {"outcome": "continued"}
    (invocation,) = stack.lambda_invocations
    assert invocation["type"] == "Event"
    assert invocation["function_name"] == "aegis-approval"
    payload = json.loads(invocation["payload"])
    assert set(payload) == {"continuation_id"}
    assert stack.world.stepfunctions.status(event["execution_arn"]) == "RUNNING"

    assert stack.invoke(payload) == {"outcome": "approved"}
    assert stack.world.stepfunctions.finished(event["execution_arn"])["status"] == "SUCCEEDED"
    assert [path for _, path in stack.polls].count("/bc-authorize") == 1
    history = json.dumps(stack.world.stepfunctions.history(event["execution_arn"]), default=str)
    assert payload["continuation_id"] not in history
    assert stack.phone.seen[0]["auth_req_id"] not in history


def test_halt_during_polling(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.world.on_sleep.append(lambda _: stack.world.halt() if len(stack.token_polls()) >= 2 else None)
    _, execution = run_to(stack, "halted")
    assert execution["error"] == "Approval.Halted"
    assert len(stack.token_polls()) == 2
    assert stack.world.sealed_handoffs() == []


# --- a provider that hands out a refresh token all the same -------------------------------------------------------
def test_a_refresh_token_the_provider_issues_anyway_is_discarded_not_sealed(
    make_stack: StackFactory, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # The tenant issues none (openid only, and the approval application has no refresh-token grant); a provider that
    # did so anyway is played by adding one to the genuine answer on the wire.
    refresh_token = "v1.M" + secrets.token_urlsafe(48)

    def with_refresh_token(genuine: dict[str, Any]) -> dict[str, Any]:
        assert "refresh_token" not in genuine
        return {**genuine, "refresh_token": refresh_token}

    caplog.set_level(logging.DEBUG, logger="aegis-approval")
    stack = make_stack(transport=Tamper(with_refresh_token))
    stack.phone.approve_after(0)
    event, execution = run_to(stack, "approved")

    output = json.loads(execution["output"])
    opened = HandoffStore(stack.world.tables["Handoff"], boto3.client("kms"), clock=stack.world.clock).consume(
        output["handoffs"][CHANGE.change_id], execution_arn=event["execution_arn"], change_digest=CHANGE.digest
    )
    assert "refresh_token" not in opened.token_response
    assert "access_token" in opened.token_response
    decided = json.loads(stack.world.audit_trail()[-1]["details"])
    assert decided["refresh_token_discarded"] is True
    captured = capsys.readouterr()
    records = json.dumps([record.__dict__ for record in caplog.records], default=str)
    assert "refresh token nobody asked for" in records
    surfaces = captured.out + captured.err + records + json.dumps(stack.world.audit_trail(), default=str)
    assert refresh_token not in surfaces


# --- forged and mismatched approvals, injected between the client and a genuine provider ----------------------------
class Tamper(httpx.BaseTransport):
    """Passes everything to the emulator, but rewrites a successful CIBA token answer with `forge`."""

    def __init__(self, forge: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._inner = httpx.HTTPTransport()
        self._forge = forge

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path != "/oauth/token":
            return response
        response.read()
        if response.status_code != 200:
            return response
        body = self._forge(json.loads(response.content))
        return httpx.Response(200, json=body, headers={"Cache-Control": "no-store"})


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, claims, _ = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(claims)


def _emulator_public_pem(issuer: str) -> tuple[str, bytes]:
    """The kid and public key PEM the emulator publishes (what an attacker would use as an HMAC secret)."""
    jwk = httpx.get(f"{issuer}.well-known/jwks.json").json()["keys"][-1]

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    public_key = rsa.RSAPublicNumbers(number(jwk["e"]), number(jwk["n"])).public_key()
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return str(jwk["kid"]), pem


def _genuine_response_for(emulator: Any, change: ChangeBase, audience: str) -> dict[str, Any]:
    """A real approval of another change (or another audience) by the same approver, obtained on the wire."""
    secret = emulator.client_secret(CLIENT_ID)
    with httpx.Client(base_url=emulator.issuer, timeout=5) as http:
        started = http.post(
            "bc-authorize",
            data={
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "scope": "openid",
                "login_hint": json.dumps({"format": "iss_sub", "iss": emulator.issuer, "sub": APPROVER}),
                "binding_message": change.binding_message(),
                "audience": audience,
                "authorization_details": json.dumps(change_authorization_details(change)),
            },
        ).json()
        emulator.approve(started["auth_req_id"])
        emulator.clock.advance(started["interval"])
        return dict(
            http.post(
                "oauth/token",
                data={
                    "client_id": CLIENT_ID,
                    "client_secret": secret,
                    "grant_type": "urn:openid:params:grant-type:ciba",
                    "auth_req_id": started["auth_req_id"],
                },
            ).json()
        )


FORGERIES = ["other-key", "alg-none", "hs256-public-key", "other-digest", "wrong-audience"]


@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_or_mismatched_approval_is_never_released(make_stack: StackFactory, emulator: Any, kind: str) -> None:
    # Genuine tokens of the same tenant, obtained beforehand on the wire, for the substitutions that need them.
    other_change_response = _genuine_response_for(emulator, OTHER_CHANGE, AUDIENCE) if kind == "other-digest" else {}
    management_token = _management_token(emulator) if kind == "wrong-audience" else ""
    emulator.clock.advance(61)  # a fresh per-minute CIBA window for the approver

    def forge(genuine: dict[str, Any]) -> dict[str, Any]:
        header, claims = _segments(genuine["access_token"])
        if kind == "other-key":
            genuine["access_token"] = RsaKey.generate(kid=header["kid"]).sign(claims)
        elif kind == "alg-none":
            genuine["access_token"] = forge_unsigned(claims, header["kid"])
        elif kind == "hs256-public-key":
            kid, public_pem = _emulator_public_pem(emulator.issuer)
            genuine["access_token"] = forge_hs256_with_public_key(claims, kid, public_pem)
        elif kind == "other-digest":
            return other_change_response  # correctly signed, our approver, our audience: another change
        elif kind == "wrong-audience":
            genuine["access_token"] = management_token  # correctly signed by the tenant, for the Management API
        return genuine

    stack = make_stack(transport=Tamper(forge))
    stack.phone.approve_after(0)
    _, execution = run_to(stack, "failed")
    assert (execution["status"], execution["error"]) == ("FAILED", "Approval.Failed")
    assert stack.world.sealed_handoffs() == []
    assert stack.world.audit_trail()[-1]["outcome"] == "failed"


def _management_token(emulator: Any) -> str:
    with httpx.Client(base_url=emulator.issuer, timeout=5) as http:
        return str(
            http.post(
                "oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": DEFAULT_M2M_CLIENT_ID,
                    "client_secret": emulator.client_secret(DEFAULT_M2M_CLIENT_ID),
                    "audience": emulator.management_audience,
                },
            ).json()["access_token"]
        )


# --- the leak check -------------------------------------------------------------------------------------------------
def test_no_issued_secret_reaches_logs_audit_tables_outputs_or_history(
    make_stack: StackFactory, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="aegis-approval")
    stack = make_stack()
    stack.phone.approve_after(20)
    event, first = run(stack, lambda_seconds=44)  # a continuation, so its item is searched too
    second = stack.invoke(json.loads(stack.lambda_invocations[0]["payload"]))
    assert (first, second) == ({"outcome": "continued"}, {"outcome": "approved"})
    denied_stack_event = stack.world.stepfunctions.start(OTHER_CHANGE)
    stack.world.clock.advance(61)
    stack.phone.deny_after(0)
    assert stack.invoke(denied_stack_event) == {"outcome": "denied"}

    secrets = stack.emulator.issued_secrets() | {p["auth_req_id"] for p in stack.phone.seen}
    assert len(secrets) >= 4  # client secrets, access, ID and refresh tokens, auth_req_ids
    assert any(secret.startswith("eyJ") for secret in secrets)  # the approval's JWTs are among them
    captured = capsys.readouterr()
    records = json.dumps([record.__dict__ for record in caplog.records], default=str)
    logs = [("logs:stdout", captured.out), ("logs:stderr", captured.err), ("logs:records", records)]
    assert "approval requested" in records
    result = leak_audit.audit(
        secrets,
        [
            *logs,
            *leak_audit.dynamodb_places(boto3.Session()),
            *leak_audit.stepfunctions_places(boto3.Session()),
            ("lambda:self-invocations", json.dumps(stack.lambda_invocations, default=str)),
        ],
    )
    assert result.clean, result.summary() + " " + repr(result.hits)
    assert result.places_searched >= 8
    assert event["task_token"] not in records + captured.out
