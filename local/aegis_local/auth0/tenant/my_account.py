"""The My Account API: a user's own connected accounts (list, delete) and connections, with its bearer checks; and
the end of a connected-accounts flow, whose browser part cannot be emulated."""

from __future__ import annotations

from typing import Any

from aegis_local.auth0.errors import MyAccountError
from aegis_local.auth0.keys import TokenInvalid, audiences
from aegis_local.auth0.tenant.base import TenantBase, new_account_id, split_scope
from aegis_local.auth0.tenant.records import ConnectedAccount, UserState


class MyAccountApi(TenantBase):
    def authorize_my_account(self, bearer: str | None, required_scope: str) -> UserState:
        if not bearer:
            raise MyAccountError(401, "Missing bearer token")
        try:
            claims = self.keys.verify(bearer, issuer=self.issuer, now=self.clock())
        except TokenInvalid as exc:
            raise MyAccountError(401, f"Invalid token: {exc}") from exc
        if self.my_account_audience not in audiences(claims):
            raise MyAccountError(401, f"Invalid token: audience must include {self.my_account_audience}")
        if required_scope not in split_scope(claims.get("scope")):
            raise MyAccountError(403, f"Insufficient scope; expected {required_scope}")
        with self._lock:
            user = self._users.get(str(claims.get("sub")))
            if user is None:
                raise MyAccountError(401, "Invalid token: unknown user")
            if user.blocked:
                raise MyAccountError(403, "user is blocked")
            return user

    def my_connected_accounts(self, user: UserState, connection: str | None) -> dict[str, Any]:
        with self._lock:
            return {
                "accounts": [
                    account.body()
                    for account in user.connected_accounts
                    if connection is None or account.connection == connection
                ]
            }

    def my_connections(self) -> dict[str, Any]:
        return {"connections": [{"name": c.name, "strategy": c.strategy} for c in self._connections.values()]}

    def delete_my_connected_account(self, user: UserState, account_id: str) -> None:
        with self._lock:
            remaining = [a for a in user.connected_accounts if a.account_id != account_id]
            if len(remaining) == len(user.connected_accounts):
                raise MyAccountError(404, "Connected account not found")
            user.connected_accounts = remaining

    def connect_account(self, sub: str, connection: str, scopes: tuple[str, ...] = ()) -> str:
        """Complete a connected-accounts flow for a user (the browser part cannot be emulated)."""
        with self._lock:
            user = self._users.get(sub)
            if user is None:
                raise KeyError(f"unknown user {sub!r}")
            if connection not in self._connections:
                raise KeyError(f"unknown connection {connection!r}")
            account = ConnectedAccount(
                account_id=new_account_id(),
                connection=connection,
                scopes=scopes,
                provider_subject=sub,
                created_at=self.clock(),
            )
            user.connected_accounts.append(account)
            return account.account_id
