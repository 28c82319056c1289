"""The Auth0 side of the kill switch, through the Management API with a client-credentials token.

Revoking: `POST /api/v2/users/{id}/revoke-access` ends the approver's sessions and revokes their refresh tokens;
`DELETE /api/v2/grants?user_id=` removes their grants. Access tokens cannot be revoked at Auth0 (they expire).

Token Vault: Auth0 has no administrative call that deletes a user's connected account (only the user's own
My Account API does, and the kill switch holds no user token). So, for each approver who holds an account on the
configured connection, the kill switch blocks the user instead: a blocked user can neither approve a request
nor have a token exchanged at Token Vault. Re-arming unblocks exactly the users the kill switch blocked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from aegis_auth.errors import OAuthProtocolError, ProviderUnavailable
from aegis_auth.oidc import OidcClient
from aegis_killswitch.report import StepOutcome, describe_error


class ManagementApiFailed(Exception):
    """The Management API refused a call; the message is Auth0's `errorCode` and short message, never a body."""

    def __init__(self, status_code: int, what: str, error_code: str = "", message: str = "") -> None:
        detail = " ".join(part for part in (error_code, message[:200]) if part)
        super().__init__(f"{what}: HTTP {status_code}" + (f" {detail}" if detail else ""))
        self.status_code = status_code


class Auth0Unreachable(ProviderUnavailable):
    """A call not attempted because Auth0 already failed to answer (or refused the token) in this operation."""


class Auth0Management:
    """The few Management API calls the kill switch makes. The access token lives in this object only, for one
    trigger or re-arm, and is never logged or returned.

    One object serves one operation. Once the token request fails, or Auth0 does not answer a call (transport error,
    5xx), later calls fail at once with Auth0Unreachable: a hanging Auth0 costs one timeout, not one per approver
    and call, so the steps after this one still run within the Lambda's time.
    """

    def __init__(self, oidc: OidcClient, audience: str, *, http: httpx.Client | None = None) -> None:
        self._oidc = oidc
        self._audience = audience
        self._base = audience if audience.endswith("/") else audience + "/"
        self._http = http or oidc.http
        self._token: str | None = None
        self._broken: str | None = None

    def _fail_fast(self) -> None:
        if self._broken is not None:
            raise Auth0Unreachable(f"not attempted: {self._broken}")

    def _access_token(self) -> str:
        self._fail_fast()
        if self._token is None:
            try:
                form = {"grant_type": "client_credentials", "audience": self._audience}
                body = self._oidc.post_token(form).json_or_raise()
                token = body.get("access_token")
                if not isinstance(token, str) or not token:
                    raise OAuthProtocolError(200, "invalid_token_response", "no access_token in the token response")
            except Exception as error:
                self._broken = f"no Management API token ({describe_error(error)})"
                raise
            self._token = token
        return self._token

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access_token()}", "Accept": "application/json"}
        try:
            response = self._http.request(method, self._base + path, headers=headers, **kwargs)
        except httpx.TransportError as error:
            self._broken = f"the Management API did not answer ({type(error).__name__}, {what})"
            raise ProviderUnavailable(f"{type(error).__name__} calling the Management API ({what})") from None
        if response.status_code >= 500:
            self._broken = f"the Management API answered HTTP {response.status_code} ({what})"
            raise ProviderUnavailable(f"HTTP {response.status_code} from the Management API ({what})")
        if response.status_code >= 300:
            error_code, message = _management_error(response)
            raise ManagementApiFailed(response.status_code, what, error_code, message)
        return response

    @staticmethod
    def _user_path(sub: str) -> str:
        # Auth0 user ids contain "|", which must be percent-encoded in a path segment.
        return "users/" + quote(sub, safe="")

    def revoke_access(self, sub: str) -> None:
        self._call("POST", f"{self._user_path(sub)}/revoke-access", "revoke-access", json={})

    def delete_grants(self, sub: str) -> None:
        self._call("DELETE", "grants", "delete grants", params={"user_id": sub})

    def connected_accounts(self, sub: str, connection: str) -> list[str]:
        """Ids of the user's connected accounts on `connection`."""
        body = self._call("GET", f"{self._user_path(sub)}/connected-accounts", "list connected accounts").json()
        accounts = body.get("connected_accounts", []) if isinstance(body, dict) else []
        return [
            str(account.get("id"))
            for account in accounts
            if isinstance(account, dict) and account.get("connection") == connection
        ]

    def is_blocked(self, sub: str) -> bool:
        body = self._call("GET", self._user_path(sub), "get user").json()
        return bool(isinstance(body, dict) and body.get("blocked"))

    def set_blocked(self, sub: str, blocked: bool) -> None:
        what = "block user" if blocked else "unblock user"
        self._call("PATCH", self._user_path(sub), what, json={"blocked": blocked})


def _management_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("errorCode") or body.get("error") or ""), str(body.get("message") or "")


def _per_user_outcome(step: str, done: list[str], failures: dict[str, str], total: int, verb: str) -> StepOutcome:
    details: dict[str, Any] = {verb: done}
    if failures:
        details["failures"] = failures
        return StepOutcome(
            step=step,
            ok=False,
            reason=f"{verb} {len(done)} of {total} approvers; failed: "
            + "; ".join(f"{sub}: {why}" for sub, why in failures.items()),
            details=details,
        )
    return StepOutcome(step=step, ok=True, reason=f"{verb} {len(done)} of {total} approvers", details=details)


def revoke_approver_sessions(management: Callable[[], Auth0Management], approver_subs: tuple[str, ...]) -> StepOutcome:
    step = "revoke_auth0_sessions"
    if not approver_subs:
        return StepOutcome(step=step, ok=True, reason="no approver configured (APPROVER_SUBS is empty)")
    try:
        client = management()
    except Exception as error:
        return StepOutcome(step=step, ok=False, reason=f"no Management API client: {describe_error(error)}")
    done: list[str] = []
    failures: dict[str, str] = {}
    for sub in approver_subs:
        problems: list[str] = []
        # Both calls are attempted: losing one must not cost the other.
        for call in (client.revoke_access, client.delete_grants):
            try:
                call(sub)
            except Exception as error:
                problems.append(describe_error(error))
        if problems:
            failures[sub] = "; ".join(problems)
        else:
            done.append(sub)
    return _per_user_outcome(step, done, failures, len(approver_subs), "revoked")


def block_token_vault_approvers(
    management: Callable[[], Auth0Management],
    approver_subs: tuple[str, ...],
    connection: str,
    remember_blocked: Callable[[set[str]], None],
) -> StepOutcome:
    """Block each approver holding a connected account on `connection` (see the module docstring for why)."""
    step = "block_token_vault_approvers"
    if not connection:
        return StepOutcome(step=step, ok=True, reason="no Token Vault connection configured")
    if not approver_subs:
        return StepOutcome(step=step, ok=True, reason="no approver configured (APPROVER_SUBS is empty)")
    try:
        client = management()
    except Exception as error:
        return StepOutcome(step=step, ok=False, reason=f"no Management API client: {describe_error(error)}")
    blocked: list[str] = []
    without_account: list[str] = []
    already_blocked: list[str] = []
    failures: dict[str, str] = {}
    for sub in approver_subs:
        try:
            if not client.connected_accounts(sub, connection):
                without_account.append(sub)
                continue
            if client.is_blocked(sub):
                # Blocked by an administrator or by an earlier trigger that recorded it: not ours to unblock.
                already_blocked.append(sub)
                continue
        except Exception as error:
            failures[sub] = describe_error(error)
            continue
        try:
            # Recorded before blocking, so that a crash in between leaves a re-arm able to undo the block.
            remember_blocked({sub})
        except Exception as error:
            failures[sub] = f"could not record the block for re-arm ({describe_error(error)}); blocked anyway"
        try:
            client.set_blocked(sub, True)
            blocked.append(sub)
        except Exception as error:
            failures[sub] = describe_error(error)
    details: dict[str, Any] = {
        "connection": connection,
        "blocked": blocked,
        "already_blocked": already_blocked,
        "without_connected_account": without_account,
    }
    if failures:
        details["failures"] = failures
        return StepOutcome(
            step=step,
            ok=False,
            reason=f"blocked {len(blocked)} approvers with a {connection} account; failed: "
            + "; ".join(f"{sub}: {why}" for sub, why in failures.items()),
            details=details,
        )
    return StepOutcome(
        step=step,
        ok=True,
        reason=(
            f"blocked {len(blocked)} approvers holding a {connection} account "
            f"({len(already_blocked)} already blocked, {len(without_account)} without one); "
            "Auth0 offers no administrative delete of connected accounts"
        ),
        details=details,
    )


def unblock_approvers(
    management: Callable[[], Auth0Management],
    blocked_by_killswitch: set[str],
    forget_blocked: Callable[[set[str]], None],
) -> StepOutcome:
    step = "unblock_approvers"
    if not blocked_by_killswitch:
        return StepOutcome(step=step, ok=True, reason="the kill switch had blocked no approver")
    try:
        client = management()
    except Exception as error:
        return StepOutcome(step=step, ok=False, reason=f"no Management API client: {describe_error(error)}")
    done: list[str] = []
    failures: dict[str, str] = {}
    for sub in sorted(blocked_by_killswitch):
        try:
            client.set_blocked(sub, False)
            done.append(sub)
        except Exception as error:
            failures[sub] = describe_error(error)
    try:
        forget_blocked(set(done))
    except Exception as error:
        failures["(record)"] = f"unblocked, but could not update the record: {describe_error(error)}"
    return _per_user_outcome(step, done, failures, len(blocked_by_killswitch), "unblocked")
