"""The Token Vault client (aegis_auth.token_vault) against the emulated tenant on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jose import jwt
from pydantic import SecretStr

from aegis_auth.oidc import ClientAuthentication, OidcClient, clear_caches
from aegis_auth.token_vault import (
    FEDERATED_CONNECTION_TOKEN_TYPE,
    NoConnectedAccount,
    TokenExchangeFailed,
    TokenExchangeUnavailable,
    exchange_for_connection_token,
)
from aegis_jwt.errors import ClientConfigurationError
from aegis_local.auth0 import (
    DEFAULT_APPROVER_SUB,
    DEFAULT_CONNECTION,
    DEFAULT_EXECUTOR_CLIENT_ID,
    DEFAULT_PROVIDER_AUDIENCE,
    DEFAULT_SECOND_USER_SUB,
    Auth0Emulator,
)
from tests.support.changes import one_of_each_kind
from tests.support.executor_world import ShiftableClock, ciba_token_response

CHANGE = one_of_each_kind()[0]


@pytest.fixture
def client(emulator: Auth0Emulator, emulator_http: httpx.Client) -> Iterator[OidcClient]:
    clear_caches()
    secret = SecretStr(emulator.client_secret(DEFAULT_EXECUTOR_CLIENT_ID))
    auth = ClientAuthentication(DEFAULT_EXECUTOR_CLIENT_ID, "client_secret_post", lambda: secret)
    yield OidcClient(emulator.issuer, auth, http=emulator_http)
    clear_caches()


@pytest.fixture
def approve(emulator: Auth0Emulator, emulator_http: httpx.Client, emulator_clock: ShiftableClock) -> Any:
    return lambda sub: ciba_token_response(emulator, emulator_http, emulator_clock, CHANGE, sub)


@pytest.fixture
def approval_tokens(approve: Any) -> dict[str, Any]:
    return approve(DEFAULT_APPROVER_SUB)  # type: ignore[no-any-return]


def _provider_claims(emulator: Auth0Emulator, http: httpx.Client, token: str) -> dict[str, Any]:
    issuer = emulator.provider_issuer(DEFAULT_CONNECTION)
    jwks = http.get(f"{issuer.rstrip('/')}/.well-known/jwks.json").json()
    key = next(k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"])
    return jwt.decode(token, key, algorithms=["RS256"], audience=DEFAULT_PROVIDER_AUDIENCE, issuer=issuer)  # type: ignore[no-any-return]


def test_the_approvers_access_token_is_exchanged_for_a_provider_token_for_sts(
    client: OidcClient,
    approval_tokens: dict[str, Any],
    emulator: Auth0Emulator,
    emulator_http: httpx.Client,
) -> None:
    # The access token is the only subject the executor ever holds: approvals carry no refresh token.
    assert "refresh_token" not in approval_tokens
    token = exchange_for_connection_token(
        client, subject_token=SecretStr(approval_tokens["access_token"]), connection=DEFAULT_CONNECTION
    )
    assert token.issued_token_type == FEDERATED_CONNECTION_TOKEN_TYPE
    assert token.expires_in is not None
    assert token.expires_in > 0
    claims = _provider_claims(emulator, emulator_http, token.access_token.get_secret_value())
    assert claims["sub"] == DEFAULT_APPROVER_SUB
    assert token.access_token.get_secret_value() not in repr(token)


def test_a_user_without_a_connected_account_is_named(client: OidcClient, approve: Any) -> None:
    tokens = approve(DEFAULT_SECOND_USER_SUB)
    with pytest.raises(NoConnectedAccount) as refused:
        exchange_for_connection_token(client, subject_token=tokens["access_token"], connection=DEFAULT_CONNECTION)
    assert refused.value.status_code == 401
    assert refused.value.error == "federated_connection_refresh_token_not_found"


def test_an_unknown_connection_is_no_connected_account(client: OidcClient, approval_tokens: dict[str, Any]) -> None:
    with pytest.raises(NoConnectedAccount):
        exchange_for_connection_token(client, subject_token=approval_tokens["access_token"], connection="github")


def test_a_token_the_provider_did_not_issue_is_refused_with_its_error(client: OidcClient) -> None:
    with pytest.raises(TokenExchangeFailed) as refused:
        exchange_for_connection_token(client, subject_token="not-a-token", connection=DEFAULT_CONNECTION)
    assert not isinstance(refused.value, NoConnectedAccount | TokenExchangeUnavailable)
    assert refused.value.status_code == 401
    assert refused.value.error == "invalid_grant"
    assert "not-a-token" not in str(refused.value)


def test_a_provider_outage_is_retryable_and_says_so(
    client: OidcClient, approval_tokens: dict[str, Any], emulator: Auth0Emulator
) -> None:
    client.metadata  # noqa: B018 -- discovery first, so the outage hits the exchange itself
    emulator.fail_next(1, 503)
    with pytest.raises(TokenExchangeUnavailable):
        exchange_for_connection_token(
            client, subject_token=approval_tokens["access_token"], connection=DEFAULT_CONNECTION
        )


def test_bad_input_gets_named_errors_before_any_request(client: OidcClient) -> None:
    with pytest.raises(ClientConfigurationError):
        exchange_for_connection_token(client, subject_token="x", connection="")
    with pytest.raises(TokenExchangeFailed, match="no subject token"):
        exchange_for_connection_token(client, subject_token=SecretStr(""), connection=DEFAULT_CONNECTION)
