"""The approval function's configuration, read once from the environment the template sets (docs/CONTRACTS.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, cast

from aegis_auth.oidc import CLIENT_AUTH_METHODS, ClientAuthMethod

REQUESTED_EXPIRY_MAX = 300  # Auth0 sends a Guardian push only for requested_expiry <= 300 s
LoginHintFormat = Literal["iss_sub", "opaque"]
# The scope that makes the provider issue a refresh token with the approval.
REFRESH_TOKEN_SCOPE = "offline_access"


class ApprovalConfigError(ValueError):
    """The approval function is deployed with a missing or invalid setting."""


class RefreshTokenScopeRefused(ApprovalConfigError):
    """CIBA_SCOPE asks for offline_access. No refresh token may cross the hand-off: it would outlive the one change
    approved, and the executor, a client of its own, could not even revoke it."""


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ApprovalConfigError(f"environment variable {name} is required")
    return value


@dataclass(frozen=True)
class ApprovalSettings:
    handoff_table: str
    # Continuations and task claims (aegis_approval.continuation): a table no other role can read.
    continuations_table: str
    handoff_key_id: str
    control_table: str
    audit_table: str
    issuer: str
    client_id: str
    client_secret_arn: str
    audience: str
    approver_subs: tuple[str, ...]
    scope: tuple[str, ...]
    requested_expiry: int
    client_auth_method: ClientAuthMethod
    function_name: str
    # RFC 9493 `iss_sub` JSON (Auth0's format) or the approver value as-is (providers that take a username).
    login_hint_format: LoginHintFormat = "iss_sub"

    def __post_init__(self) -> None:
        # Here rather than in from_env: whoever builds the settings, the function never starts with this scope.
        if any(item.casefold() == REFRESH_TOKEN_SCOPE for item in self.scope):
            raise RefreshTokenScopeRefused(
                f"CIBA_SCOPE must not contain {REFRESH_TOKEN_SCOPE}: no refresh token may cross the hand-off"
            )

    @property
    def approver_sub(self) -> str:
        """The approver the push goes to: the first configured one (CIBA addresses exactly one user)."""
        return self.approver_subs[0]

    @classmethod
    def from_env(cls) -> ApprovalSettings:
        approvers = tuple(part.strip() for part in _required("APPROVER_SUBS").split(",") if part.strip())
        if not approvers:
            raise ApprovalConfigError("APPROVER_SUBS names no approver")
        expiry_text = os.environ.get("CIBA_REQUESTED_EXPIRY", "").strip() or str(REQUESTED_EXPIRY_MAX)
        if not expiry_text.isdigit() or not 1 <= int(expiry_text) <= REQUESTED_EXPIRY_MAX:
            raise ApprovalConfigError(f"CIBA_REQUESTED_EXPIRY must be an integer from 1 to {REQUESTED_EXPIRY_MAX}")
        method = os.environ.get("CLIENT_AUTH_METHOD", "").strip() or "client_secret_post"
        if method not in CLIENT_AUTH_METHODS:
            raise ApprovalConfigError(f"CLIENT_AUTH_METHOD must be one of {CLIENT_AUTH_METHODS}")
        hint_format = os.environ.get("CIBA_LOGIN_HINT_FORMAT", "").strip() or "iss_sub"
        if hint_format not in ("iss_sub", "opaque"):
            raise ApprovalConfigError("CIBA_LOGIN_HINT_FORMAT must be iss_sub or opaque")
        scope = ["openid"]
        for item in os.environ.get("CIBA_SCOPE", "").replace(",", " ").split():
            if item not in scope:
                scope.append(item)
        return cls(
            handoff_table=_required("HANDOFF_TABLE"),
            continuations_table=_required("CONTINUATIONS_TABLE"),
            handoff_key_id=_required("HANDOFF_KEY_ID"),
            control_table=_required("CONTROL_TABLE"),
            audit_table=_required("AUDIT_TABLE"),
            issuer=_required("AUTH0_ISSUER"),
            client_id=_required("AUTH0_CLIENT_ID"),
            client_secret_arn=_required("AUTH0_CLIENT_SECRET_ARN"),
            audience=_required("AUTH0_AUDIENCE"),
            approver_subs=approvers,
            scope=tuple(scope),
            requested_expiry=int(expiry_text),
            client_auth_method=cast(ClientAuthMethod, method),
            function_name=_required("APPROVAL_FUNCTION_NAME"),
            login_hint_format=cast(LoginHintFormat, hint_format),
        )
