"""Client-Initiated Backchannel Authentication: `/bc-authorize` with its rate limits, and the CIBA grant a client
polls `/oauth/token` with until the approver answers (the answer itself comes from `GuardianApi`)."""

from __future__ import annotations

import json
import secrets
from collections import deque
from collections.abc import Mapping
from typing import Any

from aegis_local.auth0.config import CIBA_GRANT, ClientConfig, ResourceServerConfig
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.rar import (
    parse_authorization_details,
    validate_binding_message,
    validate_requested_expiry,
)
from aegis_local.auth0.tenant.base import OIDC_SCOPES, TenantBase, required, split_scope, user_blocked
from aegis_local.auth0.tenant.records import CibaRequest, CibaStatus, UserState

RATE_WINDOW_SECONDS = 60.0


class CibaApi(TenantBase):
    def bc_authorize(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, CIBA_GRANT)
        scope = split_scope(params.get("scope"))
        if "openid" not in scope:
            raise OAuthError(400, "invalid_request", "The scope parameter must contain openid")
        user = self._user_from_login_hint(required(params, "login_hint"))
        binding_message = validate_binding_message(params.get("binding_message"))
        expiry = validate_requested_expiry(params.get("requested_expiry"), self.config.ciba_default_expiry_seconds)
        audience = self._requested_audience(params)
        server = self._resource_server(audience) if audience else None
        details: list[dict[str, Any]] | None = None
        raw_details = params.get("authorization_details")
        if raw_details:
            if server is None:
                raise OAuthError(400, "invalid_authorization_details", "authorization_details require an audience")
            details = parse_authorization_details(raw_details, server.authorization_details_types)
        granted = self._granted_user_scope(scope, server)
        with self._lock:
            now = self.clock()
            self._enforce_ciba_limits(user.sub, now)
            auth_req_id = secrets.token_urlsafe(32)
            self._ciba[auth_req_id] = CibaRequest(
                auth_req_id=auth_req_id,
                client_id=client.client_id,
                sub=user.sub,
                scope=granted,
                audience=audience,
                binding_message=binding_message,
                authorization_details=details,
                created_at=now,
                expires_at=now + expiry,
                interval=self.config.ciba_interval_seconds,
                last_contact_at=now,
            )
            self._ciba_times_by_user.setdefault(user.sub, deque()).append(now)
            self._ciba_times_tenant.append(now)
        return {"auth_req_id": auth_req_id, "expires_in": expiry, "interval": self.config.ciba_interval_seconds}

    def _user_from_login_hint(self, raw: str) -> UserState:
        try:
            hint = json.loads(raw)
        except ValueError as exc:
            raise OAuthError(400, "invalid_request", "login_hint must be a JSON object") from exc
        if not isinstance(hint, dict) or hint.get("format") != "iss_sub":
            raise OAuthError(400, "invalid_request", 'login_hint format must be "iss_sub"')
        if hint.get("iss") != self.issuer:
            raise OAuthError(400, "invalid_request", f"login_hint iss must be {self.issuer}")
        sub = hint.get("sub")
        if not isinstance(sub, str) or not sub:
            raise OAuthError(400, "invalid_request", "login_hint sub is required")
        with self._lock:
            user = self._users.get(sub)
            if user is None:
                raise OAuthError(400, "invalid_request", "User not found")
            if user.blocked:
                raise user_blocked()
            if not user.guardian_enrolled:
                raise OAuthError(400, "invalid_request", "User does not have push notifications enrolled")
            return user

    def _requested_audience(self, params: Mapping[str, str]) -> str | None:
        audience = params.get("audience") or None
        resource = params.get("resource") or None
        if audience and resource and audience != resource:
            raise OAuthError(400, "invalid_request", "audience and resource must not differ")
        return audience or resource or self.config.default_audience

    @staticmethod
    def _granted_user_scope(requested: tuple[str, ...], server: ResourceServerConfig | None) -> tuple[str, ...]:
        api_scopes = set(server.scopes) if server else set()
        granted = [s for s in requested if s in OIDC_SCOPES or s in api_scopes]
        if server is not None and not server.allow_offline_access:
            granted = [s for s in granted if s != "offline_access"]
        return tuple(granted)

    def _enforce_ciba_limits(self, sub: str, now: float) -> None:
        per_user = self._ciba_times_by_user.setdefault(sub, deque())
        for window in (per_user, self._ciba_times_tenant):
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
        for window, limit, scope_label in (
            (per_user, self.config.ciba_requests_per_user_per_minute, "user"),
            (self._ciba_times_tenant, self.config.ciba_requests_per_tenant_per_minute, "tenant"),
        ):
            if len(window) >= limit:
                reset_at = window[0] + RATE_WINDOW_SECONDS
                raise OAuthError(
                    429,
                    "too_many_requests",
                    f"Too many backchannel authorization requests for this {scope_label}; retry later",
                    {
                        "Retry-After": str(max(1, int(reset_at - now + 0.999))),
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(reset_at)),
                    },
                )
        pending = sum(1 for r in self._ciba.values() if r.status is CibaStatus.PENDING and r.expires_at > now)
        if pending >= self.config.ciba_max_pending_per_tenant:
            raise OAuthError(429, "too_many_requests", "Too many pending backchannel authorization requests")

    def poll_ciba(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, CIBA_GRANT)
        auth_req_id = required(params, "auth_req_id")
        with self._lock:
            request = self._ciba.get(auth_req_id)
            if request is None or request.client_id != client.client_id:
                raise OAuthError(400, "invalid_grant", "Unknown auth_req_id")
            if request.status is CibaStatus.CONSUMED:
                raise OAuthError(400, "invalid_grant", "The auth_req_id has already been exchanged")
            now = self.clock()
            if now >= request.expires_at:
                raise OAuthError(400, "expired_token", "The auth_req_id has expired")
            if now - request.last_contact_at < request.interval:
                request.interval += self.config.slow_down_increment_seconds
                request.last_contact_at = now
                raise OAuthError(
                    429,
                    "slow_down",
                    f"You are polling faster than allowed. Try again in {request.interval} seconds.",
                    {"Retry-After": str(request.interval)},
                )
            request.last_contact_at = now
            if request.status is CibaStatus.DENIED:
                raise OAuthError(400, "access_denied", "The end-user denied the authorization request")
            if request.status is CibaStatus.PENDING:
                raise OAuthError(400, "authorization_pending", "The end-user authorization is pending")
            user = self._users[request.sub]
            if user.blocked:
                raise OAuthError(400, "access_denied", "user is blocked")
            request.status = CibaStatus.CONSUMED
            return self._issue_user_tokens(
                client, user, request.scope, request.audience, request.authorization_details, with_refresh=True
            )
