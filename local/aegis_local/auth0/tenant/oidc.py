"""OpenID Connect: the tenant's discovery document and keys, those of each connection's identity provider, and
`/userinfo`."""

from __future__ import annotations

from typing import Any

from aegis_local.auth0.config import SUPPORTED_GRANTS
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.keys import TokenInvalid, audiences
from aegis_local.auth0.tenant.base import OIDC_SCOPES, TenantBase, split_scope


class OidcApi(TenantBase):
    def discovery(self) -> dict[str, Any]:
        rar_types = sorted(
            {t for server in self._resource_servers.values() for t in server.authorization_details_types}
        )
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}authorize",
            "device_authorization_endpoint": f"{self.issuer}oauth/device/code",
            "end_session_endpoint": f"{self.issuer}v2/logout",
            "token_endpoint": f"{self.issuer}oauth/token",
            "jwks_uri": f"{self.issuer}.well-known/jwks.json",
            "userinfo_endpoint": self.userinfo_audience,
            "backchannel_authentication_endpoint": f"{self.issuer}bc-authorize",
            "revocation_endpoint": f"{self.issuer}oauth/revoke",
            "grant_types_supported": list(SUPPORTED_GRANTS),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "web_message"],
            "code_challenge_methods_supported": ["S256"],
            "backchannel_token_delivery_modes_supported": ["poll"],
            "backchannel_user_code_parameter_supported": False,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "authorization_details_types_supported": rar_types,
            "scopes_supported": sorted(OIDC_SCOPES),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["aud", "auth_time", "email", "exp", "iat", "iss", "name", "nonce", "sub"],
            "request_uri_parameter_supported": False,
        }

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()

    def _connection_or_404(self, connection: str) -> str:
        if connection not in self._connections:
            raise OAuthError(404, "not_found", f"Unknown connection: {connection}")
        return connection

    def provider_discovery(self, connection: str) -> dict[str, Any]:
        issuer = self.provider_issuer(self._connection_or_404(connection))
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}.well-known/jwks.json",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["aud", "exp", "iat", "iss", "sub"],
        }

    def provider_jwks(self, connection: str) -> dict[str, Any]:
        return self.provider_keys[self._connection_or_404(connection)].jwks()

    def userinfo(self, bearer: str | None) -> dict[str, Any]:
        if not bearer:
            raise OAuthError(401, "invalid_token", "Missing bearer token")
        try:
            claims = self.keys.verify(bearer, issuer=self.issuer, now=self.clock())
        except TokenInvalid as exc:
            raise OAuthError(401, "invalid_token", str(exc)) from exc
        if self.userinfo_audience not in audiences(claims):
            raise OAuthError(401, "invalid_token", "The token is not meant for /userinfo")
        with self._lock:
            user = self._users.get(str(claims.get("sub")))
            if user is None:
                raise OAuthError(401, "invalid_token", "Unknown user")
            body: dict[str, Any] = {"sub": user.sub}
            scope = split_scope(claims.get("scope"))
            if "email" in scope and user.email:
                body["email"] = user.email
            if "profile" in scope and user.name:
                body["name"] = user.name
            return body
