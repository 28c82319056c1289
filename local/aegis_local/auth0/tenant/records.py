"""What the emulated tenant keeps: CIBA requests, refresh tokens, users with their connected accounts, browser logins
(unfinished logins, login sessions, authorization codes), device authorizations, and the Management API calls it
accepted; and what a request presented to authenticate its client."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import SecretStr

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
    # Rotation (public clients): every token of one login shares a family; presenting a rotated token again is
    # a replay, and revokes the whole family.
    family: str = ""
    rotated: bool = False
    permissions: tuple[str, ...] | None = None


@dataclass
class ConnectedAccount:
    account_id: str
    connection: str
    scopes: tuple[str, ...]
    provider_subject: str
    created_at: float

    def body(self) -> dict[str, Any]:
        """The account as the My Account and Management APIs list it."""
        return {
            "id": self.account_id,
            "connection": self.connection,
            "access_type": "offline",
            "scopes": list(self.scopes),
            "created_at": iso(self.created_at),
        }


@dataclass
class UserState:
    sub: str
    email: str | None
    name: str | None
    guardian_enrolled: bool
    blocked: bool
    password: SecretStr
    api_permissions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    connected_accounts: list[ConnectedAccount] = field(default_factory=list)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated `/authorize` request, kept while its user logs in and then bound to the code it yields."""

    client_id: str
    redirect_uri: str
    response_mode: Literal["query", "web_message"]
    state: str | None
    nonce: str | None
    code_challenge: str
    audience: str | None
    # What was asked; the scope granted is computed for the user who logs in.
    scope: tuple[str, ...]


@dataclass
class LoginTransaction:
    """An `/authorize` waiting on its login page: its id is the page's hidden field."""

    transaction_id: str
    request: AuthorizationRequest
    expires_at: float


@dataclass
class LoginSession:
    """A browser's login at the tenant (its id is the session cookie's value)."""

    session_id: str
    sub: str
    created_at: float
    expires_at: float
    # The hidden field of the tenant's own forms that act on the session (the device confirmation).
    form_token: str


@dataclass
class AuthorizationCode:
    code: str
    request: AuthorizationRequest
    sub: str
    scope: tuple[str, ...]
    permissions: tuple[str, ...] | None
    expires_at: float
    used: bool = False
    # RFC 6749 4.1.2: a code presented twice revokes what it yielded.
    refresh_tokens: list[str] = field(default_factory=list)


class DeviceStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    # The client was told (expired_token, access_denied or the tokens): later polls get invalid_grant.
    FINISHED = "finished"


@dataclass
class DeviceAuthorization:
    device_code: str
    user_code: str
    client_id: str
    audience: str | None
    scope: tuple[str, ...]
    expires_at: float
    interval: int
    last_polled_at: float | None = None
    status: DeviceStatus = DeviceStatus.PENDING
    sub: str | None = None


@dataclass(frozen=True)
class ManagementEvent:
    """A kill-switch-relevant call the Management API accepted, for assertions in tests."""

    action: str
    user_id: str
    at: float
    detail: str = ""


def iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
