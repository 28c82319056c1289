from __future__ import annotations

import pytest

from aegis_auth import oidc
from aegis_killswitch.caller_auth import (
    KILL_SCOPE,
    REARM_SCOPE,
    CallerVerifier,
    bearer_token,
    granted_scopes,
)
from aegis_killswitch.errors import Forbidden, Unauthenticated
from aegis_local.auth0 import DEFAULT_API_AUDIENCE, Auth0Emulator
from tests.support.killswitch_world import (
    NO_SCOPE_CLIENT,
    OPERATOR_CLIENT,
    OPS_API_AUDIENCE,
    OTHER_API_CLIENT,
    TRIGGER_ONLY_CLIENT,
    Phone,
)


@pytest.fixture
def verifier(emulator: Auth0Emulator) -> CallerVerifier:
    oidc.clear_caches()
    return CallerVerifier(emulator.issuer, OPS_API_AUDIENCE)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_an_operator_token_with_the_scope_is_accepted(verifier: CallerVerifier, phone: Phone) -> None:
    caller = verifier.authorize(bearer(phone.operator_token()), KILL_SCOPE)
    assert caller.sub == f"{OPERATOR_CLIENT}@clients"
    assert {KILL_SCOPE, REARM_SCOPE} <= caller.scopes


def test_the_scope_of_the_operation_is_required(verifier: CallerVerifier, phone: Phone) -> None:
    trigger_only = phone.operator_token(TRIGGER_ONLY_CLIENT)
    assert verifier.authorize(bearer(trigger_only), KILL_SCOPE).sub == f"{TRIGGER_ONLY_CLIENT}@clients"
    with pytest.raises(Forbidden, match=REARM_SCOPE):
        verifier.authorize(bearer(trigger_only), REARM_SCOPE)
    with pytest.raises(Forbidden):
        verifier.authorize(bearer(phone.operator_token(NO_SCOPE_CLIENT)), KILL_SCOPE)


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        pytest.param(
            lambda phone: phone.operator_token(OTHER_API_CLIENT, DEFAULT_API_AUDIENCE), "audience", id="wrong-audience"
        ),
        pytest.param(lambda phone: phone.signed_by_tenant(exp=1_000_000, iat=999_000), "expired", id="expired"),
        pytest.param(lambda phone: phone.signed_by_tenant(iss="https://evil.example/"), "issuer", id="wrong-issuer"),
        pytest.param(lambda phone: phone.alg_none_token(), "algorithm", id="alg-none"),
        pytest.param(lambda phone: phone.hs256_confusion_token(), "algorithm", id="hs256-confusion"),
        pytest.param(lambda phone: phone.foreign_key_token(reuse_tenant_kid=False), "kid", id="foreign-key"),
        pytest.param(
            lambda phone: phone.foreign_key_token(reuse_tenant_kid=True), "Signature", id="foreign-key-tenant-kid"
        ),
        pytest.param(lambda phone: phone.operator_token()[:-4] + "AAAA", "Signature", id="bad-signature"),
        pytest.param(lambda phone: "not-a-jwt", "JWS", id="garbage"),
    ],
)
def test_forged_or_foreign_tokens_are_unauthenticated(
    verifier: CallerVerifier, phone: Phone, forge: object, why: str
) -> None:
    token = forge(phone)  # type: ignore[operator]
    with pytest.raises(Unauthenticated, match=why):
        verifier.authorize(bearer(token), KILL_SCOPE)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"authorization": ""},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer"},
        {"authorization": "Bearer a b"},
    ],
)
def test_missing_or_malformed_authorization_is_unauthenticated(headers: dict[str, str] | None) -> None:
    with pytest.raises(Unauthenticated):
        bearer_token(headers)


def test_bearer_scheme_and_header_name_are_case_insensitive() -> None:
    assert bearer_token({"Authorization": "bearer abc.def.ghi"}) == "abc.def.ghi"


def test_scopes_come_from_scope_and_rbac_permissions() -> None:
    assert granted_scopes({"scope": "openid aegis:killswitch", "permissions": ["aegis:rearm", 3]}) == {
        "openid",
        "aegis:killswitch",
        "aegis:rearm",
    }
    assert granted_scopes({"scope": 5}) == frozenset()


def test_an_unreachable_provider_refuses_everyone(emulator: Auth0Emulator, phone: Phone) -> None:
    oidc.clear_caches()
    token = phone.operator_token()
    emulator.set_down(True)
    try:
        with pytest.raises(Unauthenticated):
            CallerVerifier(emulator.issuer, OPS_API_AUDIENCE).authorize(bearer(token), KILL_SCOPE)
    finally:
        emulator.set_down(False)
