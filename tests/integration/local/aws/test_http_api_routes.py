"""The meta-test of the operators' HTTP API: on the local stack, EVERY `HttpApi` route template.yaml declares refuses
a request without a token, with an expired, wrong-audience or wrong-issuer token (401), and with a valid token that
lacks the route's scope (403); with its scope, the request reaches the route's function. No route is open.

The routes are read from template.yaml, never listed here, so a route added later is walked too. Valid tokens come
from the Auth0 emulator's token endpoint (a client granted every ops API scope, asking for the scopes each check
needs); the bad ones are signed with the tenant's own key so that exactly the one claim under test is wrong.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import pytest

from aegis_local.auth0 import (
    DEFAULT_API_AUDIENCE,
    DEFAULT_OPS_API_AUDIENCE,
    OPS_API_SCOPES,
    EmulatorConfig,
)
from aegis_local.aws.http_api import HttpRoute
from aegis_local.aws.stack import LocalStack
from aegis_local.aws.template import load_template
from tests.support.http_api_probe import (
    TIMEOUT,
    assert_unauthorized,
    probe_token,
    tenant_signed_token,
    with_probe_client,
)
from tests.support.stack import TEMPLATE_PATH

PROBE_CLIENT_ID = "aegis-route-probe"


@dataclass(frozen=True)
class DeclaredRoute:
    function_id: str
    event_name: str
    method: str
    path: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def concrete_path(self) -> str:
        """The path with a value in each variable (a greedy one gets two segments)."""
        path = re.sub(r"\{[^}/]+\+\}", "probe/rest", self.path)
        return re.sub(r"\{[^}/]+\}", "probe-value", path)


@cache
def declared_routes() -> tuple[DeclaredRoute, ...]:
    """Every `Type: HttpApi` event of template.yaml."""
    found: list[DeclaredRoute] = []
    for function_id, resource in load_template(TEMPLATE_PATH)["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") == "HttpApi":
                properties = event.get("Properties") or {}
                found.append(
                    DeclaredRoute(
                        function_id, event_name, str(properties.get("Method")).upper(), str(properties.get("Path"))
                    )
                )
    return tuple(found)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    config = with_probe_client(
        EmulatorConfig.default(),
        PROBE_CLIENT_ID,
        DEFAULT_OPS_API_AUDIENCE,
        OPS_API_SCOPES,
        name="HTTP API route probe",
    )
    with LocalStack(emulator_config=config) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(stack: LocalStack) -> Callable[..., str]:
    """`tokens(*scopes)`: a probe token for the stack's OpsApiAudience carrying exactly `scopes` (cached)."""
    issued: dict[tuple[str, ...], str] = {}

    def token(*scopes: str) -> str:
        key = tuple(sorted(scopes))
        if key not in issued:
            issued[key] = probe_token(stack, PROBE_CLIENT_ID, stack.parameters["OpsApiAudience"], key)
        return issued[key]

    return token


def tenant_signed(stack: LocalStack, **claims: Any) -> str:
    """A token with every ops scope, signed with the tenant's own key, valid but for `claims`."""
    audience = stack.parameters["OpsApiAudience"]
    return tenant_signed_token(stack, PROBE_CLIENT_ID, audience, " ".join(OPS_API_SCOPES), **claims)


def served(stack: LocalStack, declared: DeclaredRoute) -> tuple[str, HttpRoute]:
    """The logical id of the HttpApi serving `declared` and the route as the gateway serves it."""
    for logical_id, api in stack.http_apis().items():
        for route in api.routes:
            if route.function_id == declared.function_id and route.route_key == declared.route_key:
                return logical_id, route
    raise AssertionError(f"{declared.function_id}.{declared.event_name} ({declared.route_key}) is not served")


def send(stack: LocalStack, declared: DeclaredRoute, authorization: str | None) -> httpx.Response:
    api_id, _ = served(stack, declared)
    headers = {"Authorization": authorization} if authorization is not None else {}
    url = stack.http_api_url(api_id) + declared.concrete_path()
    return httpx.request(declared.method, url, headers=headers, json={}, timeout=TIMEOUT)


def test_the_template_declares_the_operators_routes_and_none_is_open(stack: LocalStack) -> None:
    routes = declared_routes()
    assert {"GET /me", "POST /kill", "POST /rearm", "GET /missions"} <= {route.route_key for route in routes}
    issuer = stack.parameters["Auth0Issuer"]
    for declared in routes:
        api_id, route = served(stack, declared)
        assert route.authorizer is not None, f"{declared.route_key} is open"
        authorizer = stack.http_apis()[api_id].authorizers[route.authorizer]
        assert (authorizer.issuer, authorizer.audiences) == (issuer, (stack.parameters["OpsApiAudience"],))
        assert route.scopes or declared.route_key == "GET /me", f"{declared.route_key} has no scope"
        assert set(route.scopes) <= set(OPS_API_SCOPES), route.scopes
    served_count = sum(len(api.routes) for api in stack.http_apis().values())
    assert served_count == len(routes), "a served route is not declared by a function event"


class Recorder:
    """Stands in for a route's function: records each event that reaches it and answers 200 "reached"."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": "reached"}


@contextmanager
def recorded(stack: LocalStack, declared: DeclaredRoute) -> Iterator[Recorder]:
    """The route's function replaced by a Recorder: the functions re-check tokens themselves (defence in depth), so
    only an untouched function proves that the gateway, not the function, refused a request."""
    recorder = Recorder()
    with stack.lambdas.override(declared.function_id, recorder):
        yield recorder


@pytest.mark.parametrize("declared", declared_routes(), ids=lambda route: route.route_key)
def test_every_route_refuses_a_missing_expired_foreign_audience_or_foreign_issuer_token(
    stack: LocalStack, declared: DeclaredRoute
) -> None:
    with recorded(stack, declared) as function:
        assert_unauthorized(send(stack, declared, None), "the token is missing")
        expired = tenant_signed(stack, exp=int(time.time()) - 1)
        assert_unauthorized(send(stack, declared, f"Bearer {expired}"), "expired")
        foreign_audience = tenant_signed(stack, aud=DEFAULT_API_AUDIENCE)
        assert_unauthorized(send(stack, declared, f"Bearer {foreign_audience}"), "valid audience")
        foreign_issuer = tenant_signed(stack, iss="https://elsewhere.example/")
        assert_unauthorized(send(stack, declared, f"Bearer {foreign_issuer}"), "invalid issuer")
    assert function.events == []


@pytest.mark.parametrize("declared", declared_routes(), ids=lambda route: route.route_key)
def test_every_route_needs_its_scope_and_with_it_reaches_its_function(
    stack: LocalStack, tokens: Callable[..., str], declared: DeclaredRoute
) -> None:
    _, route = served(stack, declared)
    others = [scope for scope in OPS_API_SCOPES if scope not in route.scopes]
    # With its scope (an unscoped route: any valid token, here one with scopes that are not its own).
    granted = route.scopes[:1] or tuple(others[:1])
    with recorded(stack, declared) as function:
        if route.scopes:
            refused = send(stack, declared, f"Bearer {tokens(*others)}")
            assert refused.status_code == 403, refused.text
            assert refused.json() == {"message": "Forbidden"}
            assert function.events == []
        answer = send(stack, declared, f"Bearer {tokens(*granted)}")
    assert (answer.status_code, answer.text) == (200, "reached")
    assert [event["routeKey"] for event in function.events] == [declared.route_key]
    jwt_context = function.events[0]["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["claims"]["sub"] == f"{PROBE_CLIENT_ID}@clients"
    assert jwt_context["scopes"] == (list(granted) if route.scopes else None)
