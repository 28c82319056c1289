"""The meta-test: every HttpApi route of OpsFunction in template.yaml, as the function itself answers it (whatever
the gateway would have checked first): 401 without a token and for an expired, wrong-audience, wrong-issuer or
foreign-key token; 403 for a valid token lacking the route's scope; any valid token on a route without a scope
(GET /me). A route added to the template is walked here without anyone listing it, and it must also have a scope,
or be one of the routes that are meant to take any valid token."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.support.provider_double import RsaKey
from tests.support.stack import build_stack
from tests.unit.ops.world import OpsWorld

# Routes that take any valid token for the API, and no more.
ANY_VALID_TOKEN = {("GET", "/me")}
# Path parameters, filled with values of the right form so that only the token decides the answer.
PARAMETER_VALUES = {"mission_id": "m-0123456789abcdef0123", "change_id": "chg-0123456789abcdef0123"}
ALL_SCOPES = ("aegis:read", "aegis:audit", "aegis:scan", "aegis:undo", "aegis:killswitch", "aegis:rearm")


def template_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, scopes) of every HttpApi event of OpsFunction."""
    events = build_stack().properties("OpsFunction")["Events"]
    routes = []
    for event in events.values():
        if event["Type"] != "HttpApi":
            continue
        properties = event["Properties"]
        scopes = tuple((properties.get("Auth") or {}).get("AuthorizationScopes") or ())
        routes.append((properties["Method"].upper(), properties["Path"], scopes))
    return sorted(routes)


ROUTES = template_routes()


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMETER_VALUES[m.group(1)], path)


def test_the_template_has_the_routes_of_the_contract_and_each_has_a_scope_or_is_meant_to_have_none() -> None:
    assert {(method, path) for method, path, _ in ROUTES} >= {
        ("GET", "/missions"),
        ("GET", "/missions/{mission_id}"),
        ("GET", "/missions/{mission_id}/report.html"),
        ("GET", "/findings"),
        ("GET", "/approvals/pending"),
        ("GET", "/audit"),
        ("POST", "/scans"),
        ("POST", "/changes/{change_id}/undo"),
        ("GET", "/me"),
    }
    for method, path, scopes in ROUTES:
        assert bool(scopes) != ((method, path) in ANY_VALID_TOKEN), (method, path)
        assert set(scopes) <= set(ALL_SCOPES)


def bad_tokens(world: OpsWorld) -> dict[str, str | None]:
    now = int(time.time())
    issuer = world.issuer
    return {
        "no token": None,
        "not a JWT": "not-a-token",
        "expired": issuer.token(iat=now - 600, exp=now - 60),
        "wrong audience": issuer.token(aud="https://another.example.test/api"),
        "wrong issuer": issuer.token(iss="https://another-tenant.example.test/"),
        "another key": issuer.token(key=RsaKey.generate(kid=issuer.key.kid)),
        "not yet valid": issuer.token(nbf=now + 600),
    }


@pytest.mark.parametrize(("method", "path", "scopes"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_answers_401_to_any_token_that_does_not_verify(
    world: OpsWorld, method: str, path: str, scopes: tuple[str, ...]
) -> None:
    for why, token in bad_tokens(world).items():
        answer = world.call(method, concrete(path), token=token, body={"dry_run": True} if method == "POST" else None)
        assert answer.status == 401, f"{method} {path} with {why}: {answer.status} {answer.body}"
        assert answer.json() == {"message": "Unauthorized"}
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert world.put_events == []


@pytest.mark.parametrize(("method", "path", "scopes"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_answers_403_to_a_valid_token_lacking_its_scope(
    world: OpsWorld, method: str, path: str, scopes: tuple[str, ...]
) -> None:
    body: Any = {"dry_run": True} if method == "POST" else None
    others = " ".join(scope for scope in ALL_SCOPES if scope not in scopes)
    answer = world.call(method, concrete(path), token=world.issuer.token(scope=others), body=body)
    if not scopes:
        # Any valid token, even one without any of the API's scopes.
        assert answer.status == 200, answer.body
        assert world.call(method, concrete(path), token=world.issuer.token(scope=None)).status == 200
        return
    assert answer.status == 403, f"{method} {path}: {answer.status} {answer.body}"
    assert answer.json() == {"message": "Forbidden"}
    assert world.put_events == []
    # The route's own scope lets the same caller past the token check (what it answers then depends on the data).
    allowed = world.call(method, concrete(path), token=world.issuer.token(scope=" ".join(scopes)), body=body)
    assert allowed.status not in (401, 403), f"{method} {path}: {allowed.status} {allowed.body}"
