"""The Management API calls the project makes (the kill switch's: block, revoke access, delete refresh tokens,
sessions and grants; the executor's reads of users and their connected accounts), with their bearer checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aegis_local.auth0.errors import ManagementApiError
from aegis_local.auth0.keys import TokenInvalid, audiences
from aegis_local.auth0.tenant.base import TenantBase, split_scope
from aegis_local.auth0.tenant.records import ManagementEvent, UserState


class ManagementApi(TenantBase):
    def authorize_management(self, bearer: str | None, required_scopes: tuple[str, ...]) -> dict[str, Any]:
        if not bearer:
            raise ManagementApiError(401, "Missing authentication", "missing_authentication")
        try:
            claims = self.keys.verify(bearer, issuer=self.issuer, now=self.clock())
        except TokenInvalid as exc:
            raise ManagementApiError(401, "Invalid token", "invalid_token") from exc
        if self.management_audience not in audiences(claims):
            raise ManagementApiError(401, f"Bad audience: {claims.get('aud')}", "invalid_token")
        held = set(split_scope(claims.get("scope")))
        if not set(required_scopes) <= held:
            raise ManagementApiError(
                403, f"Insufficient scope, expected all of: {' '.join(required_scopes)}", "insufficient_scope"
            )
        return claims

    def _management_user(self, user_id: str) -> UserState:
        user = self._users.get(user_id)
        if user is None:
            raise ManagementApiError(404, "The user does not exist.", "inexistent_user")
        return user

    def _revoke_user_refresh_tokens(self, user_id: str) -> int:
        count = 0
        for record in self._refresh_tokens.values():
            if record.sub == user_id and not record.revoked:
                record.revoked = True
                count += 1
        return count

    def _log(self, action: str, user_id: str, detail: str = "") -> None:
        self._events.append(ManagementEvent(action=action, user_id=user_id, at=self.clock(), detail=detail))

    def revoke_access(self, user_id: str, body: Any) -> None:
        if body is None:
            body = {}
        _check_body(body, {"session_id": str, "preserve_refresh_tokens": bool})
        with self._lock:
            self._management_user(user_id)
            preserve = bool(body.get("preserve_refresh_tokens", False))
            revoked = 0 if preserve else self._revoke_user_refresh_tokens(user_id)
            # CIBA creates no browser session; a console or activation-page login does, and ends here too.
            self._end_login_sessions(user_id, body.get("session_id"))
            self._log("revoke_access", user_id, f"refresh_tokens_revoked={revoked}")

    def delete_user_refresh_tokens(self, user_id: str) -> None:
        with self._lock:
            self._management_user(user_id)
            revoked = self._revoke_user_refresh_tokens(user_id)
            self._log("delete_refresh_tokens", user_id, f"refresh_tokens_revoked={revoked}")

    def delete_user_sessions(self, user_id: str) -> None:
        with self._lock:
            self._management_user(user_id)
            ended = self._end_login_sessions(user_id)
            self._log("delete_sessions", user_id, f"sessions_ended={ended}")

    def delete_grants(self, user_id: str | None) -> None:
        if not user_id:
            raise ManagementApiError(400, "Query validation error: user_id is required", "invalid_query_string")
        with self._lock:
            # CIBA stores no consent grant, so deleting grants leaves CIBA refresh tokens alone, as on Auth0.
            self._log("delete_grants", user_id)

    def get_user(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            return self._user_body(self._management_user(user_id))

    def patch_user(self, user_id: str, body: Any) -> dict[str, Any]:
        _check_body(body, {"blocked": bool, "email": str, "name": str})
        with self._lock:
            user = self._management_user(user_id)
            if "blocked" in body:
                user.blocked = body["blocked"]
                self._log("block" if user.blocked else "unblock", user_id)
            if "email" in body:
                user.email = body["email"]
            if "name" in body:
                user.name = body["name"]
            return self._user_body(user)

    @staticmethod
    def _user_body(user: UserState) -> dict[str, Any]:
        return {
            "user_id": user.sub,
            "email": user.email,
            "name": user.name,
            "blocked": user.blocked,
            "identities": [{"provider": user.sub.split("|", 1)[0], "user_id": user.sub.split("|", 1)[-1]}],
        }

    def management_connected_accounts(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            user = self._management_user(user_id)
            return {
                "connected_accounts": [
                    {
                        **account.body(),
                        "connection_id": f"con_{account.connection}",
                        "strategy": self._connections[account.connection].strategy,
                    }
                    for account in user.connected_accounts
                ]
            }

    def management_events(self) -> list[ManagementEvent]:
        with self._lock:
            return list(self._events)

    def is_blocked(self, sub: str) -> bool:
        with self._lock:
            return self._users[sub].blocked


def _check_body(body: Any, allowed: Mapping[str, type]) -> None:
    if not isinstance(body, dict):
        raise ManagementApiError(400, "Payload validation error: body must be a JSON object", "invalid_body")
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise ManagementApiError(
            400, f"Payload validation error: 'Additional properties not allowed: {', '.join(extra)}'", "invalid_body"
        )
    for name, expected in allowed.items():
        if name in body and not isinstance(body[name], expected):
            raise ManagementApiError(
                400, f"Payload validation error: '{name}' must be of type {expected.__name__}", "invalid_body"
            )
