"""The Auth0 side of the kill switch, through the Management API with a client-credentials token.

Revoking: `POST /api/v2/users/{id}/revoke-access` ends the approver's sessions and revokes their refresh tokens;
`DELETE /api/v2/grants?user_id=` removes their grants. Access tokens cannot be revoked at Auth0 (they expire).

Token Vault: Auth0 has no administrative call that deletes a user's connected account (only the user's own
My Account API does, and the kill switch holds no user token). So, for each approver who holds an account on the
configured connection, the kill switch blocks the user instead: a blocked user can neither approve a request
nor have a token exchanged at Token Vault. Re-arming unblocks exactly the users the kill switch blocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

import httpx

from aegis_auth.errors import OAuthProtocolError
from aegis_auth.oidc import OidcClient
from aegis_jwt.errors import ProviderUnavailable
from aegis_killswitch.errors import Auth0Unreachable, ManagementApiFailed
from aegis_killswitch.report import StepOutcome, describe_error, failed_step


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


# ----------------------------------------------------------------------------------------------- steps


def _with_management(
    step: str, management: Callable[[], Auth0Management], run: Callable[[Auth0Management], StepOutcome]
) -> StepOutcome:
    """Run a step's calls with the operation's Management API client; without one, the step fails."""
    try:
        client = management()
    except Exception as error:
        return StepOutcome(step=step, ok=False, reason=f"no Management API client: {describe_error(error)}")
    return run(client)


def _failure(call: Callable[..., object], *args: Any) -> str | None:
    """Why `call(*args)` failed, or None if it succeeded."""
    try:
        call(*args)
    except Exception as error:
        return describe_error(error)
    return None


def _each(subs: Iterable[str], attempt: Callable[[str], str | None]) -> tuple[list[str], dict[str, str]]:
    """Attempt something for every approver, whatever happens to the others: who succeeded, and why the rest failed."""
    done: list[str] = []
    failures: dict[str, str] = {}
    for sub in subs:
        why = attempt(sub)
        if why is None:
            done.append(sub)
        else:
            failures[sub] = why
    return done, failures


def _per_user_outcome(step: str, done: list[str], failures: dict[str, str], total: int, verb: str) -> StepOutcome:
    details: dict[str, Any] = {verb: done}
    if failures:
        return failed_step(step, f"{verb} {len(done)} of {total} approvers; failed: ", failures, details)
    return StepOutcome(step=step, ok=True, reason=f"{verb} {len(done)} of {total} approvers", details=details)


def revoke_approver_sessions(management: Callable[[], Auth0Management], approver_subs: tuple[str, ...]) -> StepOutcome:
    step = "revoke_auth0_sessions"
    if not approver_subs:
        return StepOutcome(step=step, ok=True, reason="no approver configured (APPROVER_SUBS is empty)")

    def revoke(client: Auth0Management) -> StepOutcome:
        def both(sub: str) -> str | None:
            # Both calls are attempted: losing one must not cost the other.
            problems = [
                why for why in (_failure(client.revoke_access, sub), _failure(client.delete_grants, sub)) if why
            ]
            return "; ".join(problems) or None

        done, failures = _each(approver_subs, both)
        return _per_user_outcome(step, done, failures, len(approver_subs), "revoked")

    return _with_management(step, management, revoke)


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

    def block(client: Auth0Management) -> StepOutcome:
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
            # Recorded before blocking, so that a crash in between leaves a re-arm able to undo the block.
            unrecorded = _failure(remember_blocked, {sub})
            if unrecorded is not None:
                failures[sub] = f"could not record the block for re-arm ({unrecorded}); blocked anyway"
            why = _failure(client.set_blocked, sub, True)
            if why is None:
                blocked.append(sub)
            else:
                failures[sub] = why
        details: dict[str, Any] = {
            "connection": connection,
            "blocked": blocked,
            "already_blocked": already_blocked,
            "without_connected_account": without_account,
        }
        if failures:
            summary = f"blocked {len(blocked)} approvers with a {connection} account; failed: "
            return failed_step(step, summary, failures, details)
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

    return _with_management(step, management, block)


def unblock_approvers(
    management: Callable[[], Auth0Management],
    blocked_by_killswitch: set[str],
    forget_blocked: Callable[[set[str]], None],
) -> StepOutcome:
    step = "unblock_approvers"
    if not blocked_by_killswitch:
        return StepOutcome(step=step, ok=True, reason="the kill switch had blocked no approver")

    def unblock(client: Auth0Management) -> StepOutcome:
        done, failures = _each(sorted(blocked_by_killswitch), lambda sub: _failure(client.set_blocked, sub, False))
        unrecorded = _failure(forget_blocked, set(done))
        if unrecorded is not None:
            failures["(record)"] = f"unblocked, but could not update the record: {unrecorded}"
        return _per_user_outcome(step, done, failures, len(blocked_by_killswitch), "unblocked")

    return _with_management(step, management, unblock)
