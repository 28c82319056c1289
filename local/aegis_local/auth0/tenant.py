"""The emulated Auth0 tenant: all state and protocol rules, independent of HTTP.

Every public method takes already-parsed parameters, takes the tenant lock, and either returns the JSON
body of a success or raises one of the dialect errors of `errors.py`.
"""

from __future__ import annotations

import datetime
import hmac
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from aegis_local.auth0.clock import Clock
from aegis_local.auth0.config import (
    CIBA_GRANT,
    CLIENT_CREDENTIALS_GRANT,
    MANAGEMENT_API_SCOPES,
    MY_ACCOUNT_SCOPES,
    REFRESH_TOKEN_GRANT,
    TOKEN_VAULT_GRANT,
    ClientConfig,
    EmulatorConfig,
    ResourceServerConfig,
)
from aegis_local.auth0.errors import GuardianError, ManagementApiError, MyAccountError, OAuthError
from aegis_local.auth0.keys import KeyRing, TokenInvalid, audiences
from aegis_local.auth0.rar import (
    parse_authorization_details,
    validate_binding_message,
    validate_requested_expiry,
)

SUBJECT_TOKEN_TYPE_REFRESH = "urn:ietf:params:oauth:token-type:refresh_token"
SUBJECT_TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
FEDERATED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "address", "phone", "offline_access"})
RATE_WINDOW_SECONDS = 60.0
USER_TOKEN_LIFETIME_WITHOUT_API = 86400

ClientAuthMethod = Literal["client_secret_post", "client_secret_basic"]


@dataclass(frozen=True)
class ClientCredentials:
    """What a request presented to authenticate its client, as extracted by the HTTP layer."""

    method: ClientAuthMethod | None
    client_id: str | None
    client_secret: str | None


class CibaStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CONSUMED = "consumed"


@dataclass
class CibaRequest:
    auth_req_id: str
    client_id: str
    sub: str
    scope: tuple[str, ...]
    audience: str | None
    binding_message: str
    authorization_details: list[dict[str, Any]] | None
    created_at: float
    expires_at: float
    interval: int
    # The bc-authorize response counts as the first contact: a client must wait `interval` before polling.
    last_contact_at: float
    status: CibaStatus = CibaStatus.PENDING


@dataclass
class RefreshTokenRecord:
    token_id: str
    client_id: str
    sub: str
    audience: str | None
    scope: tuple[str, ...]
    authorization_details: list[dict[str, Any]] | None
    created_at: float
    revoked: bool = False


@dataclass
class ConnectedAccount:
    account_id: str
    connection: str
    scopes: tuple[str, ...]
    provider_subject: str
    created_at: float


@dataclass
class UserState:
    sub: str
    email: str | None
    name: str | None
    guardian_enrolled: bool
    blocked: bool
    connected_accounts: list[ConnectedAccount] = field(default_factory=list)


@dataclass(frozen=True)
class ManagementEvent:
    """A kill-switch-relevant call the Management API accepted, for assertions in tests."""

    action: str
    user_id: str
    at: float
    detail: str = ""


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _split_scope(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    seen: dict[str, None] = {}
    for item in value.split():
        seen.setdefault(item, None)
    return tuple(seen)


def _missing(name: str) -> OAuthError:
    return OAuthError(400, "invalid_request", f"Missing required parameter: {name}")


def _user_blocked() -> OAuthError:
    return OAuthError(401, "unauthorized", "user is blocked")


class Tenant:
    def __init__(self, config: EmulatorConfig, issuer: str, clock: Clock) -> None:
        if not issuer.endswith("/"):
            raise ValueError("an Auth0 issuer ends with a slash")
        self.config = config
        self.issuer = issuer
        self.clock = clock
        self._lock = threading.RLock()
        host = urlsplit(issuer).hostname or "localhost"
        self.keys = KeyRing(common_name=host)
        # Connections of one provider share its keys (and issuer): two clients of the same identity provider.
        providers = {
            name: KeyRing(common_name=f"{host} provider {name}")
            for name in dict.fromkeys(connection.provider_name for connection in config.connections)
        }
        self.provider_keys = {connection.name: providers[connection.provider_name] for connection in config.connections}
        self._connections = {connection.name: connection for connection in config.connections}
        self._clients = {client.client_id: client for client in config.clients}
        self._resource_servers: dict[str, ResourceServerConfig] = {
            server.identifier: server for server in config.resource_servers
        }
        self._resource_servers[self.management_audience] = ResourceServerConfig(
            identifier=self.management_audience,
            name="Auth0 Management API",
            scopes=MANAGEMENT_API_SCOPES,
            token_lifetime_seconds=config.management_token_lifetime_seconds,
            allow_offline_access=False,
        )
        self._resource_servers[self.my_account_audience] = ResourceServerConfig(
            identifier=self.my_account_audience,
            name="Auth0 My Account API",
            scopes=MY_ACCOUNT_SCOPES,
            token_lifetime_seconds=600,
        )
        now = clock()
        self._users: dict[str, UserState] = {}
        for user in config.users:
            state = UserState(
                sub=user.sub,
                email=user.email,
                name=user.name,
                guardian_enrolled=user.guardian_enrolled,
                blocked=user.blocked,
            )
            for account in user.connected_accounts:
                state.connected_accounts.append(
                    ConnectedAccount(
                        account_id=f"cac_{secrets.token_hex(12)}",
                        connection=account.connection,
                        scopes=account.scopes,
                        provider_subject=account.provider_subject or user.sub,
                        created_at=now,
                    )
                )
            self._users[user.sub] = state
        self._ciba: dict[str, CibaRequest] = {}
        self._refresh_tokens: dict[str, RefreshTokenRecord] = {}
        self._ciba_times_by_user: dict[str, deque[float]] = {}
        self._ciba_times_tenant: deque[float] = deque()
        self._issued: set[str] = {client.client_secret.get_secret_value() for client in config.clients}
        self._events: list[ManagementEvent] = []

    # ----------------------------------------------------------------- well-known endpoints

    @property
    def management_audience(self) -> str:
        return f"{self.issuer}api/v2/"

    @property
    def my_account_audience(self) -> str:
        return f"{self.issuer}me/"

    @property
    def userinfo_audience(self) -> str:
        return f"{self.issuer}userinfo"

    def provider_issuer(self, connection: str) -> str:
        settings = self._connections.get(connection)
        provider = settings.provider_name if settings is not None else connection
        return f"{self.issuer}provider/{provider}/"

    def discovery(self) -> dict[str, Any]:
        rar_types = sorted(
            {t for server in self._resource_servers.values() for t in server.authorization_details_types}
        )
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{self.issuer}oauth/token",
            "jwks_uri": f"{self.issuer}.well-known/jwks.json",
            "userinfo_endpoint": self.userinfo_audience,
            "backchannel_authentication_endpoint": f"{self.issuer}bc-authorize",
            "revocation_endpoint": f"{self.issuer}oauth/revoke",
            "grant_types_supported": [CLIENT_CREDENTIALS_GRANT, REFRESH_TOKEN_GRANT, CIBA_GRANT, TOKEN_VAULT_GRANT],
            "backchannel_token_delivery_modes_supported": ["poll"],
            "backchannel_user_code_parameter_supported": False,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "authorization_details_types_supported": rar_types,
            "scopes_supported": sorted(OIDC_SCOPES),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["aud", "auth_time", "email", "exp", "iat", "iss", "name", "sub"],
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

    # ----------------------------------------------------------------- client authentication

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
        if credentials.method is None or credentials.client_secret is None:
            raise failure("Client authentication is required for this confidential client")
        expected = client.client_secret.get_secret_value().encode()
        if not hmac.compare_digest(expected, credentials.client_secret.encode()):
            raise failure("Client authentication failed")
        if client.token_endpoint_auth_method not in (None, credentials.method):
            raise failure(f"This client must authenticate with {client.token_endpoint_auth_method}")
        return client

    @staticmethod
    def _require_grant(client: ClientConfig, grant_type: str) -> None:
        if grant_type not in client.grant_types:
            raise OAuthError(403, "unauthorized_client", f"Grant type '{grant_type}' not allowed for the client.")

    def _resource_server(self, audience: str) -> ResourceServerConfig:
        server = self._resource_servers.get(audience)
        if server is None:
            raise OAuthError(403, "access_denied", f"Service not found: {audience}")
        return server

    # ----------------------------------------------------------------- CIBA

    def bc_authorize(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, CIBA_GRANT)
        scope = _split_scope(params.get("scope"))
        if "openid" not in scope:
            raise OAuthError(400, "invalid_request", "The scope parameter must contain openid")
        user = self._user_from_login_hint(params.get("login_hint"))
        binding_message = validate_binding_message(params.get("binding_message"))
        expiry = validate_requested_expiry(params.get("requested_expiry"), self.config.ciba_default_expiry_seconds)
        audience = self._requested_audience(params)
        server = self._resource_server(audience) if audience else None
        details: list[dict[str, Any]] | None = None
        raw_details = params.get("authorization_details")
        if raw_details:
            if server is None:
                raise OAuthError(400, "invalid_authorization_details", "authorization_details require an audience")
            details = parse_authorization_details(raw_details, server.authorization_details_types)
        granted = self._granted_user_scope(scope, server)
        with self._lock:
            now = self.clock()
            self._enforce_ciba_limits(user.sub, now)
            auth_req_id = secrets.token_urlsafe(32)
            self._ciba[auth_req_id] = CibaRequest(
                auth_req_id=auth_req_id,
                client_id=client.client_id,
                sub=user.sub,
                scope=granted,
                audience=audience,
                binding_message=binding_message,
                authorization_details=details,
                created_at=now,
                expires_at=now + expiry,
                interval=self.config.ciba_interval_seconds,
                last_contact_at=now,
            )
            self._ciba_times_by_user.setdefault(user.sub, deque()).append(now)
            self._ciba_times_tenant.append(now)
        return {"auth_req_id": auth_req_id, "expires_in": expiry, "interval": self.config.ciba_interval_seconds}

    def _user_from_login_hint(self, raw: str | None) -> UserState:
        if not raw:
            raise _missing("login_hint")
        try:
            hint = json.loads(raw)
        except ValueError as exc:
            raise OAuthError(400, "invalid_request", "login_hint must be a JSON object") from exc
        if not isinstance(hint, dict) or hint.get("format") != "iss_sub":
            raise OAuthError(400, "invalid_request", 'login_hint format must be "iss_sub"')
        if hint.get("iss") != self.issuer:
            raise OAuthError(400, "invalid_request", f"login_hint iss must be {self.issuer}")
        sub = hint.get("sub")
        if not isinstance(sub, str) or not sub:
            raise OAuthError(400, "invalid_request", "login_hint sub is required")
        with self._lock:
            user = self._users.get(sub)
            if user is None:
                raise OAuthError(400, "invalid_request", "User not found")
            if user.blocked:
                raise _user_blocked()
            if not user.guardian_enrolled:
                raise OAuthError(400, "invalid_request", "User does not have push notifications enrolled")
            return user

    def _requested_audience(self, params: Mapping[str, str]) -> str | None:
        audience = params.get("audience") or None
        resource = params.get("resource") or None
        if audience and resource and audience != resource:
            raise OAuthError(400, "invalid_request", "audience and resource must not differ")
        return audience or resource or self.config.default_audience

    @staticmethod
    def _granted_user_scope(requested: tuple[str, ...], server: ResourceServerConfig | None) -> tuple[str, ...]:
        api_scopes = set(server.scopes) if server else set()
        granted = [s for s in requested if s in OIDC_SCOPES or s in api_scopes]
        if server is not None and not server.allow_offline_access:
            granted = [s for s in granted if s != "offline_access"]
        return tuple(granted)

    def _enforce_ciba_limits(self, sub: str, now: float) -> None:
        per_user = self._ciba_times_by_user.setdefault(sub, deque())
        for window in (per_user, self._ciba_times_tenant):
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
        for window, limit, scope_label in (
            (per_user, self.config.ciba_requests_per_user_per_minute, "user"),
            (self._ciba_times_tenant, self.config.ciba_requests_per_tenant_per_minute, "tenant"),
        ):
            if len(window) >= limit:
                reset_at = window[0] + RATE_WINDOW_SECONDS
                raise OAuthError(
                    429,
                    "too_many_requests",
                    f"Too many backchannel authorization requests for this {scope_label}; retry later",
                    {
                        "Retry-After": str(max(1, int(reset_at - now + 0.999))),
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(reset_at)),
                    },
                )
        pending = sum(1 for r in self._ciba.values() if r.status is CibaStatus.PENDING and r.expires_at > now)
        if pending >= self.config.ciba_max_pending_per_tenant:
            raise OAuthError(429, "too_many_requests", "Too many pending backchannel authorization requests")

    def poll_ciba(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, CIBA_GRANT)
        auth_req_id = params.get("auth_req_id")
        if not auth_req_id:
            raise _missing("auth_req_id")
        with self._lock:
            request = self._ciba.get(auth_req_id)
            if request is None or request.client_id != client.client_id:
                raise OAuthError(400, "invalid_grant", "Unknown auth_req_id")
            if request.status is CibaStatus.CONSUMED:
                raise OAuthError(400, "invalid_grant", "The auth_req_id has already been exchanged")
            now = self.clock()
            if now >= request.expires_at:
                raise OAuthError(400, "expired_token", "The auth_req_id has expired")
            if now - request.last_contact_at < request.interval:
                request.interval += self.config.slow_down_increment_seconds
                request.last_contact_at = now
                raise OAuthError(
                    429,
                    "slow_down",
                    f"You are polling faster than allowed. Try again in {request.interval} seconds.",
                    {"Retry-After": str(request.interval)},
                )
            request.last_contact_at = now
            if request.status is CibaStatus.DENIED:
                raise OAuthError(400, "access_denied", "The end-user denied the authorization request")
            if request.status is CibaStatus.PENDING:
                raise OAuthError(400, "authorization_pending", "The end-user authorization is pending")
            user = self._users[request.sub]
            if user.blocked:
                raise OAuthError(400, "access_denied", "user is blocked")
            request.status = CibaStatus.CONSUMED
            return self._issue_user_tokens(
                client, user, request.scope, request.audience, request.authorization_details, with_refresh=True
            )

    # ----------------------------------------------------------------- token issuance

    def _record(self, *tokens: str) -> None:
        self._issued.update(tokens)

    def _issue_user_tokens(
        self,
        client: ClientConfig,
        user: UserState,
        scope: tuple[str, ...],
        audience: str | None,
        details: list[dict[str, Any]] | None,
        *,
        with_refresh: bool,
    ) -> dict[str, Any]:
        now = int(self.clock())
        server = self._resource_servers.get(audience) if audience else None
        lifetime = server.token_lifetime_seconds if server else USER_TOKEN_LIFETIME_WITHOUT_API
        aud: str | list[str]
        if audience and "openid" in scope:
            aud = [audience, self.userinfo_audience]
        else:
            aud = audience or self.userinfo_audience
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime,
            "scope": " ".join(scope),
            "azp": client.client_id,
            "jti": uuid.uuid4().hex,
        }
        if details is not None:
            claims["authorization_details"] = details
        access_token = self.keys.sign(claims)
        response: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": lifetime,
            "token_type": "Bearer",
            "scope": " ".join(scope),
        }
        self._record(access_token)
        if "openid" in scope:
            id_claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": user.sub,
                "aud": client.client_id,
                "iat": now,
                "exp": now + self.config.id_token_lifetime_seconds,
                "auth_time": now,
            }
            if "email" in scope and user.email:
                id_claims["email"] = user.email
            if "profile" in scope and user.name:
                id_claims["name"] = user.name
            response["id_token"] = self.keys.sign(id_claims)
            self._record(response["id_token"])
        # Auth0 issues a refresh token only to an application with the refresh-token grant (and offline_access).
        if with_refresh and "offline_access" in scope and REFRESH_TOKEN_GRANT in client.grant_types:
            refresh_token = secrets.token_urlsafe(48)
            self._refresh_tokens[refresh_token] = RefreshTokenRecord(
                token_id=f"rt_{secrets.token_hex(8)}",
                client_id=client.client_id,
                sub=user.sub,
                audience=audience,
                scope=scope,
                authorization_details=details,
                created_at=now,
            )
            response["refresh_token"] = refresh_token
            self._record(refresh_token)
        if details is not None:
            response["authorization_details"] = details
        return response

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
        requested = _split_scope(params.get("scope"))
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
        token = params.get("refresh_token")
        if not token:
            raise _missing("refresh_token")
        with self._lock:
            record = self._refresh_tokens.get(token)
            if record is None or record.revoked or record.client_id != client.client_id:
                raise OAuthError(403, "invalid_grant", "Unknown or invalid refresh token.")
            user = self._users[record.sub]
            if user.blocked:
                raise _user_blocked()
            requested = _split_scope(params.get("scope"))
            if requested and not set(requested) <= set(record.scope):
                raise OAuthError(403, "invalid_scope", "The requested scope exceeds the original grant")
            return self._issue_user_tokens(
                client,
                user,
                requested or record.scope,
                record.audience,
                record.authorization_details,
                with_refresh=False,
            )

    # ----------------------------------------------------------------- Token Vault

    def token_vault_exchange(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, TOKEN_VAULT_GRANT)
        if params.get("requested_token_type") != FEDERATED_TOKEN_TYPE:
            raise OAuthError(400, "invalid_request", f"requested_token_type must be {FEDERATED_TOKEN_TYPE}")
        subject_token_type = params.get("subject_token_type")
        if not subject_token_type:
            raise _missing("subject_token_type")
        if subject_token_type not in (SUBJECT_TOKEN_TYPE_REFRESH, SUBJECT_TOKEN_TYPE_ACCESS):
            raise OAuthError(400, "invalid_request", f"Unsupported subject_token_type: {subject_token_type}")
        subject_token = params.get("subject_token")
        if not subject_token:
            raise _missing("subject_token")
        connection = params.get("connection")
        if not connection:
            raise _missing("connection")
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
                raise _user_blocked()
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
        token = params.get("token")
        if not token:
            raise _missing("token")
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
            scope = _split_scope(claims.get("scope"))
            if "email" in scope and user.email:
                body["email"] = user.email
            if "profile" in scope and user.name:
                body["name"] = user.name
            return body

    # ----------------------------------------------------------------- Management API

    def authorize_management(self, bearer: str | None, required_scopes: tuple[str, ...]) -> dict[str, Any]:
        if not bearer:
            raise ManagementApiError(401, "Missing authentication", "missing_authentication")
        try:
            claims = self.keys.verify(bearer, issuer=self.issuer, now=self.clock())
        except TokenInvalid as exc:
            raise ManagementApiError(401, "Invalid token", "invalid_token") from exc
        if self.management_audience not in audiences(claims):
            raise ManagementApiError(401, f"Bad audience: {claims.get('aud')}", "invalid_token")
        held = set(_split_scope(claims.get("scope")))
        if not set(required_scopes) <= held:
            raise ManagementApiError(
                403, f"Insufficient scope, expected all of: {' '.join(required_scopes)}", "insufficient_scope"
            )
        return claims

    def _management_user(self, user_id: str) -> UserState:
        user = self._users.get(user_id)
        if user is None:
            raise ManagementApiError(404, "The user does not exist.", "inexistent_user")
        return user

    def _revoke_user_refresh_tokens(self, user_id: str) -> int:
        count = 0
        for record in self._refresh_tokens.values():
            if record.sub == user_id and not record.revoked:
                record.revoked = True
                count += 1
        return count

    def _log(self, action: str, user_id: str, detail: str = "") -> None:
        self._events.append(ManagementEvent(action=action, user_id=user_id, at=self.clock(), detail=detail))

    def revoke_access(self, user_id: str, body: Any) -> None:
        if body is None:
            body = {}
        _check_body(body, {"session_id": str, "preserve_refresh_tokens": bool})
        with self._lock:
            self._management_user(user_id)
            preserve = bool(body.get("preserve_refresh_tokens", False))
            revoked = 0 if preserve else self._revoke_user_refresh_tokens(user_id)
            # CIBA creates no browser sessions, so there are none to end here.
            self._log("revoke_access", user_id, f"refresh_tokens_revoked={revoked}")

    def delete_user_refresh_tokens(self, user_id: str) -> None:
        with self._lock:
            self._management_user(user_id)
            revoked = self._revoke_user_refresh_tokens(user_id)
            self._log("delete_refresh_tokens", user_id, f"refresh_tokens_revoked={revoked}")

    def delete_user_sessions(self, user_id: str) -> None:
        with self._lock:
            self._management_user(user_id)
            self._log("delete_sessions", user_id)

    def delete_grants(self, user_id: str | None) -> None:
        if not user_id:
            raise ManagementApiError(400, "Query validation error: user_id is required", "invalid_query_string")
        with self._lock:
            # CIBA stores no consent grant, so deleting grants leaves CIBA refresh tokens alone, as on Auth0.
            self._log("delete_grants", user_id)

    def get_user(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            return self._user_body(self._management_user(user_id))

    def patch_user(self, user_id: str, body: Any) -> dict[str, Any]:
        _check_body(body, {"blocked": bool, "email": str, "name": str})
        with self._lock:
            user = self._management_user(user_id)
            if "blocked" in body:
                user.blocked = body["blocked"]
                self._log("block" if user.blocked else "unblock", user_id)
            if "email" in body:
                user.email = body["email"]
            if "name" in body:
                user.name = body["name"]
            return self._user_body(user)

    @staticmethod
    def _user_body(user: UserState) -> dict[str, Any]:
        return {
            "user_id": user.sub,
            "email": user.email,
            "name": user.name,
            "blocked": user.blocked,
            "identities": [{"provider": user.sub.split("|", 1)[0], "user_id": user.sub.split("|", 1)[-1]}],
        }

    def management_connected_accounts(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            user = self._management_user(user_id)
            return {
                "connected_accounts": [
                    {
                        **self._account_body(account),
                        "connection_id": f"con_{account.connection}",
                        "strategy": self._connections[account.connection].strategy,
                    }
                    for account in user.connected_accounts
                ]
            }

    @staticmethod
    def _account_body(account: ConnectedAccount) -> dict[str, Any]:
        return {
            "id": account.account_id,
            "connection": account.connection,
            "access_type": "offline",
            "scopes": list(account.scopes),
            "created_at": _iso(account.created_at),
        }

    # ----------------------------------------------------------------- My Account API

    def authorize_my_account(self, bearer: str | None, required_scope: str) -> UserState:
        if not bearer:
            raise MyAccountError(401, "Missing bearer token")
        try:
            claims = self.keys.verify(bearer, issuer=self.issuer, now=self.clock())
        except TokenInvalid as exc:
            raise MyAccountError(401, f"Invalid token: {exc}") from exc
        if self.my_account_audience not in audiences(claims):
            raise MyAccountError(401, f"Invalid token: audience must include {self.my_account_audience}")
        if required_scope not in _split_scope(claims.get("scope")):
            raise MyAccountError(403, f"Insufficient scope; expected {required_scope}")
        with self._lock:
            user = self._users.get(str(claims.get("sub")))
            if user is None:
                raise MyAccountError(401, "Invalid token: unknown user")
            if user.blocked:
                raise MyAccountError(403, "user is blocked")
            return user

    def my_connected_accounts(self, user: UserState, connection: str | None) -> dict[str, Any]:
        with self._lock:
            return {
                "accounts": [
                    self._account_body(account)
                    for account in user.connected_accounts
                    if connection is None or account.connection == connection
                ]
            }

    def my_connections(self) -> dict[str, Any]:
        return {"connections": [{"name": c.name, "strategy": c.strategy} for c in self._connections.values()]}

    def delete_my_connected_account(self, user: UserState, account_id: str) -> None:
        with self._lock:
            remaining = [a for a in user.connected_accounts if a.account_id != account_id]
            if len(remaining) == len(user.connected_accounts):
                raise MyAccountError(404, "Connected account not found")
            user.connected_accounts = remaining

    def connect_account(self, sub: str, connection: str, scopes: tuple[str, ...] = ()) -> str:
        """Complete a connected-accounts flow for a user (the browser part cannot be emulated)."""
        with self._lock:
            user = self._users.get(sub)
            if user is None:
                raise KeyError(f"unknown user {sub!r}")
            if connection not in self._connections:
                raise KeyError(f"unknown connection {connection!r}")
            account = ConnectedAccount(
                account_id=f"cac_{secrets.token_hex(12)}",
                connection=connection,
                scopes=scopes,
                provider_subject=sub,
                created_at=self.clock(),
            )
            user.connected_accounts.append(account)
            return account.account_id

    # ----------------------------------------------------------------- the phone (Guardian stand-in)

    def pending(self, sub: str) -> list[dict[str, Any]]:
        with self._lock:
            if sub not in self._users:
                raise GuardianError(404, "unknown_user", f"Unknown user {sub}")
            now = self.clock()
            return [
                {
                    "auth_req_id": r.auth_req_id,
                    "client_id": r.client_id,
                    "binding_message": r.binding_message,
                    "authorization_details": r.authorization_details,
                    "scope": " ".join(r.scope),
                    "audience": r.audience,
                    "requested_at": _iso(r.created_at),
                    "expires_at": _iso(r.expires_at),
                }
                for r in self._ciba.values()
                if r.sub == sub and r.status is CibaStatus.PENDING and r.expires_at > now
            ]

    def decide(self, auth_req_id: str, approve: bool) -> None:
        with self._lock:
            request = self._ciba.get(auth_req_id)
            if request is None:
                raise GuardianError(404, "unknown_request", "Unknown authorization request")
            if request.status is not CibaStatus.PENDING:
                raise GuardianError(409, "not_pending", f"The request is already {request.status.value}")
            if self.clock() >= request.expires_at:
                raise GuardianError(409, "expired", "The request has expired")
            if approve and self._users[request.sub].blocked:
                raise GuardianError(403, "user_blocked", "A blocked user cannot approve requests")
            request.status = CibaStatus.APPROVED if approve else CibaStatus.DENIED

    def lapse(self, auth_req_id: str) -> None:
        """The approver leaves the request unanswered until it expires, without waiting out its requested_expiry:
        its expiry moves to now, so the client's next poll is answered `expired_token` as at Auth0."""
        with self._lock:
            request = self._ciba.get(auth_req_id)
            if request is None:
                raise GuardianError(404, "unknown_request", "Unknown authorization request")
            if request.status is not CibaStatus.PENDING:
                raise GuardianError(409, "not_pending", f"The request is already {request.status.value}")
            request.expires_at = min(request.expires_at, self.clock())

    # ----------------------------------------------------------------- test support

    def issued_secrets(self) -> set[str]:
        with self._lock:
            return set(self._issued)

    def management_events(self) -> list[ManagementEvent]:
        with self._lock:
            return list(self._events)

    def is_blocked(self, sub: str) -> bool:
        with self._lock:
            return self._users[sub].blocked


def _check_body(body: Any, allowed: Mapping[str, type]) -> None:
    if not isinstance(body, dict):
        raise ManagementApiError(400, "Payload validation error: body must be a JSON object", "invalid_body")
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise ManagementApiError(
            400, f"Payload validation error: 'Additional properties not allowed: {', '.join(extra)}'", "invalid_body"
        )
    for name, expected in allowed.items():
        if name in body and not isinstance(body[name], expected):
            raise ManagementApiError(
                400, f"Payload validation error: '{name}' must be of type {expected.__name__}", "invalid_body"
            )
