"""The phone: Guardian's side of CIBA, where the approver sees the pending requests and answers them (or lets one
lapse)."""

from __future__ import annotations

from typing import Any

from aegis_local.auth0.errors import GuardianError
from aegis_local.auth0.tenant.base import TenantBase
from aegis_local.auth0.tenant.records import CibaRequest, CibaStatus, iso


class GuardianApi(TenantBase):
    def pending(self, sub: str) -> list[dict[str, Any]]:
        with self._lock:
            if sub not in self._users:
                raise GuardianError(404, "unknown_user", f"Unknown user {sub}")
            now = self.clock()
            return [
                {
                    "auth_req_id": r.auth_req_id,
                    "client_id": r.client_id,
                    "binding_message": r.binding_message,
                    "authorization_details": r.authorization_details,
                    "scope": " ".join(r.scope),
                    "audience": r.audience,
                    "requested_at": iso(r.created_at),
                    "expires_at": iso(r.expires_at),
                }
                for r in self._ciba.values()
                if r.sub == sub and r.status is CibaStatus.PENDING and r.expires_at > now
            ]

    def decide(self, auth_req_id: str, approve: bool) -> None:
        with self._lock:
            request = self._pending_request(auth_req_id)
            if self.clock() >= request.expires_at:
                raise GuardianError(409, "expired", "The request has expired")
            if approve and self._users[request.sub].blocked:
                raise GuardianError(403, "user_blocked", "A blocked user cannot approve requests")
            request.status = CibaStatus.APPROVED if approve else CibaStatus.DENIED

    def lapse(self, auth_req_id: str) -> None:
        """The approver leaves the request unanswered until it expires, without waiting out its requested_expiry:
        its expiry moves to now, so the client's next poll is answered `expired_token` as at Auth0."""
        with self._lock:
            request = self._pending_request(auth_req_id)
            request.expires_at = min(request.expires_at, self.clock())

    def _pending_request(self, auth_req_id: str) -> CibaRequest:
        request = self._ciba.get(auth_req_id)
        if request is None:
            raise GuardianError(404, "unknown_request", "Unknown authorization request")
        if request.status is not CibaStatus.PENDING:
            raise GuardianError(409, "not_pending", f"The request is already {request.status.value}")
        return request
