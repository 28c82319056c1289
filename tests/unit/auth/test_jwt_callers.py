"""aegis_jwt.callers on a scripted provider: the bearer header, the scopes a token grants, who the caller is, and the
refusals (401 for any token that does not verify, 403 for a missing scope). The kill switch's use of it against the
emulated tenant is tests/unit/killswitch/test_killswitch_caller_auth.py."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aegis_jwt.callers import Caller, CallerVerifier, bearer_token, granted_scopes
from aegis_jwt.errors import AuthError, ClientConfigurationError, Forbidden, Unauthenticated
from tests.support.provider_double import AUDIENCE, ISSUER, ProviderDouble, RsaKey

SUB = "auth0|operator"
READ = "aegis:read"
UNDO = "aegis:undo"


@pytest.fixture
def provider() -> ProviderDouble:
    return ProviderDouble()


def verifier_for(provider: ProviderDouble, **kwargs: Any) -> CallerVerifier:
    return CallerVerifier(provider.issuer, AUDIENCE, http=provider.client(), **kwargs)


def token(provider: ProviderDouble, key: RsaKey | None = None, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": SUB, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    claims.update(overrides)
    return (key or provider.signing_key).sign({k: v for k, v in claims.items() if v is not None})


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


# --- the header and the scopes --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"authorization": ""},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer"},
        {"authorization": "Bearer a b"},
        {"x-authorization": "Bearer abc"},
    ],
)
def test_missing_or_malformed_authorization_is_unauthenticated(headers: dict[str, str] | None) -> None:
    with pytest.raises(Unauthenticated):
        bearer_token(headers)


def test_bearer_scheme_and_header_name_are_case_insensitive() -> None:
    assert bearer_token({"Authorization": "bearer abc.def.ghi"}) == "abc.def.ghi"
    assert bearer_token({"AUTHORIZATION": "  Bearer   abc.def.ghi  "}) == "abc.def.ghi"


def test_scopes_come_from_scope_scp_and_rbac_permissions() -> None:
    assert granted_scopes({"scope": "openid aegis:killswitch", "permissions": ["aegis:rearm", 3]}) == {
        "openid",
        "aegis:killswitch",
        "aegis:rearm",
    }
    # `scp` is what API Gateway's JWT authorizer also reads, as a string or a list.
    assert granted_scopes({"scp": "aegis:read aegis:audit"}) == {"aegis:read", "aegis:audit"}
    assert granted_scopes({"scp": ["aegis:scan", None]}) == {"aegis:scan"}
    assert granted_scopes({"scope": 5, "permissions": "aegis:undo", "scp": {"aegis:read": True}}) == {"aegis:undo"}
    assert granted_scopes({}) == frozenset()


# --- who is calling -------------------------------------------------------------------------------------------------
def test_a_verified_token_names_the_caller_its_scopes_and_its_claims(provider: ProviderDouble) -> None:
    caller = verifier_for(provider).authenticate(
        bearer(token(provider, scope=f"openid {READ}", email="operator@example.test"))
    )
    assert caller.sub == SUB
    assert caller.scopes == {"openid", READ}
    assert caller.claims["email"] == "operator@example.test"
    assert caller.claims["aud"] == AUDIENCE
    # A logged caller never carries its profile claims.
    assert "operator@example.test" not in repr(caller)


def test_authenticate_needs_no_scope_at_all(provider: ProviderDouble) -> None:
    caller = verifier_for(provider).authenticate(bearer(token(provider)))
    assert caller == Caller(sub=SUB, scopes=frozenset())


def test_authorize_needs_the_routes_scope(provider: ProviderDouble) -> None:
    verifier = verifier_for(provider)
    assert verifier.authorize(bearer(token(provider, scope=READ)), READ).sub == SUB
    with pytest.raises(Forbidden, match=UNDO) as refused:
        verifier.authorize(bearer(token(provider, scope=READ)), UNDO)
    assert refused.value.required_scope == UNDO
    # A scope that only prefixes the required one grants nothing.
    with pytest.raises(Forbidden):
        verifier.authorize(bearer(token(provider, scope="aegis:re")), READ)


def test_a_route_without_a_scope_uses_authenticate_not_an_empty_scope(provider: ProviderDouble) -> None:
    with pytest.raises(ValueError, match="authenticate"):
        verifier_for(provider).authorize(bearer(token(provider, scope=READ)), "")


# --- refusals -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        pytest.param({"aud": "https://another.example.test/api"}, "audience", id="wrong-audience"),
        pytest.param({"iss": "https://evil.example.test/"}, "issuer", id="wrong-issuer"),
        pytest.param({"iat": 1_000_000, "exp": 1_000_600}, "expired", id="expired"),
        pytest.param({"nbf": int(time.time()) + 3600}, "not yet valid", id="not-yet-valid"),
        pytest.param({"sub": None}, "sub", id="no-subject"),
    ],
)
def test_a_token_that_does_not_verify_is_unauthenticated_even_with_the_scope(
    provider: ProviderDouble, overrides: dict[str, Any], why: str
) -> None:
    forged = token(provider, scope=READ, **overrides)
    with pytest.raises(Unauthenticated, match=why):
        verifier_for(provider).authorize(bearer(forged), READ)


def test_a_token_signed_by_another_key_is_unauthenticated(provider: ProviderDouble) -> None:
    foreign = RsaKey.generate(kid=provider.signing_key.kid)
    with pytest.raises(Unauthenticated, match="Signature"):
        verifier_for(provider).authenticate(bearer(token(provider, key=foreign, scope=READ)))


def test_an_unreachable_provider_refuses_everyone(provider: ProviderDouble) -> None:
    provider.discovery_outages = 1
    with pytest.raises(Unauthenticated, match="discovery"):
        verifier_for(provider).authenticate(bearer(token(provider)))


def test_refusals_are_auth_errors_with_their_own_http_meaning() -> None:
    assert issubclass(Unauthenticated, AuthError)
    assert issubclass(Forbidden, AuthError)
    assert not issubclass(Forbidden, Unauthenticated)


# --- what an anonymous caller can make the verifier do ----------------------------------------------------------------
def test_unknown_kids_do_not_refetch_the_jwks_within_the_interval(provider: ProviderDouble) -> None:
    verifier = verifier_for(provider)
    assert verifier.authenticate(bearer(token(provider))).sub == SUB
    fetched = len(provider.requests_to("/.well-known/jwks.json"))
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="kid"):
            verifier.authenticate(bearer(token(provider, key=RsaKey.generate())))
    assert len(provider.requests_to("/.well-known/jwks.json")) == fetched


def test_without_a_refetch_interval_a_rotated_key_is_picked_up_at_once(provider: ProviderDouble) -> None:
    verifier = verifier_for(provider, min_jwks_refetch_seconds=0.0)
    assert verifier.authenticate(bearer(token(provider))).sub == SUB
    rotated = provider.rotate()
    assert verifier.authenticate(bearer(token(provider, key=rotated))).sub == SUB


# --- configuration --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("issuer", "audience", "what"), [("", AUDIENCE, "issuer"), (ISSUER, "", "audience")])
def test_an_empty_issuer_or_audience_is_a_configuration_error(issuer: str, audience: str, what: str) -> None:
    with pytest.raises(ClientConfigurationError, match=what):
        CallerVerifier(issuer, audience)
