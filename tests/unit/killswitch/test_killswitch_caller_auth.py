"""The kill switch's HTTP callers against the emulated tenant: its two scopes, and every forged or foreign token
refused. (aegis_jwt.callers' own rules, on a scripted provider, are tests/unit/auth/test_jwt_callers.py.)"""

from __future__ import annotations

import pytest

from aegis_jwt import discovery
from aegis_jwt.callers import CallerVerifier
from aegis_jwt.errors import Forbidden, Unauthenticated
from aegis_killswitch.scopes import KILL_SCOPE, REARM_SCOPE
from aegis_local.auth0 import DEFAULT_API_AUDIENCE, OPS_API_SCOPES, Auth0Emulator
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
    discovery.clear_caches()
    return CallerVerifier(emulator.issuer, OPS_API_AUDIENCE)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_the_kill_switch_scopes_are_scopes_of_the_ops_api() -> None:
    # The emulated tenant declares the ops API's scopes as the deployment's Auth0 API must: a scope the kill switch
    # required but the API did not offer could never be granted.
    assert {KILL_SCOPE, REARM_SCOPE} <= set(OPS_API_SCOPES)
    assert KILL_SCOPE != REARM_SCOPE


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


def test_an_unreachable_provider_refuses_everyone(emulator: Auth0Emulator, phone: Phone) -> None:
    discovery.clear_caches()
    token = phone.operator_token()
    emulator.set_down(True)
    try:
        with pytest.raises(Unauthenticated):
            CallerVerifier(emulator.issuer, OPS_API_AUDIENCE).authorize(bearer(token), KILL_SCOPE)
    finally:
        emulator.set_down(False)
