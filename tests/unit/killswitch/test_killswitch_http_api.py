"""The kill switch behind the ops HTTP API: `POST /kill` and `POST /rearm` arrive as API Gateway HTTP API payload
format 2.0 events (`routeKey` "POST /kill", `requestContext.apiId`, `requestContext.authorizer.jwt`), and the handler
answers them exactly as it answers its function URL: same resolver, same verification of the token by the function
itself, same 200 / 400 / 401 / 403. The gateway's own JWT check is never relied on: these events carry the claims and
scopes a gateway would have passed on, and the function still refuses whatever its own verification refuses."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from jose.exceptions import JOSEError

from aegis.control import halt_state
from aegis_killswitch.scopes import KILL_SCOPE
from aegis_local.auth0 import DEFAULT_API_AUDIENCE
from tests.support.killswitch_world import (
    NO_SCOPE_CLIENT,
    OPERATOR_CLIENT,
    OTHER_API_CLIENT,
    TRIGGER_ONLY_CLIENT,
    AwsWorld,
    HandlerAnswer,
    Phone,
    function_url_event,
    handler_answer,
    unverified_claims,
    wait_until,
)

API_ID = "a1b2c3d4e5"
API_DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


def _gateway_jwt(token: str | None) -> dict[str, Any] | None:
    """`requestContext.authorizer` as API Gateway's JWT authorizer fills it: every claim as a string, and the scopes
    of the token. Built from the token's unverified claims, i.e. what a gateway that let it through would send."""
    if token is None:
        return None
    try:
        claims = unverified_claims(token)
    except JOSEError:  # not even a JWT: a gateway would have sent nothing
        return None
    scopes = str(claims.get("scope", "")).split()
    return {
        "jwt": {
            "claims": {name: value if isinstance(value, str) else json.dumps(value) for name, value in claims.items()},
            # null, not [], for a token without scopes.
            "scopes": scopes or None,
        }
    }


def http_api_event(
    path: str,
    token: str | None = None,
    body: str | None = None,
    *,
    method: str = "POST",
    authorizer: dict[str, Any] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A payload format 2.0 event of the ops HTTP API ($default stage), shaped as API Gateway sends it."""
    headers = {
        "accept": "application/json",
        "content-type": "application/json",
        "host": API_DOMAIN,
        "user-agent": "curl/8.5.0",
        "x-amzn-trace-id": "Root=1-67891233-abcdef012345678912345678",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if body is not None:
        headers["content-length"] = str(len(body.encode()))
    route_key = f"{method} {path}"
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": API_ID,
        "domainName": API_DOMAIN,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": "curl/8.5.0",
        },
        "requestId": "JKJaXmPLvHcESHA=",
        "routeKey": route_key,
        "stage": "$default",
        "time": "01/Jan/2030:00:00:00 +0000",
        "timeEpoch": 1893456000000,
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": base64_body,
    }
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    return event


@pytest.fixture
def through_api(app: ModuleType) -> Callable[..., HandlerAnswer]:
    def call(path: str, token: str | None = None, body: Any = None, **kwargs: Any) -> HandlerAnswer:
        raw = body if body is None or isinstance(body, str) else json.dumps(body)
        kwargs.setdefault("authorizer", _gateway_jwt(token))
        return handler_answer(app, http_api_event(path, token, raw, **kwargs))

    return call


# --------------------------------------------------------------------------------------------------- allowed


def test_kill_and_rearm_through_the_http_api_routes(
    through_api: Callable[..., HandlerAnswer], aws_world: AwsWorld, phone: Phone
) -> None:
    mission = aws_world.start_mission(f"m-{uuid.uuid4().hex[:8]}")
    token = phone.operator_token()

    code, body, headers = through_api("/kill", token, {"reason": "seen on the console"})

    assert code == 200, [step for step in body["steps"] if not step["ok"]]
    assert (body["ok"], body["halted"]) == (True, True)
    assert body["requested_by"] == f"{OPERATOR_CLIENT}@clients"
    assert headers["Cache-Control"] == "no-store"
    assert halt_state(aws_world.control)["engaged_by"] == f"{OPERATOR_CLIENT}@clients"
    wait_until(lambda: aws_world.status(mission) != "RUNNING", what="the mission to be stopped")

    # API Gateway base64-encodes bodies it does not treat as text; the handler decodes them the same way.
    code, body, _ = through_api("/rearm", token, {"reason": "drill over"}, base64_body=True)

    assert code == 200
    assert (body["ok"], body["halted"]) == (True, False)
    assert halt_state(aws_world.control) is None


# --------------------------------------------------------------------------------------------------- refused

REFUSALS: list[tuple[str, str, Callable[[Phone], str | None], int]] = [
    ("kill without a token", "/kill", lambda phone: None, 401),
    ("kill with an expired token", "/kill", lambda phone: phone.signed_by_tenant(iat=1_000_000, exp=1_000_600), 401),
    (
        "kill with a token for another audience",
        "/kill",
        lambda phone: phone.operator_token(OTHER_API_CLIENT, DEFAULT_API_AUDIENCE),
        401,
    ),
    (
        "kill with a token of another issuer",
        "/kill",
        lambda phone: phone.signed_by_tenant(iss="https://evil.example/"),
        401,
    ),
    ("kill with alg none", "/kill", lambda phone: phone.alg_none_token(), 401),
    ("kill without the scope", "/kill", lambda phone: phone.operator_token(NO_SCOPE_CLIENT), 403),
    ("rearm without the rearm scope", "/rearm", lambda phone: phone.operator_token(TRIGGER_ONLY_CLIENT), 403),
]


def test_refusals_are_the_function_urls_refusals_and_change_nothing(
    app: ModuleType, aws_world: AwsWorld, phone: Phone
) -> None:
    # One deployment for every refused caller (a moto account costs about a second to build).
    for what, path, token_for, status in REFUSALS:
        token = token_for(phone)
        body = json.dumps({"reason": "let me in"})
        via_api = handler_answer(app, http_api_event(path, token, body, authorizer=_gateway_jwt(token)))
        via_url = handler_answer(app, function_url_event(path, token, body))

        assert via_api[0] == status, what
        assert via_api[1]["error"] == ("invalid_token" if status == 401 else "insufficient_scope"), what
        assert via_api[2]["WWW-Authenticate"].startswith("Bearer error="), what
        # Same status, same body, same headers whichever door the caller used.
        assert via_api == via_url, what
        assert halt_state(aws_world.control) is None, what


def test_the_gateways_claims_and_scopes_are_never_trusted(
    through_api: Callable[..., HandlerAnswer], aws_world: AwsWorld, phone: Phone
) -> None:
    granted = {"jwt": {"claims": {"sub": "auth0|mallory", "scope": KILL_SCOPE}, "scopes": [KILL_SCOPE]}}
    # The event claims a gateway-verified caller with the scope; the request itself carries no token.
    code, body, _ = through_api("/kill", None, {"reason": "trust me"}, authorizer=granted)
    assert (code, body["error"]) == (401, "invalid_token")
    # A genuine token without the scope, whatever scopes the event's authorizer section lists.
    code, body, _ = through_api("/kill", phone.operator_token(NO_SCOPE_CLIENT), {"reason": "x"}, authorizer=granted)
    assert (code, body["error"]) == (403, "insufficient_scope")
    assert halt_state(aws_world.control) is None


def test_a_bad_body_through_the_http_api_is_400_after_authentication(
    through_api: Callable[..., HandlerAnswer], aws_world: AwsWorld, phone: Phone
) -> None:
    token = phone.operator_token()
    code, body, _ = through_api("/kill", token, {"reason": "x", "extra": 1})
    assert code == 400
    assert "extra" in body["error_description"]
    assert through_api("/rearm", token, {})[0] == 400  # re-arming states a reason
    # An anonymous caller with a bad body hears only 401: the body is not read before authentication.
    assert through_api("/kill", None, "{not json")[0] == 401
    assert halt_state(aws_world.control) is None


def test_a_route_the_kill_switch_does_not_serve_is_404(through_api: Callable[..., HandlerAnswer], phone: Phone) -> None:
    assert through_api("/kill", phone.operator_token(), method="GET")[0] == 404
    assert through_api("/missions", phone.operator_token(), method="GET")[0] == 404
