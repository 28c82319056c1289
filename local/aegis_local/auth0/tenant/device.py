"""The device authorization grant (RFC 8628) as Auth0 speaks it: `/oauth/device/code`, the `/activate` page's side
(find a pending request by its user code, confirm or deny it as the logged-in user) and the polling grant with
Auth0's error table."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aegis_local.auth0.config import DEVICE_CODE_GRANT, ClientConfig
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.tenant.base import TenantBase, required, split_scope
from aegis_local.auth0.tenant.records import DeviceAuthorization, DeviceStatus

# Auth0's user codes: consonants only (no vowel, so no word can be spelt), two groups of four.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8


def normalize_user_code(raw: str) -> str:
    """What a person typed, as stored: case, spaces and the dash do not matter."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def display_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


class UnknownUserCode(LookupError):
    """No pending device request has this user code (mistyped, expired, or already answered)."""


@dataclass(frozen=True)
class DevicePrompt:
    """What the activation page asks the user to confirm."""

    user_code: str
    client_name: str
    audience: str | None
    scope: tuple[str, ...]


class DeviceApi(TenantBase):
    def device_authorize(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, DEVICE_CODE_GRANT)
        audience = params.get("audience") or self.config.default_audience
        if audience is not None:
            self._resource_server(audience)
            if audience == self.management_audience:
                raise OAuthError(
                    403, "access_denied", "The emulated tenant issues no user tokens for the Management API"
                )
        with self._lock:
            device_code = secrets.token_urlsafe(32)
            user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            while user_code in self._device_codes_by_user_code:
                user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            self._device_authorizations[device_code] = DeviceAuthorization(
                device_code=device_code,
                user_code=user_code,
                client_id=client.client_id,
                audience=audience,
                scope=split_scope(params.get("scope")),
                expires_at=self.clock() + self.config.device_code_expiry_seconds,
                interval=self.config.device_code_interval_seconds,
            )
            self._device_codes_by_user_code[user_code] = device_code
            self._record(device_code)
        shown = display_user_code(user_code)
        return {
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": f"{self.issuer}activate",
            "verification_uri_complete": f"{self.issuer}activate?user_code={shown}",
            "expires_in": self.config.device_code_expiry_seconds,
            "interval": self.config.device_code_interval_seconds,
        }

    # ----------------------------------------------------------------- the activation page

    def device_prompt(self, raw_user_code: str) -> DevicePrompt:
        with self._lock:
            request = self._pending_device(raw_user_code)
            client = self._clients[request.client_id]
            return DevicePrompt(
                display_user_code(request.user_code), client.name or client.client_id, request.audience, request.scope
            )

    def decide_device(self, raw_user_code: str, session_id: str | None, form_token: str, *, approve: bool) -> None:
        """The logged-in user confirms or denies the device. The form token ties the decision to the session's own
        confirmation page."""
        with self._lock:
            session = self.live_session(session_id)
            if session is None:
                raise PermissionError("log in first")
            if not hmac.compare_digest(session.form_token.encode(), form_token.encode()):
                raise PermissionError("this confirmation form does not belong to your session")
            request = self._pending_device(raw_user_code)
            request.sub = session.sub
            request.status = DeviceStatus.APPROVED if approve else DeviceStatus.DENIED

    def _pending_device(self, raw_user_code: str) -> DeviceAuthorization:
        device_code = self._device_codes_by_user_code.get(normalize_user_code(raw_user_code))
        request = self._device_authorizations.get(device_code) if device_code else None
        if request is None or request.status is not DeviceStatus.PENDING or request.expires_at <= self.clock():
            raise UnknownUserCode(raw_user_code)
        return request

    # ----------------------------------------------------------------- the polling grant

    def poll_device_code(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, DEVICE_CODE_GRANT)
        device_code = required(params, "device_code")
        with self._lock:
            request = self._device_authorizations.get(device_code)
            if request is None or request.client_id != client.client_id:
                raise OAuthError(403, "invalid_grant", "Invalid or expired device code.")
            if request.status is DeviceStatus.FINISHED:
                raise OAuthError(403, "invalid_grant", "Invalid or expired device code.")
            now = self.clock()
            if now >= request.expires_at:
                request.status = DeviceStatus.FINISHED
                raise OAuthError(403, "expired_token", "The device code has expired; start again")
            if request.last_polled_at is not None and now - request.last_polled_at < request.interval:
                # RFC 8628 3.5: slow_down adds to the interval for this and every later poll.
                request.interval += self.config.slow_down_increment_seconds
                request.last_polled_at = now
                raise OAuthError(
                    429,
                    "slow_down",
                    f"You are polling faster than allowed. Try again in {request.interval} seconds.",
                    {"Retry-After": str(request.interval)},
                )
            request.last_polled_at = now
            if request.status is DeviceStatus.PENDING:
                raise OAuthError(403, "authorization_pending", "User has yet to authorize device code.")
            status, sub = request.status, request.sub
            request.status = DeviceStatus.FINISHED
            if status is DeviceStatus.DENIED or sub is None:
                raise OAuthError(403, "access_denied", "User refused to authorize the device.")
            user = self._users[sub]
            if user.blocked:
                raise OAuthError(403, "access_denied", "user is blocked")
            scope, permissions = self._login_grant(client, user, request.scope, request.audience)
            return self._issue_user_tokens(
                client, user, scope, request.audience, None, with_refresh=True, permissions=permissions
            )
