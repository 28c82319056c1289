"""The approval function's configuration, read once from the environment the template sets (docs/CONTRACTS.md).
An invalid setting is `Approval.InvalidSettings` naming the variable, never its value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aegis.settings import Environment
from aegis_approval.errors import InvalidSettings, RefreshTokenScopeRefused
from aegis_auth.oidc import CLIENT_AUTH_METHODS, ClientAuthMethod

REQUESTED_EXPIRY_MAX = 300  # Auth0 sends a Guardian push only for requested_expiry <= 300 s
LoginHintFormat = Literal["iss_sub", "opaque"]
LOGIN_HINT_FORMATS: tuple[LoginHintFormat, ...] = ("iss_sub", "opaque")
# The scope that makes the provider issue a refresh token with the approval.
REFRESH_TOKEN_SCOPE = "offline_access"
# ApprovalWaitingNotifyMinutes: after how long a mission's changes waiting for approval are told to the operator.
WAITING_NOTIFY_MINUTES_DEFAULT = 15
WAITING_NOTIFY_MINUTES_RANGE = range(1, 10081)


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
    # Minutes after the mission's first approval request at which one `approval.waiting` record is appended.
    waiting_notify_minutes: int = WAITING_NOTIFY_MINUTES_DEFAULT

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApprovalSettings:
        env = Environment(InvalidSettings, environ)
        approvers = env.items("APPROVER_SUBS")
        if not approvers:
            raise env.invalid("APPROVER_SUBS names no approver")
        expiry = env.optional("CIBA_REQUESTED_EXPIRY", str(REQUESTED_EXPIRY_MAX))
        if not expiry.isdigit() or not 1 <= int(expiry) <= REQUESTED_EXPIRY_MAX:
            raise env.invalid(f"CIBA_REQUESTED_EXPIRY must be an integer from 1 to {REQUESTED_EXPIRY_MAX}")
        waiting = env.number("APPROVAL_WAITING_NOTIFY_MINUTES", int, WAITING_NOTIFY_MINUTES_DEFAULT)
        if waiting not in WAITING_NOTIFY_MINUTES_RANGE:
            raise env.invalid(
                "APPROVAL_WAITING_NOTIFY_MINUTES must be a whole number of minutes from "
                f"{WAITING_NOTIFY_MINUTES_RANGE.start} to {WAITING_NOTIFY_MINUTES_RANGE.stop - 1}"
            )
        scope = ["openid"]
        for item in env.optional("CIBA_SCOPE").replace(",", " ").split():
            if item not in scope:
                scope.append(item)
        return cls(
            handoff_table=env.required("HANDOFF_TABLE"),
            continuations_table=env.required("CONTINUATIONS_TABLE"),
            handoff_key_id=env.required("HANDOFF_KEY_ID"),
            control_table=env.required("CONTROL_TABLE"),
            audit_table=env.required("AUDIT_TABLE"),
            issuer=env.required("AUTH0_ISSUER"),
            client_id=env.required("AUTH0_CLIENT_ID"),
            client_secret_arn=env.required("AUTH0_CLIENT_SECRET_ARN"),
            audience=env.required("AUTH0_AUDIENCE"),
            approver_subs=approvers,
            scope=tuple(scope),
            requested_expiry=int(expiry),
            client_auth_method=env.choice("CLIENT_AUTH_METHOD", CLIENT_AUTH_METHODS, "client_secret_post"),
            function_name=env.required("APPROVAL_FUNCTION_NAME"),
            login_hint_format=env.choice("CIBA_LOGIN_HINT_FORMAT", LOGIN_HINT_FORMATS, "iss_sub"),
            waiting_notify_minutes=waiting,
        )
