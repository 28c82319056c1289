"""The approval function's configuration, read once from the environment the template sets (docs/CONTRACTS.md).
An invalid setting is `Approval.InvalidSettings` naming the variable, never its value.

The approvers, their routing and the batch and two-person thresholds are the `ApprovalPolicy` the validator plans
with (`aegis.approvals.policy`, same variables): the function checks every request it is asked to send against its
own copy, so a request naming an approver the policy does not allow for one of its changes is refused. Which approver
a push goes to comes from the event (one invocation per approver of a request), never from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aegis.approvals.policy import ApprovalPolicy
from aegis.settings import Environment
from aegis_approval.errors import InvalidSettings, RefreshTokenScopeRefused
from aegis_approval.pacing import PUSHES_PER_MINUTE_DEFAULT, PUSHES_PER_MINUTE_RANGE
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
    policy: ApprovalPolicy
    scope: tuple[str, ...]
    requested_expiry: int
    client_auth_method: ClientAuthMethod
    function_name: str
    # RFC 9493 `iss_sub` JSON (Auth0's format) or the approver value as-is (providers that take a username).
    login_hint_format: LoginHintFormat = "iss_sub"
    # Minutes after the mission's first approval request at which one `approval.waiting` record is appended.
    waiting_notify_minutes: int = WAITING_NOTIFY_MINUTES_DEFAULT
    # At most this many CIBA requests (pushes) per approver in any sliding minute (Auth0 allows 5 per user).
    pushes_per_minute: int = PUSHES_PER_MINUTE_DEFAULT

    def __post_init__(self) -> None:
        # Here rather than in from_env: whoever builds the settings, the function never starts with this scope.
        if any(item.casefold() == REFRESH_TOKEN_SCOPE for item in self.scope):
            raise RefreshTokenScopeRefused(
                f"CIBA_SCOPE must not contain {REFRESH_TOKEN_SCOPE}: no refresh token may cross the hand-off"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApprovalSettings:
        env = Environment(InvalidSettings, environ)
        policy = ApprovalPolicy.from_env(environ, InvalidSettings)
        expiry = env.optional("CIBA_REQUESTED_EXPIRY", str(REQUESTED_EXPIRY_MAX))
        if not expiry.isdigit() or not 1 <= int(expiry) <= REQUESTED_EXPIRY_MAX:
            raise env.invalid(f"CIBA_REQUESTED_EXPIRY must be an integer from 1 to {REQUESTED_EXPIRY_MAX}")
        waiting = env.number("APPROVAL_WAITING_NOTIFY_MINUTES", int, WAITING_NOTIFY_MINUTES_DEFAULT)
        if waiting not in WAITING_NOTIFY_MINUTES_RANGE:
            raise env.invalid(
                "APPROVAL_WAITING_NOTIFY_MINUTES must be a whole number of minutes from "
                f"{WAITING_NOTIFY_MINUTES_RANGE.start} to {WAITING_NOTIFY_MINUTES_RANGE.stop - 1}"
            )
        pushes = env.number("APPROVER_PUSHES_PER_MINUTE", int, PUSHES_PER_MINUTE_DEFAULT)
        if pushes not in PUSHES_PER_MINUTE_RANGE:
            raise env.invalid(
                "APPROVER_PUSHES_PER_MINUTE must be a whole number from "
                f"{PUSHES_PER_MINUTE_RANGE.start} to {PUSHES_PER_MINUTE_RANGE.stop - 1}"
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
            policy=policy,
            scope=tuple(scope),
            requested_expiry=int(expiry),
            client_auth_method=env.choice("CLIENT_AUTH_METHOD", CLIENT_AUTH_METHODS, "client_secret_post"),
            function_name=env.required("APPROVAL_FUNCTION_NAME"),
            login_hint_format=env.choice("CIBA_LOGIN_HINT_FORMAT", LOGIN_HINT_FORMATS, "iss_sub"),
            waiting_notify_minutes=waiting,
            pushes_per_minute=pushes,
        )
