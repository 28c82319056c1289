from __future__ import annotations

from typing import Any

import httpx
import pytest

from aegis_local.auth0 import (
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVER_SUB,
    DEFAULT_CONNECTION,
    DEFAULT_SECOND_USER_SUB,
    DEFAULT_UNDO_CONNECTION,
    FEDERATED_TOKEN_TYPE,
    REFRESH_TOKEN_GRANT,
    SUBJECT_TOKEN_TYPE_REFRESH,
    TOKEN_VAULT_GRANT,
    Auth0Emulator,
    GuardianError,
)
from tests.support.auth0_wire import READER_M2M_CLIENT, DisposableUsers, Wire


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def management_error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["statusCode"] == response.status_code
    assert body["message"]
    return response.status_code, body["errorCode"]


def problem(response: httpx.Response) -> int:
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) == {"type", "status", "title", "detail"}
    assert body["status"] == response.status_code
    return response.status_code


def refresh_works(wire: Wire, refresh_token: str) -> bool:
    return wire.token({"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": refresh_token}).status_code == 200


def vault_works(wire: Wire, refresh_token: str) -> bool:
    response = wire.token(
        {
            "grant_type": TOKEN_VAULT_GRANT,
            "subject_token_type": SUBJECT_TOKEN_TYPE_REFRESH,
            "subject_token": refresh_token,
            "requested_token_type": FEDERATED_TOKEN_TYPE,
            "connection": DEFAULT_CONNECTION,
        }
    )
    return response.status_code == 200


# --------------------------------------------------------------------------------------------- Management API


def test_revoke_access_kills_refresh_tokens_for_refresh_and_token_vault(
    wire: Wire, emulator: Auth0Emulator, disposable_users: DisposableUsers
) -> None:
    sub = disposable_users.take()
    first, second = wire.approved_tokens(sub)["refresh_token"], wire.approved_tokens(sub)["refresh_token"]
    bystander = wire.approved_tokens()["refresh_token"]
    assert refresh_works(wire, first)
    assert vault_works(wire, second)

    response = wire.http.post(f"api/v2/users/{sub}/revoke-access", json={}, headers=bearer(wire.management_token()))
    assert response.status_code == 202
    assert not refresh_works(wire, first)
    assert not vault_works(wire, second)
    assert refresh_works(wire, bystander)
    assert [e.action for e in emulator.management_events() if e.user_id == sub] == ["revoke_access"]


def test_revoke_access_can_preserve_refresh_tokens(wire: Wire, disposable_users: DisposableUsers) -> None:
    sub = disposable_users.take()
    refresh = wire.approved_tokens(sub)["refresh_token"]
    token = wire.management_token()
    response = wire.http.post(
        f"api/v2/users/{sub}/revoke-access", json={"preserve_refresh_tokens": True}, headers=bearer(token)
    )
    assert response.status_code == 202
    assert refresh_works(wire, refresh)
    bad = wire.http.post(f"api/v2/users/{sub}/revoke-access", json={"preserve": True}, headers=bearer(token))
    assert management_error(bad) == (400, "invalid_body")


def test_delete_user_refresh_tokens(wire: Wire, disposable_users: DisposableUsers) -> None:
    sub = disposable_users.take()
    refresh = wire.approved_tokens(sub)["refresh_token"]
    response = wire.http.delete(f"api/v2/users/{sub}/refresh-tokens", headers=bearer(wire.management_token()))
    assert response.status_code == 202
    assert not refresh_works(wire, refresh)
    assert not vault_works(wire, refresh)


def test_delete_sessions_and_grants_are_accepted_and_recorded(
    wire: Wire, emulator: Auth0Emulator, disposable_users: DisposableUsers
) -> None:
    sub = disposable_users.take()
    token = wire.management_token()
    assert wire.http.delete(f"api/v2/users/{sub}/sessions", headers=bearer(token)).status_code == 202
    assert wire.http.delete("api/v2/grants", params={"user_id": sub}, headers=bearer(token)).status_code == 204
    assert management_error(wire.http.delete("api/v2/grants", headers=bearer(token))) == (400, "invalid_query_string")
    assert [e.action for e in emulator.management_events() if e.user_id == sub] == ["delete_sessions", "delete_grants"]


def test_blocking_a_user_stops_new_requests_approvals_and_tokens(
    wire: Wire, emulator: Auth0Emulator, disposable_users: DisposableUsers
) -> None:
    sub = disposable_users.take()
    refresh = wire.approved_tokens(sub)["refresh_token"]
    waiting = wire.start_request(sub)

    response = wire.http.patch(f"api/v2/users/{sub}", json={"blocked": True}, headers=bearer(wire.management_token()))
    assert response.status_code == 200
    assert response.json()["blocked"] is True
    assert emulator.is_blocked(sub)

    blocked = wire.bc_authorize(sub)
    assert (blocked.status_code, blocked.json()["error"]) == (401, "unauthorized")
    with pytest.raises(GuardianError, match="blocked"):
        emulator.approve(waiting["auth_req_id"])
    assert wire.http.post(f"__guardian/requests/{waiting['auth_req_id']}/approve").status_code == 403
    assert wire.token({"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": refresh}).json()["error"] == "unauthorized"
    assert not vault_works(wire, refresh)


def test_a_request_approved_before_the_block_yields_no_tokens(wire: Wire, disposable_users: DisposableUsers) -> None:
    sub = disposable_users.take()
    started = wire.start_request(sub)
    wire.emulator.approve(started["auth_req_id"])
    wire.http.patch(f"api/v2/users/{sub}", json={"blocked": True}, headers=bearer(wire.management_token()))
    wire.clock.advance(5)
    response = wire.poll(started["auth_req_id"])
    assert (response.status_code, response.json()["error"]) == (400, "access_denied")


def test_management_api_authentication_and_scopes(wire: Wire, emulator: Auth0Emulator) -> None:
    path = f"api/v2/users/{DEFAULT_APPROVER_SUB}"
    reader = wire.management_token(READER_M2M_CLIENT)
    assert wire.http.get(path, headers=bearer(reader)).json()["user_id"] == DEFAULT_APPROVER_SUB

    assert management_error(wire.http.patch(path, json={"blocked": True}, headers=bearer(reader))) == (
        403,
        "insufficient_scope",
    )
    assert management_error(wire.http.post(f"{path}/revoke-access", json={}, headers=bearer(reader))) == (
        403,
        "insufficient_scope",
    )
    assert management_error(wire.http.delete(f"{path}/refresh-tokens", headers=bearer(reader))) == (
        403,
        "insufficient_scope",
    )
    assert management_error(wire.http.delete(f"{path}/sessions", headers=bearer(reader))) == (403, "insufficient_scope")
    assert management_error(
        wire.http.delete("api/v2/grants", params={"user_id": DEFAULT_APPROVER_SUB}, headers=bearer(reader))
    ) == (403, "insufficient_scope")
    # A narrowed token of the kill switch's client is held to its scope as well.
    narrow = wire.management_token(scope="delete:sessions")
    assert management_error(wire.http.post(f"{path}/revoke-access", json={}, headers=bearer(narrow))) == (
        403,
        "insufficient_scope",
    )
    assert not emulator.is_blocked(DEFAULT_APPROVER_SUB)

    assert management_error(wire.http.get(path)) == (401, "missing_authentication")
    assert management_error(wire.http.get(path, headers=bearer("garbage"))) == (401, "invalid_token")
    user_token = wire.approved_tokens(scope="openid")["access_token"]
    assert management_error(wire.http.get(path, headers=bearer(user_token))) == (401, "invalid_token")
    forged = wire.management_token()[:-4] + "AAAA"
    assert management_error(wire.http.get(path, headers=bearer(forged))) == (401, "invalid_token")

    full = wire.management_token()
    assert management_error(wire.http.get("api/v2/users/auth0|nobody", headers=bearer(full))) == (
        404,
        "inexistent_user",
    )
    assert management_error(wire.http.patch(path, json={"blocked": "yes"}, headers=bearer(full))) == (
        400,
        "invalid_body",
    )
    assert management_error(wire.http.patch(path, json={"app_metadata": {}}, headers=bearer(full))) == (
        400,
        "invalid_body",
    )


def test_management_connected_accounts_listing(wire: Wire) -> None:
    token = wire.management_token()
    listed = wire.http.get(f"api/v2/users/{DEFAULT_APPROVER_SUB}/connected-accounts", headers=bearer(token)).json()
    account, undo = listed["connected_accounts"]
    assert (account["connection"], undo["connection"]) == (DEFAULT_CONNECTION, DEFAULT_UNDO_CONNECTION)
    assert account["id"].startswith("cac_")
    assert account["access_type"] == "offline"
    none = wire.http.get(f"api/v2/users/{DEFAULT_SECOND_USER_SUB}/connected-accounts", headers=bearer(token)).json()
    assert none == {"connected_accounts": []}


def test_management_tokens_expire(wire: Wire) -> None:
    token = wire.management_token()
    wire.clock.advance(86400)
    assert management_error(wire.http.get(f"api/v2/users/{DEFAULT_APPROVER_SUB}", headers=bearer(token))) == (
        401,
        "invalid_token",
    )


# --------------------------------------------------------------------------------------------- My Account API


def my_account_token(wire: Wire, sub: str, scope: str) -> str:
    tokens = wire.approved_tokens(
        sub, scope=f"openid {scope}", audience=wire.emulator.my_account_audience, omit=("authorization_details",)
    )
    return tokens["access_token"]


def test_my_account_lists_and_deletes_connected_accounts(wire: Wire, disposable_users: DisposableUsers) -> None:
    sub = disposable_users.take()
    refresh = wire.approved_tokens(sub)["refresh_token"]
    assert vault_works(wire, refresh)
    token = my_account_token(wire, sub, "read:me:connected_accounts delete:me:connected_accounts")

    accounts = wire.http.get("me/v1/connected-accounts/accounts", headers=bearer(token)).json()["accounts"]
    (account,) = accounts
    assert account["connection"] == DEFAULT_CONNECTION
    filtered = wire.http.get(
        "me/v1/connected-accounts/accounts", params={"connection": "github"}, headers=bearer(token)
    )
    assert filtered.json() == {"accounts": []}
    connections = wire.http.get("me/v1/connected-accounts/connections", headers=bearer(token)).json()["connections"]
    assert DEFAULT_CONNECTION in {c["name"] for c in connections}

    deleted = wire.http.delete(f"me/v1/connected-accounts/accounts/{account['id']}", headers=bearer(token))
    assert deleted.status_code == 204
    assert wire.http.get("me/v1/connected-accounts/accounts", headers=bearer(token)).json() == {"accounts": []}
    assert not vault_works(wire, refresh)
    assert problem(wire.http.delete(f"me/v1/connected-accounts/accounts/{account['id']}", headers=bearer(token))) == 404


def test_my_account_errors(wire: Wire, disposable_users: DisposableUsers) -> None:
    sub = disposable_users.take()
    read_only = my_account_token(wire, sub, "read:me:connected_accounts")
    (account,) = wire.http.get("me/v1/connected-accounts/accounts", headers=bearer(read_only)).json()["accounts"]
    assert (
        problem(wire.http.delete(f"me/v1/connected-accounts/accounts/{account['id']}", headers=bearer(read_only)))
        == 403
    )
    assert problem(wire.http.get("me/v1/connected-accounts/accounts")) == 401
    api_token = wire.approved_tokens(sub, scope="openid")["access_token"]
    assert problem(wire.http.get("me/v1/connected-accounts/accounts", headers=bearer(api_token))) == 401
    # Another user's account id is not found through my token.
    other = my_account_token(wire, DEFAULT_APPROVER_SUB, "delete:me:connected_accounts")
    assert problem(wire.http.delete(f"me/v1/connected-accounts/accounts/{account['id']}", headers=bearer(other))) == 404


def test_connect_account_adds_a_token_vault_identity(wire: Wire, emulator: Auth0Emulator) -> None:
    refresh = wire.approved_tokens(DEFAULT_SECOND_USER_SUB)["refresh_token"]
    assert not vault_works(wire, refresh)
    account_id = emulator.connect_account(DEFAULT_SECOND_USER_SUB, DEFAULT_CONNECTION, ("sts:AssumeRole",))
    try:
        assert vault_works(wire, refresh)
    finally:
        token = my_account_token(wire, DEFAULT_SECOND_USER_SUB, "delete:me:connected_accounts")
        assert (
            wire.http.delete(f"me/v1/connected-accounts/accounts/{account_id}", headers=bearer(token)).status_code
            == 204
        )


# --------------------------------------------------------------------------------------------- control plane


def test_issued_secrets_hold_everything_the_tenant_handed_out(wire: Wire, emulator: Auth0Emulator) -> None:
    tokens = wire.approved_tokens()
    management = wire.management_token()
    provider = wire.token(
        {
            "grant_type": TOKEN_VAULT_GRANT,
            "subject_token_type": SUBJECT_TOKEN_TYPE_REFRESH,
            "subject_token": tokens["refresh_token"],
            "requested_token_type": FEDERATED_TOKEN_TYPE,
            "connection": DEFAULT_CONNECTION,
        }
    ).json()["access_token"]
    refreshed = wire.token({"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": tokens["refresh_token"]}).json()
    expected = {
        *(emulator.client_secret(c.client_id) for c in emulator.config.clients),
        tokens["access_token"],
        tokens["id_token"],
        tokens["refresh_token"],
        management,
        provider,
        refreshed["access_token"],
        refreshed["id_token"],
    }
    assert expected <= emulator.issued_secrets()
    over_http = set(wire.http.get("__emulator/issued-secrets").json()["secrets"])
    assert expected <= over_http


def test_down_answers_503_everywhere_but_the_control_plane(wire: Wire, emulator: Auth0Emulator) -> None:
    emulator.set_down(True)
    try:
        assert wire.http.get(".well-known/openid-configuration").status_code == 503
        assert wire.bc_authorize().status_code == 503
        assert wire.http.get(f"__guardian/users/{DEFAULT_APPROVER_SUB}/requests").status_code == 503
        assert wire.http.get("__emulator/issued-secrets").status_code == 200
    finally:
        emulator.set_down(False)
    assert wire.http.get(".well-known/openid-configuration").status_code == 200

    assert wire.http.post("__emulator/down", json={"down": True}).json() == {"down": True}
    try:
        assert wire.http.get(".well-known/jwks.json").status_code == 503
    finally:
        assert wire.http.post("__emulator/down", json={"down": False}).status_code == 200
    assert wire.http.get(".well-known/jwks.json").status_code == 200
    assert wire.http.post("__emulator/down", json={"down": "yes"}).status_code == 400


def test_fail_next_injects_server_errors_then_recovers(wire: Wire, emulator: Auth0Emulator) -> None:
    emulator.fail_next(2, status=502)
    statuses = [wire.http.get(".well-known/jwks.json").status_code for _ in range(3)]
    assert statuses == [502, 502, 200]

    emulator.fail_next(1)
    assert wire.http.get(f"__guardian/users/{DEFAULT_APPROVER_SUB}/requests").status_code == 200  # the phone is spared
    failed = wire.bc_authorize()
    assert failed.status_code == 500
    assert failed.json()["error"] == "server_error"
    assert wire.bc_authorize().status_code == 200

    assert wire.http.post("__emulator/fail-next", json={"count": 1, "status": 503}).status_code == 200
    assert wire.http.get(".well-known/jwks.json").status_code == 503
    assert wire.http.post("__emulator/fail-next", json={"count": 1, "status": 404}).status_code == 400
    with pytest.raises(ValueError, match="5xx"):
        emulator.fail_next(1, status=418)


def test_unknown_paths_answer_json_404(wire: Wire) -> None:
    response = wire.http.get("oauth/nothing")
    assert response.status_code == 404
    body: dict[str, Any] = response.json()
    assert body["error"] == "not_found"
    assert wire.http.get("oauth/token").status_code == 405


def test_userinfo_needs_a_token_for_userinfo(wire: Wire) -> None:
    assert wire.http.get("userinfo").status_code == 401
    management = wire.management_token()
    assert wire.http.get("userinfo", headers=bearer(management)).status_code == 401
    tokens = wire.approved_tokens(scope="openid email", audience=DEFAULT_API_AUDIENCE)
    assert wire.http.get("userinfo", headers=bearer(tokens["access_token"])).json()["email"] == "approver@aegis.local"
