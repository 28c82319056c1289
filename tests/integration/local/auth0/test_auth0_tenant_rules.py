"""Tenant-wide settings exercised on the tenant object directly (no server needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis_local.auth0 import (
    CIBA_GRANT,
    REFRESH_TOKEN_GRANT,
    ClientConfig,
    EmulatorConfig,
    ManualClock,
    UserConfig,
)
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.tenant import Tenant

ISSUER = "http://127.0.0.1:1/"
CLIENT = ClientConfig(client_id="app", grant_types=(CIBA_GRANT, REFRESH_TOKEN_GRANT))
USERS = tuple(UserConfig(sub=f"auth0|u{n}") for n in range(4))


def make_tenant(**settings: Any) -> tuple[Tenant, ManualClock]:
    clock = ManualClock()
    return Tenant(EmulatorConfig(clients=(CLIENT,), users=USERS, **settings), ISSUER, clock), clock


def ask(tenant: Tenant, sub: str, scope: str = "openid") -> dict[str, Any]:
    login_hint = json.dumps({"format": "iss_sub", "iss": ISSUER, "sub": sub})
    return tenant.bc_authorize(CLIENT, {"scope": scope, "login_hint": login_hint, "binding_message": "Approve"})


def refresh_token_for(tenant: Tenant, clock: ManualClock, sub: str) -> str:
    started = ask(tenant, sub, "openid offline_access")
    tenant.decide(started["auth_req_id"], approve=True)
    clock.advance(started["interval"])
    return tenant.poll_ciba(CLIENT, {"auth_req_id": started["auth_req_id"]})["refresh_token"]


def refresh_allowed(tenant: Tenant, token: str) -> bool:
    try:
        tenant.refresh(CLIENT, {"refresh_token": token})
    except OAuthError:
        return False
    return True


def test_the_tenant_wide_rate_limit_applies_across_users() -> None:
    tenant, clock = make_tenant(ciba_requests_per_tenant_per_minute=3)
    for n in range(3):
        ask(tenant, f"auth0|u{n}")
    with pytest.raises(OAuthError) as refused:
        ask(tenant, "auth0|u3")
    assert (refused.value.status, refused.value.error) == (429, "too_many_requests")
    clock.advance(60)
    assert ask(tenant, "auth0|u3")["auth_req_id"]


def test_the_pending_cap_counts_only_live_requests() -> None:
    tenant, clock = make_tenant(ciba_max_pending_per_tenant=2)
    first = ask(tenant, "auth0|u0")
    ask(tenant, "auth0|u1")
    with pytest.raises(OAuthError, match="pending"):
        ask(tenant, "auth0|u2")
    tenant.decide(first["auth_req_id"], approve=False)
    assert ask(tenant, "auth0|u2")["auth_req_id"]
    clock.advance(300)
    assert ask(tenant, "auth0|u3")["auth_req_id"]


@pytest.mark.parametrize("deletes_grant", [False, True])
def test_revocation_deletes_grant_revokes_the_siblings(deletes_grant: bool) -> None:
    tenant, clock = make_tenant(revocation_deletes_grant=deletes_grant)
    first = refresh_token_for(tenant, clock, "auth0|u0")
    sibling = refresh_token_for(tenant, clock, "auth0|u0")
    other_user = refresh_token_for(tenant, clock, "auth0|u1")
    tenant.revoke(CLIENT, {"token": first})
    assert not refresh_allowed(tenant, first)
    assert refresh_allowed(tenant, sibling) is not deletes_grant
    assert refresh_allowed(tenant, other_user)
