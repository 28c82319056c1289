"""The HTTP API emulation's reading of SAM (routes, authorizer assignment, CORS) and its JWT authorizer rules, without
a stack: the JWKS comes from a scripted provider behind httpx.MockTransport and the clock is fixed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aegis_local.aws.http_api import (
    CorsConfiguration,
    HttpApi,
    HttpApiDefinitionError,
    JwksSource,
    JwtAuthorizer,
    TokenRejected,
    claim_text,
    token_scopes,
    verify_token,
)
from aegis_local.aws.template import TemplateError
from tests.support.provider_double import RsaKey

ISSUER = "https://tenant.example.test/"
AUDIENCE = "https://aegis.example.test/ops"
NOW = 1_750_000_000.0


def api(**auth: Any) -> HttpApi:
    authorizers = {
        "Jwt": {
            "IdentitySource": "$request.header.Authorization",
            "JwtConfiguration": {"issuer": ISSUER, "audience": [AUDIENCE]},
            "AuthorizationScopes": ["aegis:read"],
        }
    }
    return HttpApi.from_properties("Api", "abc123", {"Auth": {"Authorizers": authorizers, **auth}})


def event(method: str | None, path: str | None, **auth: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"ApiId": "abc123"}
    if method is not None:
        properties["Method"] = method
    if path is not None:
        properties["Path"] = path
    if auth:
        properties["Auth"] = auth
    return properties


# -- SAM's rules ------------------------------------------------------------------------------------------------


def test_routes_get_the_default_authorizer_and_its_scopes_unless_the_event_says_otherwise() -> None:
    ops = api(DefaultAuthorizer="Jwt")
    plain = ops.add_event_route("Fn", "Plain", "fn", event("get", "/a"))
    scoped = ops.add_event_route("Fn", "Scoped", "fn", event("POST", "/b", AuthorizationScopes=["aegis:undo"]))
    opened = ops.add_event_route("Fn", "Open", "fn", event("GET", "/c", Authorizer="NONE"))

    assert (plain.route_key, plain.authorizer, plain.scopes) == ("GET /a", "Jwt", ("aegis:read",))
    # The event's scopes replace the authorizer's.
    assert (scoped.authorizer, scoped.scopes) == ("Jwt", ("aegis:undo",))
    assert (opened.authorizer, opened.scopes) == (None, ())


def test_without_a_default_authorizer_a_route_without_auth_is_open_and_named_authorizers_apply() -> None:
    ops = api()
    assert ops.add_event_route("Fn", "Open", "fn", event("GET", "/a")).authorizer is None
    named = ops.add_event_route("Fn", "Named", "fn", event("GET", "/b", Authorizer="Jwt"))
    assert (named.authorizer, named.scopes) == ("Jwt", ("aegis:read",))


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        (event("GET", "/a", Authorizer="NONE"), "needs a DefaultAuthorizer"),
        (event("GET", "/a", AuthorizationScopes=["x"]), "no default"),
        (event("GET", "/a", Authorizer="Other"), "unknown authorizer"),
        (event("GET", None), "both Method and Path"),
        (event("FETCH", "/a"), "unknown method"),
        (event("GET", "a"), "must start with /"),
        (event("GET", "/a/{b+}/c"), "greedy variable must be the last"),
        (event("GET", "/a/x{b}"), "whole segment"),
        ({**event("GET", "/a"), "PayloadFormatVersion": "1.0"}, "payload format 1.0"),
    ],
)
def test_events_sam_would_reject_or_the_emulation_cannot_honour_are_named_errors(
    properties: dict[str, Any], message: str
) -> None:
    with pytest.raises(HttpApiDefinitionError, match=message) as raised:
        api().add_event_route("Fn", "Bad", "fn", properties)
    assert isinstance(raised.value, TemplateError)
    assert "Fn: event Bad" in str(raised.value)


def test_a_route_declared_twice_is_an_error() -> None:
    ops = api()
    ops.add_event_route("Fn", "One", "fn", event("GET", "/a"))
    with pytest.raises(HttpApiDefinitionError, match=r"GET /a is declared twice"):
        ops.add_event_route("Other", "Two", "other", event("get", "/a"))


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"DefinitionBody": {}}, "DefinitionBody"),
        ({"StageName": "prod"}, "only the \\$default stage"),
        ({"Auth": {"EnableIamAuthorizer": True}}, "IAM authorizer"),
        ({"Auth": {"Authorizers": {"L": {"FunctionArn": "arn"}}}}, "only JWT authorizers"),
        ({"Auth": {"Authorizers": {}, "DefaultAuthorizer": "Jwt"}}, "not one of its Authorizers"),
        (
            {
                "Auth": {
                    "Authorizers": {
                        "J": {
                            "IdentitySource": "$request.querystring.t",
                            "JwtConfiguration": {"issuer": ISSUER, "audience": ["a"]},
                        }
                    }
                }
            },
            "IdentitySource",
        ),
        (
            {
                "Auth": {
                    "Authorizers": {
                        "J": {
                            "IdentitySource": "$request.header.A",
                            "JwtConfiguration": {"issuer": ISSUER, "audience": []},
                        }
                    }
                }
            },
            "audience",
        ),
    ],
)
def test_apis_the_emulation_cannot_honour_are_named_errors(properties: dict[str, Any], message: str) -> None:
    with pytest.raises(HttpApiDefinitionError, match=message):
        HttpApi.from_properties("Api", "abc123", properties)


def test_the_most_specific_route_takes_the_request() -> None:
    ops = api()
    for name, (method, path) in enumerate(
        [
            ("ANY", "$default"),
            ("ANY", "/files/{path+}"),
            ("GET", "/files/{name}"),
            ("GET", "/files/readme"),
            ("ANY", "/files/readme"),
            ("GET", "/{kind}/readme"),
        ]
    ):
        ops.add_event_route("Fn", f"E{name}", "fn", event(method, path))

    def chosen(method: str, path: str) -> tuple[str, dict[str, str]]:
        selected = ops.select(method, path)
        assert selected is not None
        return selected[0].route_key, selected[1]

    assert chosen("GET", "/files/readme") == ("GET /files/readme", {})
    assert chosen("POST", "/files/readme") == ("ANY /files/readme", {})
    assert chosen("GET", "/files/notes") == ("GET /files/{name}", {"name": "notes"})
    assert chosen("GET", "/docs/readme") == ("GET /{kind}/readme", {"kind": "docs"})
    assert chosen("PUT", "/files/a%2Fb/c") == ("ANY /files/{path+}", {"path": "a/b/c"})
    assert chosen("GET", "/elsewhere") == ("$default", {})
    assert chosen("GET", "/files/") == ("$default", {})


def test_cors_configuration_forms() -> None:
    assert CorsConfiguration.from_property(None) is None
    assert CorsConfiguration.from_property(False) is None
    everything = CorsConfiguration.from_property(True)
    assert everything is not None
    assert everything.response_headers("https://any.example") == {"access-control-allow-origin": "*"}
    # An empty CommaDelimitedList parameter resolves to [""]: no origin is allowed.
    closed = CorsConfiguration.from_property({"AllowOrigins": [""], "AllowMethods": ["get"]})
    assert closed is not None
    assert closed.allow_origins == ()
    assert closed.preflight_headers("https://any.example") == {}
    full = CorsConfiguration.from_property(
        {
            "AllowOrigins": ["https://console.example"],
            "AllowHeaders": ["Authorization"],
            "AllowMethods": ["get", "POST"],
            "ExposeHeaders": ["x-request-id"],
            "AllowCredentials": True,
            "MaxAge": "600",
        }
    )
    assert full is not None
    assert full.preflight_headers("https://console.example") == {
        "access-control-allow-origin": "https://console.example",
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "x-request-id",
        "access-control-allow-methods": "GET,POST",
        "access-control-allow-headers": "authorization",
        "access-control-max-age": "600",
    }
    assert full.response_headers(None) == {}
    with pytest.raises(HttpApiDefinitionError):
        CorsConfiguration.from_property(3)


# -- the JWT authorizer -----------------------------------------------------------------------------------------


class Provider:
    """Discovery and JWKS of ISSUER, counting the JWKS reads."""

    def __init__(self) -> None:
        self.key = RsaKey.generate()
        self.jwks_reads = 0
        self.up = True

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            return httpx.Response(503)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}.well-known/jwks.json"})
        if request.url.path == "/.well-known/jwks.json":
            self.jwks_reads += 1
            return httpx.Response(200, json={"keys": [self.key.public_jwk()]})
        return httpx.Response(404)

    def sign(self, **claims: Any) -> str:
        good = {"iss": ISSUER, "aud": AUDIENCE, "iat": NOW - 5, "exp": NOW + 600, "scope": "aegis:read"}
        return self.key.sign({k: v for k, v in {**good, **claims}.items() if v is not None})


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def clock() -> list[float]:
    return [0.0]


@pytest.fixture
def keys(provider: Provider, clock: list[float]) -> JwksSource:
    return JwksSource(httpx.Client(transport=httpx.MockTransport(provider.handle)), clock=lambda: clock[0])


AUTHORIZER = JwtAuthorizer("Jwt", ISSUER, (AUDIENCE, "second-audience"), "authorization")


def test_a_good_token_is_accepted_bare_or_bearer_prefixed(provider: Provider, keys: JwksSource) -> None:
    token = provider.sign(sub="auth0|op")
    assert verify_token(AUTHORIZER, token, keys, NOW)["sub"] == "auth0|op"
    assert verify_token(AUTHORIZER, f"bearer {token}", keys, NOW)["sub"] == "auth0|op"
    # Any configured audience; client_id only counts without aud.
    assert verify_token(AUTHORIZER, provider.sign(aud=["other", "second-audience"]), keys, NOW)
    assert verify_token(AUTHORIZER, provider.sign(aud=None, client_id="second-audience"), keys, NOW)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://tenant.example.test"}, "invalid issuer"),
        ({"aud": "https://elsewhere"}, "valid audience"),
        ({"aud": "https://elsewhere", "client_id": AUDIENCE}, "valid audience"),
        ({"exp": NOW}, "expired"),
        ({"exp": None}, "expired"),
        ({"nbf": NOW + 1}, "not valid yet"),
        ({"iat": NOW + 1}, "issued in the future"),
        ({"exp": "tomorrow"}, "not a number"),
    ],
)
def test_each_claim_rule_refuses_with_its_reason(
    provider: Provider, keys: JwksSource, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(TokenRejected, match=reason):
        verify_token(AUTHORIZER, provider.sign(**claims), keys, NOW)


def test_tokens_not_signed_by_a_published_rsa_key_are_refused(provider: Provider, keys: JwksSource) -> None:
    with pytest.raises(TokenRejected, match="missing"):
        verify_token(AUTHORIZER, "  ", keys, NOW)
    with pytest.raises(TokenRejected, match="malformed"):
        verify_token(AUTHORIZER, "a.b", keys, NOW)
    stranger = RsaKey.generate()
    with pytest.raises(TokenRejected, match="signing key not found"):
        verify_token(AUTHORIZER, stranger.sign({"iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60}), keys, NOW)
    impostor = RsaKey(provider.key.kid, stranger.private_key)
    with pytest.raises(TokenRejected, match="signature is invalid"):
        verify_token(AUTHORIZER, impostor.sign({"iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60}), keys, NOW)
    hs256 = provider.sign().split(".")
    header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}
    with pytest.raises(TokenRejected, match="algorithm 'HS256'"):
        verify_token(AUTHORIZER, ".".join([header, hs256[1], hs256[2]]), keys, NOW)


def test_the_jwks_is_cached_and_reread_for_a_new_kid_at_most_every_few_seconds(
    provider: Provider, keys: JwksSource, clock: list[float]
) -> None:
    for _ in range(3):
        verify_token(AUTHORIZER, provider.sign(), keys, NOW)
    assert provider.jwks_reads == 1
    provider.key = RsaKey.generate()  # the provider rotates
    rotated = provider.sign()
    with pytest.raises(TokenRejected, match="signing key not found"):
        verify_token(AUTHORIZER, rotated, keys, NOW)  # too soon after the last read
    clock[0] += 10
    assert verify_token(AUTHORIZER, rotated, keys, NOW)
    assert provider.jwks_reads == 2
    provider.up = False
    clock[0] += 3 * 60 * 60
    with pytest.raises(TokenRejected, match="unable to retrieve"):
        verify_token(AUTHORIZER, rotated, keys, NOW)


def test_scopes_come_from_scope_and_scp_never_permissions() -> None:
    assert token_scopes({"scope": "a b", "scp": ["b", "c"], "permissions": ["d"]}) == ["a", "b", "c"]
    assert token_scopes({"scp": "x y"}) == ["x", "y"]
    assert token_scopes({"permissions": ["d"]}) == []


def test_claims_reach_the_function_as_strings() -> None:
    assert claim_text(["a", "b"]) == "[a b]"
    assert claim_text(1_750_000_000) == "1750000000"
    assert claim_text(1.0) == "1"
    assert claim_text(True) == "true"
    assert claim_text({"b": 1, "a": "x"}) == "map[a:x b:1]"
