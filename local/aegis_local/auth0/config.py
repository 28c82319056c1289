"""The emulated tenant's configuration: clients, APIs, users and Token Vault connections.

Secrets are generated at run time (never committed) and kept as `SecretStr` so that printing a config
does not leak them.
"""

from __future__ import annotations

import secrets
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
TOKEN_VAULT_GRANT = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
CLIENT_CREDENTIALS_GRANT = "client_credentials"
REFRESH_TOKEN_GRANT = "refresh_token"
SUPPORTED_GRANTS = (CLIENT_CREDENTIALS_GRANT, REFRESH_TOKEN_GRANT, CIBA_GRANT, TOKEN_VAULT_GRANT)

AEGIS_CHANGE_TYPE = "urn:auth0:schemas:authorization-details:v1:aegis-change"
DEFAULT_API_AUDIENCE = "https://aegis.local/api"
# One application per trust domain: the approval function's (CIBA only) and the executor's (the API's Custom API
# Client: Token Vault exchange only). Neither can do the other's part.
DEFAULT_APPROVAL_CLIENT_ID = "aegis-approval-app"
DEFAULT_EXECUTOR_CLIENT_ID = "aegis-executor-app"
DEFAULT_M2M_CLIENT_ID = "aegis-killswitch-m2m"
DEFAULT_OPERATOR_CLIENT_ID = "aegis-killswitch-operator"
DEFAULT_OPS_API_AUDIENCE = "https://aegis.local/ops"
# The scopes the kill switch's HTTP route requires (aegis_killswitch.caller_auth): one to halt, one to re-arm.
KILLSWITCH_SCOPE = "aegis:killswitch"
REARM_SCOPE = "aegis:rearm"
# Every scope of the ops API (the operators' HTTP API and the kill switch share its audience).
OPS_API_SCOPES = ("aegis:read", "aegis:audit", "aegis:scan", "aegis:undo", KILLSWITCH_SCOPE, REARM_SCOPE)
DEFAULT_APPROVER_SUB = "auth0|aegis-approver"
DEFAULT_SECOND_USER_SUB = "auth0|aegis-observer"
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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClientConfig(_Frozen):
    """An Auth0 application (confidential client)."""

    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(default_factory=_generated_secret)
    name: str = ""
    grant_types: tuple[str, ...] = ()
    # None accepts both secret methods, like a tenant that does not pin the method.
    token_endpoint_auth_method: Literal["client_secret_post", "client_secret_basic"] | None = None
    # Client grant on the tenant's Management API (`<issuer>api/v2/`).
    management_scopes: tuple[str, ...] = ()
    # Client grants on custom APIs: identifier -> scopes, for client_credentials.
    api_scopes: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_grants(self) -> Self:
        unknown = set(self.grant_types) - set(SUPPORTED_GRANTS)
        if unknown:
            raise ValueError(f"client {self.client_id!r}: unsupported grant types {sorted(unknown)}")
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
    guardian_enrolled: bool = True
    blocked: bool = False
    connected_accounts: tuple[ConnectedAccountConfig, ...] = ()


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
    ) -> EmulatorConfig:
        """The AegisCloud tenant: the approval application (CIBA only) and the executor application (the Aegis
        API's Custom API Client, Token Vault exchange only), the kill switch's M2M client (client credentials on
        the Management API), the Aegis API with the aegis-change RAR type, the kill switch's API with its halt and
        re-arm scopes and an operator client granted both (the caller of `POST /kill` and `POST /rearm`), the
        remediation connection and (unless `undo_connection` is None) the undo connection, two clients of one
        provider, an approver with an account on both and a second user without one."""
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
                    api_scopes={ops_api_audience: (KILLSWITCH_SCOPE, REARM_SCOPE)},
                ),
            ),
            resource_servers=(
                ResourceServerConfig(
                    identifier=api_audience,
                    name="AegisCloud remediation API",
                    scopes=("remediate:approved_change",),
                    authorization_details_types=(AEGIS_CHANGE_TYPE,),
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
                    email="approver@aegis.local",
                    name="Aegis Approver",
                    connected_accounts=approver_accounts,
                ),
                UserConfig(sub=second_user_sub, email="observer@aegis.local", name="Aegis Observer"),
            ),
            connections=tuple(connections),
        )
