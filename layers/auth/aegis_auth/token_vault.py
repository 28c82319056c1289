"""Token Vault: exchange the approver's token for the provider token of a connected account (RFC 8693 as Auth0
implements it for federated connections).

Auth0 answers with the connected provider's own token; for the AWS remediation connection that is an OIDC ID token
whose audience is STS, which the executor presents to `AssumeRoleWithWebIdentity`. The token is returned wrapped in
a SecretStr and nothing here logs, so it only ever exists in the caller's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from aegis_auth.oidc import OidcClient
from aegis_jwt.errors import AuthError, ClientConfigurationError, ProviderUnavailable

FEDERATED_CONNECTION_GRANT = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
FEDERATED_CONNECTION_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"
SUBJECT_TOKEN_TYPES = {
    "access_token": "urn:ietf:params:oauth:token-type:access_token",
    "refresh_token": "urn:ietf:params:oauth:token-type:refresh_token",
}
# Auth0 documents no error codes for this grant; these are the ones it is seen to answer (401) when the user has no
# connected account, or no stored tokens for it, on the connection.
NO_CONNECTED_ACCOUNT_ERRORS = frozenset(
    {
        "federated_connection_refresh_token_not_found",
        "federated_connection_access_token_not_found",
        "tokenset_not_found",
    }
)


class TokenExchangeFailed(AuthError):
    """The provider refused the exchange or answered something that is not a usable token."""

    def __init__(self, message: str, *, status_code: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error


class TokenExchangeUnavailable(TokenExchangeFailed):
    """The token endpoint could not be reached or answered 5xx; the exchange may be retried."""


class NoConnectedAccount(TokenExchangeFailed):
    """The subject has no connected account (or no stored tokens) on the requested connection."""


@dataclass(frozen=True)
class ConnectionToken:
    """The provider's token for the connected account. `access_token` is a secret: never log or persist it."""

    access_token: SecretStr
    expires_in: int | None
    scope: tuple[str, ...]
    issued_token_type: str


def exchange_for_connection_token(
    client: OidcClient,
    *,
    subject_token: SecretStr | str,
    connection: str,
    subject_token_type: Literal["access_token", "refresh_token"] = "access_token",  # noqa: S107 -- a type name
    login_hint: str | None = None,
) -> ConnectionToken:
    """Exchange `subject_token` (the approver's access or refresh token) at the provider's token endpoint for the
    provider token of the approver's account on `connection`.

    Raises NoConnectedAccount, TokenExchangeUnavailable (transport error or 5xx) or TokenExchangeFailed (any other
    refusal, or an answer that is not a bearer token of the federated-connection type).
    """
    if not connection:
        raise ClientConfigurationError("the Token Vault connection name is empty")
    token = subject_token.get_secret_value() if isinstance(subject_token, SecretStr) else subject_token
    if not token:
        raise TokenExchangeFailed("there is no subject token to exchange")
    form = {
        "grant_type": FEDERATED_CONNECTION_GRANT,
        "subject_token_type": SUBJECT_TOKEN_TYPES[subject_token_type],
        "subject_token": token,
        "requested_token_type": FEDERATED_CONNECTION_TOKEN_TYPE,
        "connection": connection,
    }
    if login_hint:
        form["login_hint"] = login_hint
    try:
        answer = client.post_token(form)
    except ProviderUnavailable as exc:
        raise TokenExchangeUnavailable(f"Token Vault exchange unavailable: {exc}") from None
    finally:
        del token, form
    if not answer.ok:
        error = answer.error or "unexpected_response"
        if error in NO_CONNECTED_ACCOUNT_ERRORS:
            raise NoConnectedAccount(
                f"no connected account on connection {connection!r} (HTTP {answer.status_code} {error})",
                status_code=answer.status_code,
                error=error,
            )
        raise TokenExchangeFailed(
            f"Token Vault exchange refused: HTTP {answer.status_code} {error}",
            status_code=answer.status_code,
            error=error,
        )
    body = answer.body
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenExchangeFailed("the Token Vault answer holds no access_token", status_code=answer.status_code)
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenExchangeFailed("the Token Vault answer is not a bearer token", status_code=answer.status_code)
    issued_token_type = body.get("issued_token_type", FEDERATED_CONNECTION_TOKEN_TYPE)
    if issued_token_type != FEDERATED_CONNECTION_TOKEN_TYPE:
        raise TokenExchangeFailed("the Token Vault answer is another token type", status_code=answer.status_code)
    expires_in = body.get("expires_in")
    scope = body.get("scope")
    return ConnectionToken(
        access_token=SecretStr(access_token),
        expires_in=expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else None,
        scope=tuple(scope.split()) if isinstance(scope, str) else (),
        issued_token_type=FEDERATED_CONNECTION_TOKEN_TYPE,
    )
