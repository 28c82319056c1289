"""The tenant's state and what every API of it shares: its configuration, users, keys, the records of what it issued,
the login sessions of browsers (the password check behind both login pages), the scope a login grants (RBAC), and
the minting of a user's tokens (CIBA, the refresh grant, the authorization code and device grants all issue them).

Every public method of the APIs takes already-parsed parameters, takes the tenant lock, and either returns the JSON
body of a success or raises one of the dialect errors of `errors.py`.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aegis_local.auth0.clock import Clock
from aegis_local.auth0.config import (
    MANAGEMENT_API_SCOPES,
    MY_ACCOUNT_SCOPES,
    REFRESH_TOKEN_GRANT,
    ClientConfig,
    EmulatorConfig,
    ResourceServerConfig,
)
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.keys import KeyRing
from aegis_local.auth0.tenant.records import (
    AuthorizationCode,
    CibaRequest,
    ConnectedAccount,
    DeviceAuthorization,
    LoginSession,
    LoginTransaction,
    ManagementEvent,
    RefreshTokenRecord,
    UserState,
)

OIDC_SCOPES = frozenset({"openid", "profile", "email", "address", "phone", "offline_access"})
USER_TOKEN_LIFETIME_WITHOUT_API = 86400


def split_scope(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    seen: dict[str, None] = {}
    for item in value.split():
        seen.setdefault(item, None)
    return tuple(seen)


def required(params: Mapping[str, str], name: str) -> str:
    """A parameter the request must carry, non-empty."""
    value = params.get(name)
    if not value:
        raise OAuthError(400, "invalid_request", f"Missing required parameter: {name}")
    return value


def user_blocked() -> OAuthError:
    return OAuthError(401, "unauthorized", "user is blocked")


def new_account_id() -> str:
    return f"cac_{secrets.token_hex(12)}"


class LoginFailed(Exception):
    """Wrong credentials on a login page: one message whether the email exists or not."""

    MESSAGE = "Wrong email or password."

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)
        self.message = message


class TenantBase:
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
                password=user.password,
                api_permissions=dict(user.api_permissions),
            )
            for account in user.connected_accounts:
                state.connected_accounts.append(
                    ConnectedAccount(
                        account_id=new_account_id(),
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
        # Every secret the tenant holds, for the leak audits: the applications' secrets and the users' passwords.
        self._issued: set[str] = {client.client_secret.get_secret_value() for client in config.clients}
        self._issued.update(user.password.get_secret_value() for user in config.users)
        self._events: list[ManagementEvent] = []
        self._login_transactions: dict[str, LoginTransaction] = {}
        self._login_sessions: dict[str, LoginSession] = {}
        self._authorization_codes: dict[str, AuthorizationCode] = {}
        self._device_authorizations: dict[str, DeviceAuthorization] = {}
        self._device_codes_by_user_code: dict[str, str] = {}

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

    # ----------------------------------------------------------------- shared by the grants

    @staticmethod
    def _require_grant(client: ClientConfig, grant_type: str) -> None:
        if grant_type not in client.grant_types:
            raise OAuthError(403, "unauthorized_client", f"Grant type '{grant_type}' not allowed for the client.")

    def _resource_server(self, audience: str) -> ResourceServerConfig:
        server = self._resource_servers.get(audience)
        if server is None:
            raise OAuthError(403, "access_denied", f"Service not found: {audience}")
        return server

    def _record(self, *tokens: str) -> None:
        self._issued.update(tokens)

    def _end_login_sessions(self, sub: str, session_id: str | None = None) -> int:
        """Log a user out of every browser, or of the one session `session_id`. Returns how many ended."""
        ended = [
            sid
            for sid, session in self._login_sessions.items()
            if session.sub == sub and (session_id is None or sid == session_id)
        ]
        for sid in ended:
            del self._login_sessions[sid]
        return len(ended)

    # ----------------------------------------------------------------- login sessions (the tenant's cookie)

    @property
    def session_cookie_name(self) -> str:
        # Browsers share cookies across the ports of one host: one name per emulator keeps two apart.
        return f"auth0_emulator_session_{urlsplit(self.issuer).port or 80}"

    def password_login(self, email: str, password: str) -> LoginSession:
        """Check a login page's credentials and start a session. Raises `LoginFailed` with the same message and the
        same work whether the email is unknown or the password wrong: the page must not tell which emails exist."""
        wanted = email.strip().lower()
        with self._lock:
            user = next((u for u in self._users.values() if u.email and u.email.lower() == wanted), None)
            expected = user.password.get_secret_value() if user is not None else secrets.token_urlsafe(18)
        matches = hmac.compare_digest(expected.encode(), password.encode())
        if user is None or not matches or not expected:
            raise LoginFailed()
        with self._lock:
            now = self.clock()
            session = LoginSession(
                session_id=secrets.token_urlsafe(32),
                sub=user.sub,
                created_at=now,
                expires_at=now + self.config.login_session_lifetime_seconds,
                form_token=secrets.token_urlsafe(24),
            )
            self._login_sessions[session.session_id] = session
            self._record(session.session_id)
            return session

    def live_session(self, session_id: str | None) -> LoginSession | None:
        """The unexpired session of this cookie whose user still exists, else None."""
        if not session_id:
            return None
        with self._lock:
            session = self._login_sessions.get(session_id)
            if session is None or session.expires_at <= self.clock() or session.sub not in self._users:
                return None
            return session

    def session_user(self, session_id: str | None) -> UserState | None:
        session = self.live_session(session_id)
        return self._users[session.sub] if session is not None else None

    def _login_grant(
        self, client: ClientConfig, user: UserState, requested: tuple[str, ...], audience: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
        """The scope a login (authorization code or device) grants, and the RBAC `permissions` claim if any.

        OIDC scopes pass (offline_access only for a client with refresh tokens, on an API allowing them); on a
        custom API, the asked scopes the user holds a permission for; on the My Account API, the asked scopes
        the client's grant covers."""
        server = self._resource_server(audience) if audience else None
        if audience == self.management_audience:
            raise OAuthError(403, "access_denied", "The emulated tenant issues no user tokens for the Management API")
        offline = REFRESH_TOKEN_GRANT in client.grant_types and (server is None or server.allow_offline_access)
        oidc = [s for s in requested if s in OIDC_SCOPES and (s != "offline_access" or offline)]
        permissions: tuple[str, ...] | None = None
        if server is None:
            api: list[str] = []
        elif audience == self.my_account_audience:
            api = [s for s in requested if s in client.my_account_scopes]
        else:
            held = user.api_permissions.get(server.identifier, ())
            permissions = tuple(s for s in server.scopes if s in held)
            api = [s for s in requested if s in permissions]
        return tuple(dict.fromkeys([*oidc, *api])), permissions

    def _issue_user_tokens(
        self,
        client: ClientConfig,
        user: UserState,
        scope: tuple[str, ...],
        audience: str | None,
        details: list[dict[str, Any]] | None,
        *,
        with_refresh: bool,
        nonce: str | None = None,
        permissions: tuple[str, ...] | None = None,
        refresh_family: str | None = None,
    ) -> dict[str, Any]:
        """Access token (and ID token with `openid`, refresh token with `offline_access` for a client holding the
        refresh grant). `permissions` is the RBAC claim of a login's token; `refresh_family` continues a rotated
        family instead of starting one."""
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
        if permissions is not None:
            claims["permissions"] = list(permissions)
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
            if nonce is not None:
                id_claims["nonce"] = nonce
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
                family=refresh_family or secrets.token_hex(8),
                permissions=permissions,
            )
            response["refresh_token"] = refresh_token
            self._record(refresh_token)
        if details is not None:
            response["authorization_details"] = details
        return response

    # ----------------------------------------------------------------- test support

    def issued_secrets(self) -> set[str]:
        with self._lock:
            return set(self._issued)
