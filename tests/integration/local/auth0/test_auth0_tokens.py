from __future__ import annotations

from typing import Any

import httpx
import pytest
from jose import jwt

from aegis_local.auth0 import (
    CLIENT_CREDENTIALS_GRANT,
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVAL_CLIENT_ID,
    DEFAULT_APPROVER_SUB,
    DEFAULT_CONNECTION,
    DEFAULT_EXECUTOR_CLIENT_ID,
    DEFAULT_M2M_CLIENT_ID,
    DEFAULT_PROVIDER_AUDIENCE,
    DEFAULT_SECOND_USER_SUB,
    DEFAULT_UNDO_CONNECTION,
    DEFAULT_UNDO_PROVIDER_AUDIENCE,
    FEDERATED_TOKEN_TYPE,
    KILLSWITCH_MANAGEMENT_SCOPES,
    REFRESH_TOKEN_GRANT,
    SUBJECT_TOKEN_TYPE_ACCESS,
    SUBJECT_TOKEN_TYPE_REFRESH,
    TOKEN_VAULT_GRANT,
    Auth0Emulator,
)
from tests.support.auth0_wire import (
    GITHUB_CONNECTION,
    OTHER_API,
    PROTOCOL_CLIENT,
    READER_M2M_CLIENT,
    SECOND_APP_CLIENT,
    UNGRANTED_M2M_CLIENT,
    DisposableUsers,
    Wire,
)


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    return response.status_code, body["error"]


def exchange(
    wire: Wire, token: str, subject_type: str = SUBJECT_TOKEN_TYPE_REFRESH, **overrides: str
) -> httpx.Response:
    data = {
        "grant_type": TOKEN_VAULT_GRANT,
        "subject_token_type": subject_type,
        "subject_token": token,
        "requested_token_type": FEDERATED_TOKEN_TYPE,
        "connection": DEFAULT_CONNECTION,
    }
    data.update(overrides)
    client_id = data.pop("client_id", PROTOCOL_CLIENT)
    return wire.token({k: v for k, v in data.items() if v}, client_id=client_id)


# --------------------------------------------------------------------------------------------- token endpoint


def test_token_endpoint_request_errors(wire: Wire) -> None:
    assert error_of(wire.token({})) == (400, "invalid_request")
    assert error_of(wire.token({"grant_type": "password"})) == (400, "unsupported_grant_type")
    text = wire.http.post(
        "oauth/token", content=b"grant_type=client_credentials", headers={"Content-Type": "text/plain"}
    )
    assert error_of(text) == (400, "invalid_request")
    repeated = wire.http.post(
        "oauth/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error_of(repeated) == (400, "invalid_request")
    assert repeated.headers["cache-control"] == "no-store"


# --------------------------------------------------------------------------------------------- client credentials


def test_client_credentials_gives_a_management_token_with_the_client_grant_scopes(
    wire: Wire, emulator: Auth0Emulator
) -> None:
    response = wire.token(
        {"grant_type": CLIENT_CREDENTIALS_GRANT, "audience": emulator.management_audience},
        client_id=DEFAULT_M2M_CLIENT_ID,
        method="basic",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == set(KILLSWITCH_MANAGEMENT_SCOPES)
    assert emulator.management_audience == f"{wire.issuer}api/v2/"
    claims = wire.verify(body["access_token"], audience=emulator.management_audience)
    assert claims["sub"] == f"{DEFAULT_M2M_CLIENT_ID}@clients"
    assert claims["gty"] == "client-credentials"
    assert claims["exp"] - claims["iat"] == body["expires_in"]


def test_client_credentials_accepts_json_and_a_narrower_scope(wire: Wire, emulator: Auth0Emulator) -> None:
    response = wire.http.post(
        "oauth/token",
        json={
            "grant_type": CLIENT_CREDENTIALS_GRANT,
            "client_id": DEFAULT_M2M_CLIENT_ID,
            "client_secret": emulator.client_secret(DEFAULT_M2M_CLIENT_ID),
            "audience": emulator.management_audience,
            "scope": "read:users",
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "read:users"


def test_client_credentials_refusals(wire: Wire, emulator: Auth0Emulator) -> None:
    management = emulator.management_audience

    def attempt(client_id: str, **data: str) -> tuple[int, str]:
        return error_of(wire.token({"grant_type": CLIENT_CREDENTIALS_GRANT, **data}, client_id=client_id))

    assert attempt(DEFAULT_M2M_CLIENT_ID, audience=management, scope="read:users delete:users") == (
        403,
        "access_denied",
    )
    assert attempt(DEFAULT_M2M_CLIENT_ID) == (403, "access_denied")  # no audience, no default audience
    assert attempt(DEFAULT_M2M_CLIENT_ID, audience="https://unknown.example/") == (403, "access_denied")
    assert attempt(DEFAULT_M2M_CLIENT_ID, audience=DEFAULT_API_AUDIENCE) == (403, "access_denied")  # no client grant
    assert attempt(UNGRANTED_M2M_CLIENT, audience=management) == (403, "access_denied")
    assert attempt(PROTOCOL_CLIENT, audience=management) == (403, "unauthorized_client")
    wrong = wire.http.post(
        "oauth/token",
        data={
            "grant_type": CLIENT_CREDENTIALS_GRANT,
            "client_id": DEFAULT_M2M_CLIENT_ID,
            "client_secret": "nope",
            "audience": management,
        },
    )
    assert error_of(wrong) == (401, "invalid_client")


def test_client_credentials_for_a_custom_api(wire: Wire) -> None:
    response = wire.token({"grant_type": CLIENT_CREDENTIALS_GRANT, "audience": OTHER_API}, client_id=READER_M2M_CLIENT)
    assert response.status_code == 200
    assert wire.verify(response.json()["access_token"], audience=OTHER_API)["scope"] == "charge"


# --------------------------------------------------------------------------------------------- refresh tokens


def test_refresh_tokens_give_new_access_tokens_until_revoked(wire: Wire, disposable_users: DisposableUsers) -> None:
    sub = disposable_users.take()
    tokens = wire.approved_tokens(sub)
    refreshed = wire.token({"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert "refresh_token" not in body  # rotation is off, as Token Vault requires
    claims = wire.verify(body["access_token"], audience=DEFAULT_API_AUDIENCE)
    assert claims["sub"] == sub
    assert claims["authorization_details"] == tokens["authorization_details"]

    other_client = wire.token(
        {"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": tokens["refresh_token"]}, client_id=SECOND_APP_CLIENT
    )
    assert error_of(other_client) == (403, "invalid_grant")

    revoked = wire.http.post(
        "oauth/revoke",
        data={
            "token": tokens["refresh_token"],
            "client_id": PROTOCOL_CLIENT,
            "client_secret": wire.emulator.client_secret(PROTOCOL_CLIENT),
        },
    )
    assert revoked.status_code == 200
    assert revoked.content == b""
    again = wire.token({"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": tokens["refresh_token"]})
    assert error_of(again) == (403, "invalid_grant")
    assert error_of(exchange(wire, tokens["refresh_token"])) == (401, "invalid_grant")


def test_revocation_errors(wire: Wire, disposable_users: DisposableUsers) -> None:
    tokens = wire.approved_tokens(disposable_users.take())

    def revoke(data: dict[str, str], client_id: str = PROTOCOL_CLIENT, method: str = "post") -> httpx.Response:
        fields, auth = wire.client_auth(client_id, method)
        return wire.http.post("oauth/revoke", data={**data, **fields}, auth=auth or httpx.USE_CLIENT_DEFAULT)

    assert error_of(revoke({})) == (400, "invalid_request")
    assert revoke({"token": "never-issued"}).status_code == 200  # RFC 7009
    assert error_of(revoke({"token": tokens["refresh_token"]}, client_id=SECOND_APP_CLIENT)) == (400, "invalid_request")
    bad = wire.http.post(
        "oauth/revoke",
        data={"token": tokens["refresh_token"], "client_id": PROTOCOL_CLIENT, "client_secret": "x"},
    )
    assert error_of(bad) == (401, "invalid_client")
    # Still usable: nothing above revoked it. Then revoke with Basic auth.
    assert wire.token({"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": tokens["refresh_token"]}).status_code == 200
    assert revoke({"token": tokens["refresh_token"]}, method="basic").status_code == 200
    assert wire.token({"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": tokens["refresh_token"]}).status_code == 403


# --------------------------------------------------------------------------------------------- Token Vault


def assert_provider_token(wire: Wire, emulator: Auth0Emulator, body: dict[str, Any], sub: str) -> None:
    assert body["issued_token_type"] == FEDERATED_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert set(body) == {"access_token", "scope", "expires_in", "issued_token_type", "token_type"}
    provider_issuer = emulator.provider_issuer(DEFAULT_CONNECTION)
    claims = wire.verify(body["access_token"], audience=DEFAULT_PROVIDER_AUDIENCE, issuer=provider_issuer)
    assert claims["sub"] == sub
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    # Signed by the provider's key, which the tenant's JWKS does not publish.
    tenant_kids = {k["kid"] for k in wire.http.get(".well-known/jwks.json").json()["keys"]}
    assert jwt.get_unverified_header(body["access_token"])["kid"] not in tenant_kids


def test_token_vault_exchanges_a_refresh_token_for_a_provider_token(wire: Wire, emulator: Auth0Emulator) -> None:
    tokens = wire.approved_tokens()
    response = exchange(wire, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert_provider_token(wire, emulator, response.json(), DEFAULT_APPROVER_SUB)
    assert response.json()["access_token"] in emulator.issued_secrets()


def test_token_vault_exchanges_an_access_token_for_a_provider_token(wire: Wire, emulator: Auth0Emulator) -> None:
    tokens = wire.approved_tokens(scope="openid")
    response = wire.http.post(
        "oauth/token",
        json={
            "grant_type": TOKEN_VAULT_GRANT,
            "subject_token_type": SUBJECT_TOKEN_TYPE_ACCESS,
            "subject_token": tokens["access_token"],
            "requested_token_type": FEDERATED_TOKEN_TYPE,
            "connection": DEFAULT_CONNECTION,
            "client_id": PROTOCOL_CLIENT,
            "client_secret": emulator.client_secret(PROTOCOL_CLIENT),
        },
    )
    assert response.status_code == 200, response.text
    assert_provider_token(wire, emulator, response.json(), DEFAULT_APPROVER_SUB)


def test_token_vault_refuses_users_without_a_connected_account(wire: Wire) -> None:
    observer = wire.approved_tokens(DEFAULT_SECOND_USER_SUB)
    assert error_of(exchange(wire, observer["refresh_token"])) == (401, "federated_connection_refresh_token_not_found")
    approver = wire.approved_tokens()
    assert error_of(exchange(wire, approver["refresh_token"], connection=GITHUB_CONNECTION)) == (
        401,
        "federated_connection_refresh_token_not_found",
    )
    assert error_of(exchange(wire, approver["refresh_token"], connection="no-such-connection")) == (
        401,
        "federated_connection_refresh_token_not_found",
    )
    assert error_of(exchange(wire, approver["refresh_token"], login_hint="someone-else")) == (
        401,
        "federated_connection_refresh_token_not_found",
    )


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


def test_token_vault_refuses_bad_subject_tokens(wire: Wire, emulator: Auth0Emulator) -> None:
    tokens = wire.approved_tokens(scope="openid offline_access")
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    management = wire.management_token()

    assert error_of(exchange(wire, "not-a-refresh-token")) == (401, "invalid_grant")
    assert error_of(exchange(wire, refresh, client_id=SECOND_APP_CLIENT)) == (401, "invalid_grant")
    assert error_of(exchange(wire, tampered(access), SUBJECT_TOKEN_TYPE_ACCESS)) == (401, "invalid_grant")
    assert error_of(exchange(wire, "a.b.c", SUBJECT_TOKEN_TYPE_ACCESS)) == (401, "invalid_grant")
    assert error_of(exchange(wire, management, SUBJECT_TOKEN_TYPE_ACCESS)) == (401, "invalid_grant")
    assert error_of(exchange(wire, refresh, SUBJECT_TOKEN_TYPE_ACCESS)) == (401, "invalid_grant")
    # The API's exchange client is the app client; another client may not exchange its tokens.
    assert error_of(exchange(wire, access, SUBJECT_TOKEN_TYPE_ACCESS, client_id=SECOND_APP_CLIENT)) == (
        403,
        "unauthorized_client",
    )
    assert exchange(wire, access, SUBJECT_TOKEN_TYPE_ACCESS).status_code == 200
    wire.clock.advance(86400)
    assert error_of(exchange(wire, access, SUBJECT_TOKEN_TYPE_ACCESS)) == (401, "invalid_grant")  # expired
    assert exchange(wire, refresh).status_code == 200  # the refresh token does not expire


@pytest.mark.parametrize(
    "overrides",
    [
        {"requested_token_type": "urn:ietf:params:oauth:token-type:access_token"},
        {"requested_token_type": ""},
        {"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"},
        {"subject_token_type": ""},
        {"connection": ""},
        {"subject_token": ""},
    ],
)
def test_token_vault_request_errors(wire: Wire, overrides: dict[str, str]) -> None:
    assert error_of(exchange(wire, "whatever", **overrides)) == (400, "invalid_request")


def test_a_client_without_the_token_vault_grant_cannot_exchange(wire: Wire, emulator: Auth0Emulator) -> None:
    response = exchange(wire, "whatever", client_id=DEFAULT_M2M_CLIENT_ID)
    assert error_of(response) == (403, "unauthorized_client")


# --------------------------------------------------------------------------------------------- the project's apps


def test_the_approval_application_runs_ciba_and_nothing_else(wire: Wire, emulator: Auth0Emulator) -> None:
    """With its secret, the approval function can ask and poll, but not exchange at Token Vault, refresh, or hold a
    refresh token even when it asks for offline_access."""
    tokens = wire.approved_tokens(client_id=DEFAULT_APPROVAL_CLIENT_ID, scope="openid offline_access")
    assert "refresh_token" not in tokens
    assert jwt.get_unverified_claims(tokens["access_token"])["azp"] == DEFAULT_APPROVAL_CLIENT_ID
    exchanged = exchange(wire, tokens["access_token"], SUBJECT_TOKEN_TYPE_ACCESS, client_id=DEFAULT_APPROVAL_CLIENT_ID)
    assert error_of(exchanged) == (403, "unauthorized_client")
    refreshed = wire.token({"grant_type": "refresh_token", "refresh_token": "x"}, client_id=DEFAULT_APPROVAL_CLIENT_ID)
    assert error_of(refreshed) == (403, "unauthorized_client")


def test_the_executor_application_exchanges_approval_tokens_and_cannot_ask_anyone(
    wire: Wire, emulator: Auth0Emulator
) -> None:
    """With its secret, the executor can turn an approver's access token into a provider token (it is the API's Custom
    API Client), but cannot send a CIBA request to an approver's phone."""
    tokens = wire.approved_tokens(client_id=DEFAULT_APPROVAL_CLIENT_ID, scope="openid")
    exchanged = exchange(wire, tokens["access_token"], SUBJECT_TOKEN_TYPE_ACCESS, client_id=DEFAULT_EXECUTOR_CLIENT_ID)
    assert exchanged.status_code == 200, exchanged.text
    assert_provider_token(wire, emulator, exchanged.json(), DEFAULT_APPROVER_SUB)
    asked = wire.bc_authorize(client_id=DEFAULT_EXECUTOR_CLIENT_ID)
    assert error_of(asked) == (403, "unauthorized_client")


def test_the_undo_connection_is_a_second_client_of_the_same_provider(wire: Wire, emulator: Auth0Emulator) -> None:
    tokens = wire.approved_tokens(client_id=DEFAULT_APPROVAL_CLIENT_ID, scope="openid")
    exchanged = exchange(
        wire,
        tokens["access_token"],
        SUBJECT_TOKEN_TYPE_ACCESS,
        client_id=DEFAULT_EXECUTOR_CLIENT_ID,
        connection=DEFAULT_UNDO_CONNECTION,
    )
    assert exchanged.status_code == 200, exchanged.text
    issuer = emulator.provider_issuer(DEFAULT_UNDO_CONNECTION)
    assert issuer == emulator.provider_issuer(DEFAULT_CONNECTION)
    claims = wire.verify(exchanged.json()["access_token"], audience=DEFAULT_UNDO_PROVIDER_AUDIENCE, issuer=issuer)
    assert claims["sub"] == DEFAULT_APPROVER_SUB
