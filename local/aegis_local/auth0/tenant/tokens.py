"""The token endpoint's other grants and its neighbours: client authentication (confidential and public clients),
client credentials, the refresh grant (rotated for public clients), Token Vault's exchange for a connection's
provider token, and revocation."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from typing import Any

from aegis_local.auth0.config import (
    CLIENT_CREDENTIALS_GRANT,
    REFRESH_TOKEN_GRANT,
    TOKEN_VAULT_GRANT,
    ClientConfig,
)
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.keys import TokenInvalid, audiences
from aegis_local.auth0.tenant.base import TenantBase, required, split_scope, user_blocked
from aegis_local.auth0.tenant.records import ClientCredentials

SUBJECT_TOKEN_TYPE_REFRESH = "urn:ietf:params:oauth:token-type:refresh_token"
SUBJECT_TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
FEDERATED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"


class TokenApi(TenantBase):
    def authenticate_client(self, credentials: ClientCredentials) -> ClientConfig:
        challenge = (
            {"WWW-Authenticate": 'Basic realm="auth0-emulator"'} if credentials.method == "client_secret_basic" else {}
        )

        def failure(description: str) -> OAuthError:
            return OAuthError(401, "invalid_client", description, challenge)

        if not credentials.client_id:
            raise failure("Client authentication is required (client_id missing)")
        client = self._clients.get(credentials.client_id)
        if client is None:
            raise failure("Unknown client")
        if client.is_public:
            # A browser application or a CLI cannot keep a secret: presenting one is a misconfigured client.
            if credentials.method is not None:
                raise failure("This client is a public client: it must not authenticate with a secret")
            return client
        if credentials.method is None or credentials.client_secret is None:
            raise failure("Client authentication is required for this confidential client")
        expected = client.client_secret.get_secret_value().encode()
        if not hmac.compare_digest(expected, credentials.client_secret.encode()):
            raise failure("Client authentication failed")
        if client.token_endpoint_auth_method not in (None, credentials.method):
            raise failure(f"This client must authenticate with {client.token_endpoint_auth_method}")
        return client

    def client_credentials(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, CLIENT_CREDENTIALS_GRANT)
        audience = params.get("audience") or self.config.default_audience
        if not audience:
            raise OAuthError(
                403,
                "access_denied",
                "No audience parameter was provided, and no default audience has been configured",
            )
        server = self._resource_server(audience)
        if audience == self.management_audience and client.management_scopes:
            granted: tuple[str, ...] = client.management_scopes
        elif audience in client.api_scopes:
            granted = client.api_scopes[audience]
        else:
            raise OAuthError(
                403,
                "access_denied",
                f'Client is not authorized to access "{audience}". '
                'You need to create a "client-grant" associated to this API.',
            )
        requested = split_scope(params.get("scope"))
        if requested:
            not_granted = [s for s in requested if s not in granted]
            if not_granted:
                raise OAuthError(403, "access_denied", f"Client has not been granted scopes: {', '.join(not_granted)}")
            scope = requested
        else:
            scope = granted
        now = int(self.clock())
        token = self.keys.sign(
            {
                "iss": self.issuer,
                "sub": f"{client.client_id}@clients",
                "aud": audience,
                "iat": now,
                "exp": now + server.token_lifetime_seconds,
                "scope": " ".join(scope),
                "gty": "client-credentials",
                "azp": client.client_id,
                "jti": uuid.uuid4().hex,
            }
        )
        with self._lock:
            self._record(token)
        return {
            "access_token": token,
            "expires_in": server.token_lifetime_seconds,
            "scope": " ".join(scope),
            "token_type": "Bearer",
        }

    def refresh(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, REFRESH_TOKEN_GRANT)
        token = required(params, "refresh_token")
        with self._lock:
            record = self._refresh_tokens.get(token)
            if record is not None and record.rotated and record.client_id == client.client_id:
                # Auth0's reuse detection: a rotated token presented again was stolen or replayed, so the whole
                # family (every token of that login) stops working.
                for other in self._refresh_tokens.values():
                    if other.family == record.family:
                        other.revoked = True
            if record is None or record.revoked or record.client_id != client.client_id:
                raise OAuthError(403, "invalid_grant", "Unknown or invalid refresh token.")
            user = self._users[record.sub]
            if user.blocked:
                raise user_blocked()
            requested = split_scope(params.get("scope"))
            if requested and not set(requested) <= set(record.scope):
                raise OAuthError(403, "invalid_scope", "The requested scope exceeds the original grant")
            audience = params.get("audience") or None
            if audience is not None and audience != record.audience:
                raise OAuthError(
                    403, "invalid_grant", f"This refresh token was issued for the audience {record.audience}"
                )
            scope = requested or record.scope
            # Public clients get a new refresh token on every use (rotation); confidential ones keep theirs.
            rotate = client.is_public and "offline_access" in scope
            record.rotated = rotate
            return self._issue_user_tokens(
                client,
                user,
                scope,
                record.audience,
                record.authorization_details,
                with_refresh=rotate,
                permissions=record.permissions,
                refresh_family=record.family,
            )

    # ----------------------------------------------------------------- Token Vault

    def token_vault_exchange(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, TOKEN_VAULT_GRANT)
        if params.get("requested_token_type") != FEDERATED_TOKEN_TYPE:
            raise OAuthError(400, "invalid_request", f"requested_token_type must be {FEDERATED_TOKEN_TYPE}")
        subject_token_type = required(params, "subject_token_type")
        if subject_token_type not in (SUBJECT_TOKEN_TYPE_REFRESH, SUBJECT_TOKEN_TYPE_ACCESS):
            raise OAuthError(400, "invalid_request", f"Unsupported subject_token_type: {subject_token_type}")
        subject_token = required(params, "subject_token")
        connection = required(params, "connection")
        login_hint = params.get("login_hint") or None
        with self._lock:
            if subject_token_type == SUBJECT_TOKEN_TYPE_REFRESH:
                sub = self._refresh_subject(client, subject_token)
            else:
                sub = self._access_token_subject(client, subject_token)
            user = self._users.get(sub)
            if user is None:
                raise OAuthError(401, "invalid_grant", "Invalid subject token")
            if user.blocked:
                raise user_blocked()
            account = next(
                (
                    a
                    for a in user.connected_accounts
                    if a.connection == connection and (login_hint is None or a.provider_subject == login_hint)
                ),
                None,
            )
            if account is None or connection not in self._connections:
                raise OAuthError(
                    401,
                    "federated_connection_refresh_token_not_found",
                    "Federated connection Refresh Token not found.",
                )
            settings = self._connections[connection]
            now = int(self.clock())
            provider_token = self.provider_keys[connection].sign(
                {
                    "iss": self.provider_issuer(connection),
                    "sub": account.provider_subject,
                    "aud": settings.provider_audience,
                    "iat": now,
                    "exp": now + settings.provider_token_lifetime_seconds,
                    "auth_time": now,
                    "jti": uuid.uuid4().hex,
                }
            )
            self._record(provider_token)
        return {
            "access_token": provider_token,
            "scope": " ".join(account.scopes),
            "expires_in": settings.provider_token_lifetime_seconds,
            "issued_token_type": FEDERATED_TOKEN_TYPE,
            "token_type": "Bearer",
        }

    def _refresh_subject(self, client: ClientConfig, token: str) -> str:
        record = self._refresh_tokens.get(token)
        if record is None or record.revoked or record.client_id != client.client_id:
            raise OAuthError(401, "invalid_grant", "Invalid subject token")
        return record.sub

    def _access_token_subject(self, client: ClientConfig, token: str) -> str:
        try:
            claims = self.keys.verify(token, issuer=self.issuer, now=self.clock())
        except TokenInvalid as exc:
            raise OAuthError(401, "invalid_grant", f"Invalid subject token: {exc}") from exc
        apis = [
            self._resource_servers[a]
            for a in audiences(claims)
            if a in self._resource_servers and a not in (self.management_audience, self.my_account_audience)
        ]
        if not apis or claims.get("gty") == "client-credentials":
            raise OAuthError(401, "invalid_grant", "Invalid subject token: not a user access token for an API")
        if not any(client.client_id in api.token_exchange_client_ids for api in apis):
            raise OAuthError(
                403, "unauthorized_client", "The client is not allowed to exchange access tokens for this API"
            )
        sub = claims.get("sub")
        if not isinstance(sub, str):
            raise OAuthError(401, "invalid_grant", "Invalid subject token")
        return sub

    # ----------------------------------------------------------------- revocation

    def revoke(self, client: ClientConfig, params: Mapping[str, str]) -> None:
        token = required(params, "token")
        with self._lock:
            record = self._refresh_tokens.get(token)
            if record is None:
                # RFC 7009: an unknown token (or an access token, which Auth0 cannot revoke) is no error.
                return
            if record.client_id != client.client_id:
                raise OAuthError(400, "invalid_request", "The refresh token was issued to another client")
            record.revoked = True
            if self.config.revocation_deletes_grant:
                for other in self._refresh_tokens.values():
                    if (other.sub, other.client_id, other.audience) == (
                        record.sub,
                        record.client_id,
                        record.audience,
                    ):
                        other.revoked = True
