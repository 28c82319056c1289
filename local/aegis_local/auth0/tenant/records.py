"""What the emulated tenant keeps: CIBA requests, refresh tokens, users with their connected accounts, and the
Management API calls it accepted; and what a request presented to authenticate its client."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

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
    connected_accounts: list[ConnectedAccount] = field(default_factory=list)


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
