"""The emulated tenant's configuration: clients, APIs, users and Token Vault connections.

Secrets are generated at run time (never committed) and kept as `SecretStr` so that printing a config
does not leak them.
"""

from __future__ import annotations

import secrets
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
TOKEN_VAULT_GRANT = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
CLIENT_CREDENTIALS_GRANT = "client_credentials"
REFRESH_TOKEN_GRANT = "refresh_token"
AUTHORIZATION_CODE_GRANT = "authorization_code"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SUPPORTED_GRANTS = (
    CLIENT_CREDENTIALS_GRANT,
    REFRESH_TOKEN_GRANT,
    CIBA_GRANT,
    TOKEN_VAULT_GRANT,
    AUTHORIZATION_CODE_GRANT,
    DEVICE_CODE_GRANT,
)
# Grants a public client (no secret: a browser application or a CLI) may hold; the others need a confidential client.
PUBLIC_CLIENT_GRANTS = frozenset({AUTHORIZATION_CODE_GRANT, DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT})

AEGIS_CHANGE_TYPE = "urn:auth0:schemas:authorization-details:v1:aegis-change"
# One approval of a batch of changes: its properties summarise the batch and carry the Merkle root of their digests.
AEGIS_BATCH_TYPE = "urn:auth0:schemas:authorization-details:v1:aegis-batch"
DEFAULT_API_AUDIENCE = "https://aegis.local/api"
# One application per trust domain: the approval function's (CIBA only) and the executor's (the API's Custom API
# Client: Token Vault exchange only). Neither can do the other's part.
DEFAULT_APPROVAL_CLIENT_ID = "aegis-approval-app"
DEFAULT_EXECUTOR_CLIENT_ID = "aegis-executor-app"
DEFAULT_M2M_CLIENT_ID = "aegis-killswitch-m2m"
DEFAULT_OPERATOR_CLIENT_ID = "aegis-killswitch-operator"
# The operators' own applications: the console (a single-page application, authorization code with PKCE) and the
# aegis-local CLI (a native application, device authorization grant). Both are public clients.
DEFAULT_CONSOLE_CLIENT_ID = "aegis-console"
DEFAULT_CLI_CLIENT_ID = "aegis-cli"
DEFAULT_OPS_API_AUDIENCE = "https://aegis.local/ops"
# The scopes the kill switch's HTTP routes require (aegis_killswitch.scopes): one to halt, one to re-arm.
KILLSWITCH_SCOPE = "aegis:killswitch"
REARM_SCOPE = "aegis:rearm"
READ_SCOPE = "aegis:read"
AUDIT_SCOPE = "aegis:audit"
# Every scope of the ops API (the operators' HTTP API and the kill switch share its audience).
OPS_API_SCOPES = (READ_SCOPE, AUDIT_SCOPE, "aegis:scan", "aegis:undo", KILLSWITCH_SCOPE, REARM_SCOPE)
DEFAULT_APPROVER_SUB = "auth0|aegis-approver"
DEFAULT_SECOND_USER_SUB = "auth0|aegis-observer"
DEFAULT_APPROVER_EMAIL = "approver@aegis.local"
# The people who log in to the console or the CLI, each with RBAC permissions on the ops API.
DEFAULT_OPERATOR_SUB = "auth0|aegis-operator"
DEFAULT_OPERATOR_EMAIL = "operator@aegis.local"
DEFAULT_VIEWER_SUB = "auth0|aegis-viewer"
DEFAULT_VIEWER_EMAIL = "viewer@aegis.local"
# A reader with a Token Vault account of their own, so a test may delete it without touching the approver's.
DEFAULT_ACCOUNTS_SUB = "auth0|aegis-accounts"
DEFAULT_ACCOUNTS_EMAIL = "accounts@aegis.local"
DEFAULT_CONNECTION = "aws-remediation"
# The provider's client behind each connection: RemediationRole and UndoRole each trust one audience, never a
# generic one such as sts.amazonaws.com.
DEFAULT_PROVIDER_AUDIENCE = "aegis-remediation"
DEFAULT_UNDO_CONNECTION = "aws-remediation-undo"
DEFAULT_UNDO_PROVIDER_AUDIENCE = "aegis-undo"

# The Management API scopes the kill switch needs (see the scope column of the reference).
KILLSWITCH_MANAGEMENT_SCOPES = (
    "read:users",
    "update:users",
    "delete:sessions",
    "delete:refresh_tokens",
    "delete:grants",
)
MANAGEMENT_API_SCOPES = (
    *KILLSWITCH_MANAGEMENT_SCOPES,
    "read:grants",
    "read:sessions",
    "read:refresh_tokens",
    "create:users",
    "delete:users",
)
MY_ACCOUNT_SCOPES = (
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
)


def _generated_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(48))


def _generated_password() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(18))


class UnknownUserEmail(KeyError):
    """No user of the tenant has this email address."""


def _web_origin_problem(origin: str) -> str | None:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http(s) origin"
    if parts.path or parts.query or parts.fragment or parts.username is not None:
        return "must be scheme://host[:port] only"
    return None


def _callback_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http(s) URL"
    if parts.fragment:
        return "must not have a fragment"
    return None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClientConfig(_Frozen):
    """An Auth0 application: confidential (machine to machine, or a regular web application with a secret) or public
    (a single-page or native application, `token_endpoint_auth_method="none"`)."""

    client_id: str = Field(min_length=1)
    # Auth0 generates a secret for every application; a public client's is never accepted.
    client_secret: SecretStr = Field(default_factory=_generated_secret)
    name: str = ""
    app_type: Literal["non_interactive", "regular_web", "spa", "native"] = "non_interactive"
    grant_types: tuple[str, ...] = ()
    # None accepts both secret methods, like a tenant that does not pin the method; "none" is a public client.
    token_endpoint_auth_method: Literal["client_secret_post", "client_secret_basic", "none"] | None = None
    # Client grant on the tenant's Management API (`<issuer>api/v2/`).
    management_scopes: tuple[str, ...] = ()
    # Client grants on custom APIs: identifier -> scopes, for client_credentials.
    api_scopes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Client grant on the My Account API (`<issuer>me/`), whose user policy requires one: the most a user's token
    # for it may carry.
    my_account_scopes: tuple[str, ...] = ()
    # "Allowed Callback URLs" (exact match), "Allowed Web Origins" (CORS and web_message) and "Allowed Logout URLs".
    callbacks: tuple[str, ...] = ()
    web_origins: tuple[str, ...] = ()
    logout_urls: tuple[str, ...] = ()

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        unknown = set(self.grant_types) - set(SUPPORTED_GRANTS)
        if unknown:
            raise ValueError(f"client {self.client_id!r}: unsupported grant types {sorted(unknown)}")
        if self.is_public != (self.app_type in ("spa", "native")):
            raise ValueError(f"client {self.client_id!r}: only spa and native applications are public clients")
        if self.is_public:
            confidential_only = set(self.grant_types) - PUBLIC_CLIENT_GRANTS
            if confidential_only:
                raise ValueError(f"client {self.client_id!r}: a public client cannot hold {sorted(confidential_only)}")
        unknown_my_account = set(self.my_account_scopes) - set(MY_ACCOUNT_SCOPES)
        if unknown_my_account:
            raise ValueError(f"client {self.client_id!r}: unknown My Account scopes {sorted(unknown_my_account)}")
        for url in (*self.callbacks, *self.logout_urls):
            problem = _callback_problem(url)
            if problem:
                raise ValueError(f"client {self.client_id!r}: URL {url!r} {problem}")
        for origin in self.web_origins:
            problem = _web_origin_problem(origin)
            if problem:
                raise ValueError(f"client {self.client_id!r}: web origin {origin!r} {problem}")
        return self


class ResourceServerConfig(_Frozen):
    """A custom API registered on the tenant."""

    identifier: str = Field(min_length=1)
    name: str = ""
    scopes: tuple[str, ...] = ()
    authorization_details_types: tuple[str, ...] = ()
    token_lifetime_seconds: int = Field(default=86400, ge=60)
    allow_offline_access: bool = True
    # Clients allowed to exchange this API's access tokens at Token Vault (Auth0's "Custom API Client").
    token_exchange_client_ids: tuple[str, ...] = ()


class ConnectedAccountConfig(_Frozen):
    """A user's account at an external provider, stored in Token Vault."""

    connection: str = Field(min_length=1)
    scopes: tuple[str, ...] = ()
    # The user's id at the provider; defaults to the Auth0 user id.
    provider_subject: str | None = None


class UserConfig(_Frozen):
    sub: str = Field(min_length=1)
    email: str | None = None
    name: str | None = None
    # The login page's password (a user without an email cannot log in); generated at run time.
    password: SecretStr = Field(default_factory=_generated_password)
    guardian_enrolled: bool = True
    blocked: bool = False
    connected_accounts: tuple[ConnectedAccountConfig, ...] = ()
    # RBAC: the permissions the user holds on each custom API (identifier -> scopes). A token obtained by login
    # carries the asked scopes the user holds, and all the user's permissions in its `permissions` claim.
    api_permissions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Whether the deployment names this user an approver (ApproverSubs). None: exactly when the user has a Token
    # Vault account, the rule of every tenant before users connected accounts of their own.
    approver: bool | None = None

    @property
    def is_approver(self) -> bool:
        return bool(self.connected_accounts) if self.approver is None else self.approver


class ConnectionConfig(_Frozen):
    """A Token Vault connection whose provider tokens are OIDC ID tokens for `provider_audience`."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    provider_audience: str = Field(min_length=1)
    # The identity provider whose tokens the connection holds; connections naming the same provider share its
    # issuer and signing keys (two clients of one provider). Defaults to a provider of the connection's own.
    provider: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    provider_token_lifetime_seconds: int = Field(default=3600, ge=60)
    strategy: str = "oidc"

    @property
    def provider_name(self) -> str:
        return self.provider or self.name


class EmulatorConfig(_Frozen):
    clients: tuple[ClientConfig, ...] = ()
    resource_servers: tuple[ResourceServerConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    connections: tuple[ConnectionConfig, ...] = ()
    default_audience: str | None = None
    ciba_interval_seconds: int = Field(default=5, ge=1)
    ciba_default_expiry_seconds: int = Field(default=300, ge=1, le=300)
    ciba_requests_per_user_per_minute: int = Field(default=5, ge=1)
    ciba_requests_per_tenant_per_minute: int = Field(default=500, ge=1)
    ciba_max_pending_per_tenant: int = Field(default=5000, ge=1)
    slow_down_increment_seconds: int = Field(default=5, ge=1)
    id_token_lifetime_seconds: int = Field(default=36000, ge=60)
    authorization_code_lifetime_seconds: int = Field(default=60, ge=1)
    # How long an unfinished login (the login page of one /authorize) and a login session (its cookie) last.
    login_transaction_lifetime_seconds: int = Field(default=600, ge=1)
    login_session_lifetime_seconds: int = Field(default=86400, ge=60)
    device_code_expiry_seconds: int = Field(default=900, ge=1)
    device_code_interval_seconds: int = Field(default=5, ge=1)
    management_token_lifetime_seconds: int = Field(default=86400, ge=60)
    # Auth0's "Revocation Deletes Grant": revoking one refresh token revokes all of the same
    # user, client and audience.
    revocation_deletes_grant: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for label, ids in (
            ("client_id", [c.client_id for c in self.clients]),
            ("resource server identifier", [r.identifier for r in self.resource_servers]),
            ("user sub", [u.sub for u in self.users]),
            ("connection name", [c.name for c in self.connections]),
        ):
            duplicates = {i for i in ids if ids.count(i) > 1}
            if duplicates:
                raise ValueError(f"duplicate {label}: {sorted(duplicates)}")
        connection_names = {c.name for c in self.connections}
        api_identifiers = {r.identifier for r in self.resource_servers}
        client_ids = {c.client_id for c in self.clients}
        for user in self.users:
            for account in user.connected_accounts:
                if account.connection not in connection_names:
                    raise ValueError(f"user {user.sub!r}: unknown connection {account.connection!r}")
        for client in self.clients:
            for identifier in client.api_scopes:
                if identifier not in api_identifiers:
                    raise ValueError(f"client {client.client_id!r}: grant on unknown API {identifier!r}")
        api_scopes = {r.identifier: set(r.scopes) for r in self.resource_servers}
        emails = [u.email.lower() for u in self.users if u.email]
        duplicate_emails = {e for e in emails if emails.count(e) > 1}
        if duplicate_emails:
            raise ValueError(f"duplicate user email: {sorted(duplicate_emails)}")
        for user in self.users:
            for identifier, permissions in user.api_permissions.items():
                if identifier not in api_identifiers:
                    raise ValueError(f"user {user.sub!r}: permissions on unknown API {identifier!r}")
                undefined = set(permissions) - api_scopes[identifier]
                if undefined:
                    raise ValueError(f"user {user.sub!r}: {identifier!r} defines no permission {sorted(undefined)}")
        for server in self.resource_servers:
            for client_id in server.token_exchange_client_ids:
                if client_id not in client_ids:
                    raise ValueError(f"API {server.identifier!r}: unknown exchange client {client_id!r}")
        if self.default_audience is not None and self.default_audience not in api_identifiers:
            raise ValueError(f"default_audience {self.default_audience!r} is not a registered API")
        return self

    def client(self, client_id: str) -> ClientConfig:
        for client in self.clients:
            if client.client_id == client_id:
                return client
        raise KeyError(client_id)

    def user_by_email(self, email: str) -> UserConfig:
        """The user who logs in with this email (case-insensitive, like Auth0's database connections)."""
        wanted = email.strip().lower()
        for user in self.users:
            if user.email is not None and user.email.lower() == wanted:
                return user
        raise UnknownUserEmail(email)

    def user_password(self, email: str) -> str:
        """The login page's password of a seeded user, for tests and the demo's printout."""
        return self.user_by_email(email).password.get_secret_value()

    def approvers(self) -> tuple[UserConfig, ...]:
        """The users a deployment names in ApproverSubs (`UserConfig.is_approver`), in configuration order."""
        return tuple(user for user in self.users if user.is_approver)

    @classmethod
    def default(
        cls,
        *,
        api_audience: str = DEFAULT_API_AUDIENCE,
        approval_client_id: str = DEFAULT_APPROVAL_CLIENT_ID,
        executor_client_id: str = DEFAULT_EXECUTOR_CLIENT_ID,
        m2m_client_id: str = DEFAULT_M2M_CLIENT_ID,
        operator_client_id: str = DEFAULT_OPERATOR_CLIENT_ID,
        ops_api_audience: str = DEFAULT_OPS_API_AUDIENCE,
        approver_sub: str = DEFAULT_APPROVER_SUB,
        second_user_sub: str = DEFAULT_SECOND_USER_SUB,
        connection: str = DEFAULT_CONNECTION,
        provider_audience: str = DEFAULT_PROVIDER_AUDIENCE,
        undo_connection: str | None = DEFAULT_UNDO_CONNECTION,
        undo_provider_audience: str = DEFAULT_UNDO_PROVIDER_AUDIENCE,
        app_auth_method: Literal["client_secret_post", "client_secret_basic"] | None = None,
        console_client_id: str = DEFAULT_CONSOLE_CLIENT_ID,
        console_callbacks: tuple[str, ...] = (),
        console_web_origins: tuple[str, ...] = (),
        console_logout_urls: tuple[str, ...] = (),
        cli_client_id: str = DEFAULT_CLI_CLIENT_ID,
    ) -> EmulatorConfig:
        """The AegisCloud tenant: the approval application (CIBA only) and the executor application (the Aegis API's
        Custom API Client, Token Vault exchange only), the kill switch's M2M client (client credentials on the
        Management API), the Aegis API with the aegis-change and aegis-batch RAR types, the ops API with every operator
        scope and an operator client granted all of them (client credentials: the kill switch's tests call `POST /kill`
        and `POST /rearm` with it), the console (SPA: authorization code with PKCE and refresh tokens; its URLs are
        known only once it is served, so they default to none, see `Auth0Emulator.register_application_urls`) and the
        CLI (native: device authorization grant), the remediation connection and (unless `undo_connection` is None) the
        undo connection, two clients of one provider, an approver with an account on both, a second user without one,
        and the console's users: an operator (every ops scope), a viewer (read and audit) and an accounts user (read,
        with a Token Vault account of their own and no approver)."""
        connections = [ConnectionConfig(name=connection, provider_audience=provider_audience)]
        if undo_connection is not None:
            connections.append(
                ConnectionConfig(name=undo_connection, provider_audience=undo_provider_audience, provider=connection)
            )
        approver_accounts = tuple(
            ConnectedAccountConfig(connection=c.name, scopes=("sts:AssumeRoleWithWebIdentity",)) for c in connections
        )
        return cls(
            clients=(
                ClientConfig(
                    client_id=approval_client_id,
                    name="AegisCloud approval",
                    grant_types=(CIBA_GRANT,),
                    token_endpoint_auth_method=app_auth_method,
                ),
                ClientConfig(
                    client_id=executor_client_id,
                    name="AegisCloud executor (Custom API Client of the remediation API)",
                    grant_types=(TOKEN_VAULT_GRANT,),
                    token_endpoint_auth_method=app_auth_method,
                ),
                ClientConfig(
                    client_id=m2m_client_id,
                    name="AegisCloud kill switch",
                    grant_types=(CLIENT_CREDENTIALS_GRANT,),
                    management_scopes=KILLSWITCH_MANAGEMENT_SCOPES,
                ),
                ClientConfig(
                    client_id=operator_client_id,
                    name="AegisCloud kill switch operator",
                    grant_types=(CLIENT_CREDENTIALS_GRANT,),
                    api_scopes={ops_api_audience: OPS_API_SCOPES},
                ),
                ClientConfig(
                    client_id=console_client_id,
                    name="AegisCloud console",
                    app_type="spa",
                    token_endpoint_auth_method="none",
                    grant_types=(AUTHORIZATION_CODE_GRANT, REFRESH_TOKEN_GRANT),
                    my_account_scopes=("read:me:connected_accounts", "delete:me:connected_accounts"),
                    callbacks=console_callbacks,
                    web_origins=console_web_origins,
                    logout_urls=console_logout_urls,
                ),
                ClientConfig(
                    client_id=cli_client_id,
                    name="AegisCloud CLI (aegis-local)",
                    app_type="native",
                    token_endpoint_auth_method="none",
                    grant_types=(DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT),
                ),
            ),
            resource_servers=(
                ResourceServerConfig(
                    identifier=api_audience,
                    name="AegisCloud remediation API",
                    scopes=("remediate:approved_change",),
                    authorization_details_types=(AEGIS_CHANGE_TYPE, AEGIS_BATCH_TYPE),
                    # Auth0's advice for the access-token exchange, and what the batch approvals assume.
                    token_lifetime_seconds=600,
                    token_exchange_client_ids=(executor_client_id,),
                ),
                ResourceServerConfig(
                    identifier=ops_api_audience,
                    name="AegisCloud ops API",
                    scopes=OPS_API_SCOPES,
                ),
            ),
            users=(
                UserConfig(
                    sub=approver_sub,
                    email=DEFAULT_APPROVER_EMAIL,
                    name="Aegis Approver",
                    connected_accounts=approver_accounts,
                    api_permissions={ops_api_audience: (READ_SCOPE,)},
                ),
                UserConfig(sub=second_user_sub, email="observer@aegis.local", name="Aegis Observer"),
                UserConfig(
                    sub=DEFAULT_OPERATOR_SUB,
                    email=DEFAULT_OPERATOR_EMAIL,
                    name="Aegis Operator",
                    api_permissions={ops_api_audience: OPS_API_SCOPES},
                ),
                UserConfig(
                    sub=DEFAULT_VIEWER_SUB,
                    email=DEFAULT_VIEWER_EMAIL,
                    name="Aegis Viewer",
                    api_permissions={ops_api_audience: (READ_SCOPE, AUDIT_SCOPE)},
                ),
                UserConfig(
                    sub=DEFAULT_ACCOUNTS_SUB,
                    email=DEFAULT_ACCOUNTS_EMAIL,
                    name="Aegis Accounts",
                    connected_accounts=(
                        ConnectedAccountConfig(connection=connection, scopes=("sts:AssumeRoleWithWebIdentity",)),
                    ),
                    api_permissions={ops_api_audience: (READ_SCOPE,)},
                    # Their account is there to be deleted from the console; it makes them no approver.
                    approver=False,
                ),
            ),
            connections=tuple(connections),
        )
