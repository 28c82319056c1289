"""Browser login: `/authorize` (authorization code with PKCE S256, for public and confidential clients), the login
page's credentials check, the login session behind `prompt=none`, the authorization code grant, logout, and the
application URLs (callbacks, web origins, logout URLs) a stack registers once it knows where it serves the console.

The tenant decides; the HTTP layer only renders what it decided: a redirect (response_mode query), a page that
posts the answer to the application's window (response_mode web_message), the login page, or an error page when
the request cannot be answered at a redirect URI it could trust.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from aegis_local.auth0.config import AUTHORIZATION_CODE_GRANT, ClientConfig
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.tenant.base import LoginFailed, TenantBase, required, split_scope
from aegis_local.auth0.tenant.records import (
    AuthorizationCode,
    AuthorizationRequest,
    LoginSession,
    LoginTransaction,
    UserState,
)

__all__ = [
    "AuthorizationResponse",
    "AuthorizeRefused",
    "BrowserLoginApi",
    "LoginFailed",
    "LoginPrompt",
    "LoginRequired",
    "origin_of",
    "s256_challenge",
]

# RFC 7636 4.1/4.2: a verifier is 43 to 128 unreserved characters; an S256 challenge is 43 base64url characters.
CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
RESPONSE_MODES: tuple[Literal["query", "web_message"], ...] = ("query", "web_message")


def s256_challenge(verifier: str) -> str:
    """base64url(SHA-256(verifier)) without padding: the challenge a PKCE S256 client sends for its verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class AuthorizationResponse:
    """The answer to an `/authorize`, carried back to the application at its registered redirect URI."""

    redirect_uri: str
    response_mode: Literal["query", "web_message"]
    # code and state, or error, error_description and state.
    params: dict[str, str]

    @property
    def location(self) -> str:
        separator = "&" if urlsplit(self.redirect_uri).query else "?"
        return f"{self.redirect_uri}{separator}{urlencode(self.params)}"

    @property
    def target_origin(self) -> str:
        return origin_of(self.redirect_uri)


@dataclass(frozen=True)
class LoginRequired:
    """The user must log in first: the login page of this transaction."""

    transaction_id: str


@dataclass(frozen=True)
class LoginPrompt:
    """What the login page of a transaction shows."""

    transaction_id: str
    client_name: str
    # Where the answer goes once the user logged in (the page's form-action must allow the redirect).
    redirect_origin: str


class AuthorizeRefused(Exception):
    """An `/authorize` (or logout) that cannot be answered at a redirect URI: an unknown client, a callback or
    logout URL not registered for it, a login that expired. The browser gets an error page."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


def _redirect_error(request: AuthorizationRequest, error: str, description: str) -> AuthorizationResponse:
    params = {"error": error, "error_description": description}
    if request.state is not None:
        params["state"] = request.state
    return AuthorizationResponse(request.redirect_uri, request.response_mode, params)


class BrowserLoginApi(TenantBase):
    # ----------------------------------------------------------------- application URLs

    def register_application_urls(
        self,
        client_id: str,
        *,
        callbacks: tuple[str, ...] = (),
        web_origins: tuple[str, ...] = (),
        logout_urls: tuple[str, ...] = (),
    ) -> ClientConfig:
        """Add callback URLs, web origins and logout URLs to an application, as an administrator would in the
        dashboard once the console's address is known. Returns the application as now registered."""
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise KeyError(f"unknown client {client_id!r}")
            merged = {
                "callbacks": tuple(dict.fromkeys([*client.callbacks, *callbacks])),
                "web_origins": tuple(dict.fromkeys([*client.web_origins, *web_origins])),
                "logout_urls": tuple(dict.fromkeys([*client.logout_urls, *logout_urls])),
            }
            # Validate like a configured client (model_copy would skip the validators).
            updated = ClientConfig.model_validate({**client.model_dump(), **merged})
            self._clients[client_id] = updated
            self.config = self.config.model_copy(
                update={"clients": tuple(updated if c.client_id == client_id else c for c in self.config.clients)}
            )
            return updated

    def allowed_web_origins(self) -> frozenset[str]:
        """Every registered web origin: who may call the token, userinfo and My Account endpoints from a browser."""
        with self._lock:
            return frozenset(origin for client in self._clients.values() for origin in client.web_origins)

    # ----------------------------------------------------------------- /authorize

    def authorize(self, params: Mapping[str, str], session_id: str | None) -> AuthorizationResponse | LoginRequired:
        """Validate an `/authorize`. Raises `AuthorizeRefused` while the redirect URI is not yet trusted; after
        that, every refusal goes back to the application at its redirect URI."""
        client_id = params.get("client_id")
        if not client_id:
            raise AuthorizeRefused("invalid_request", "Missing required parameter: client_id")
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise AuthorizeRefused("unauthorized_client", f"Unknown client: {client_id}")
            redirect_uri = params.get("redirect_uri")
            if not redirect_uri:
                raise AuthorizeRefused("invalid_request", "Missing required parameter: redirect_uri")
            if redirect_uri not in client.callbacks:
                raise AuthorizeRefused(
                    "invalid_request",
                    f"Callback URL mismatch. {redirect_uri} is not in the list of allowed callback URLs",
                )
            mode = params.get("response_mode") or "query"
            response_mode = next((m for m in RESPONSE_MODES if m == mode), None)
            if response_mode == "web_message" and origin_of(redirect_uri) not in client.web_origins:
                raise AuthorizeRefused(
                    "invalid_request", f"{origin_of(redirect_uri)} is not an allowed web origin of this application"
                )
            request = AuthorizationRequest(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                response_mode=response_mode or "query",
                state=params.get("state") or None,
                nonce=params.get("nonce") or None,
                code_challenge=params.get("code_challenge") or "",
                audience=params.get("audience") or self.config.default_audience,
                scope=split_scope(params.get("scope")),
            )
            if response_mode is None:
                return _redirect_error(request, "invalid_request", f"Unsupported response_mode: {mode}")
            problem = self._authorize_problem(client, params, request)
            if problem is not None:
                return _redirect_error(request, *problem)
            prompt = split_scope(params.get("prompt"))
            user = None if "login" in prompt else self.session_user(session_id)
            if user is None:
                if "none" in prompt:
                    return _redirect_error(request, "login_required", "Login required")
                transaction = LoginTransaction(
                    transaction_id=secrets.token_urlsafe(24),
                    request=request,
                    expires_at=self.clock() + self.config.login_transaction_lifetime_seconds,
                )
                self._login_transactions[transaction.transaction_id] = transaction
                return LoginRequired(transaction.transaction_id)
            return self._answer(client, request, user)

    def _authorize_problem(
        self, client: ClientConfig, params: Mapping[str, str], request: AuthorizationRequest
    ) -> tuple[str, str] | None:
        if params.get("response_type") != "code":
            return "unsupported_response_type", "Only response_type=code is supported (authorization code flow)"
        if AUTHORIZATION_CODE_GRANT not in client.grant_types:
            return "unauthorized_client", f"Grant type '{AUTHORIZATION_CODE_GRANT}' not allowed for the client."
        if not request.code_challenge:
            return "invalid_request", "PKCE is required: code_challenge is missing"
        if params.get("code_challenge_method") != "S256":
            return "invalid_request", "code_challenge_method must be S256"
        if not S256_CHALLENGE.fullmatch(request.code_challenge):
            return "invalid_request", "code_challenge must be 43 base64url characters (S256)"
        if request.audience is not None and request.audience not in self._resource_servers:
            return "access_denied", f"Service not found: {request.audience}"
        if request.audience == self.management_audience:
            return "access_denied", "The emulated tenant issues no user tokens for the Management API"
        return None

    def _answer(self, client: ClientConfig, request: AuthorizationRequest, user: UserState) -> AuthorizationResponse:
        """The user is known: a code bound to everything the token request must repeat, or why not."""
        if user.blocked:
            return _redirect_error(request, "access_denied", "user is blocked")
        scope, permissions = self._login_grant(client, user, request.scope, request.audience)
        code = secrets.token_urlsafe(32)
        self._authorization_codes[code] = AuthorizationCode(
            code=code,
            request=request,
            sub=user.sub,
            scope=scope,
            permissions=permissions,
            expires_at=self.clock() + self.config.authorization_code_lifetime_seconds,
        )
        self._record(code)
        params = {"code": code}
        if request.state is not None:
            params["state"] = request.state
        return AuthorizationResponse(request.redirect_uri, request.response_mode, params)

    # ----------------------------------------------------------------- the login page and the session

    def login_prompt(self, transaction_id: str) -> LoginPrompt:
        with self._lock:
            transaction = self._live_transaction(transaction_id)
            client = self._clients[transaction.request.client_id]
            return LoginPrompt(
                transaction_id, client.name or client.client_id, origin_of(transaction.request.redirect_uri)
            )

    def login(self, transaction_id: str, email: str, password: str) -> tuple[LoginSession, AuthorizationResponse]:
        """Check the login page's credentials; on success a session (the cookie) and the answer to the
        `/authorize` that asked. Raises `LoginFailed` (the page again) or `AuthorizeRefused` (expired login)."""
        with self._lock:
            self._live_transaction(transaction_id)
        session = self.password_login(email, password)
        with self._lock:
            # Checked again: two tabs may post the same login page.
            transaction = self._live_transaction(transaction_id)
            del self._login_transactions[transaction_id]
            client = self._clients[transaction.request.client_id]
            return session, self._answer(client, transaction.request, self._users[session.sub])

    def _live_transaction(self, transaction_id: str) -> LoginTransaction:
        transaction = self._login_transactions.get(transaction_id)
        if transaction is None or transaction.expires_at <= self.clock():
            raise AuthorizeRefused(
                "invalid_request", "This login is unknown or has expired; start again from the application"
            )
        return transaction

    # ----------------------------------------------------------------- the authorization code grant

    def authorization_code(self, client: ClientConfig, params: Mapping[str, str]) -> dict[str, Any]:
        self._require_grant(client, AUTHORIZATION_CODE_GRANT)
        code = required(params, "code")
        verifier = required(params, "code_verifier")
        redirect_uri = required(params, "redirect_uri")
        with self._lock:
            record = self._authorization_codes.get(code)
            if record is None or record.request.client_id != client.client_id:
                raise OAuthError(400, "invalid_grant", "Invalid authorization code")
            if record.used:
                # RFC 6749 4.1.2: a code presented again may have been stolen; what it yielded stops working.
                for token in record.refresh_tokens:
                    self._refresh_tokens[token].revoked = True
                raise OAuthError(400, "invalid_grant", "Invalid authorization code (already used)")
            # One presentation per code, successful or not: a wrong verifier cannot be retried.
            record.used = True
            if record.expires_at <= self.clock():
                raise OAuthError(400, "invalid_grant", "Invalid authorization code (expired)")
            if redirect_uri != record.request.redirect_uri:
                raise OAuthError(400, "invalid_grant", "redirect_uri does not match the authorization request")
            if not CODE_VERIFIER.fullmatch(verifier):
                raise OAuthError(400, "invalid_grant", "code_verifier must be 43 to 128 unreserved characters")
            if not hmac.compare_digest(s256_challenge(verifier), record.request.code_challenge):
                raise OAuthError(400, "invalid_grant", "Failed to verify code verifier")
            user = self._users[record.sub]
            if user.blocked:
                raise OAuthError(400, "invalid_grant", "user is blocked")
            response = self._issue_user_tokens(
                client,
                user,
                record.scope,
                record.request.audience,
                None,
                with_refresh=True,
                nonce=record.request.nonce,
                permissions=record.permissions,
            )
            if "refresh_token" in response:
                record.refresh_tokens.append(response["refresh_token"])
            return response

    # ----------------------------------------------------------------- logout

    def logout(self, session_id: str | None, client_id: str | None, return_to: str | None) -> str | None:
        """End the browser's session. Returns where to send the browser (`returnTo`, if the application
        registered it as a logout URL), or None for the tenant's own "logged out" page."""
        with self._lock:
            if return_to:
                client = self._clients.get(client_id) if client_id else None
                if client is None:
                    raise AuthorizeRefused("invalid_request", "returnTo needs the client_id of its application")
                if return_to not in client.logout_urls:
                    raise AuthorizeRefused(
                        "invalid_request", f"{return_to} is not in the application's allowed logout URLs"
                    )
            if session_id:
                self._login_sessions.pop(session_id, None)
            return return_to or None
