"""The HTTP face of the emulated tenant: a Starlette app speaking Auth0's wire protocol, with the tenant's own pages
(login, device activation) and CORS for the applications' registered web origins."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aegis_local.auth0 import pages
from aegis_local.auth0.config import (
    AUTHORIZATION_CODE_GRANT,
    CIBA_GRANT,
    CLIENT_CREDENTIALS_GRANT,
    DEVICE_CODE_GRANT,
    REFRESH_TOKEN_GRANT,
    TOKEN_VAULT_GRANT,
)
from aegis_local.auth0.errors import EmulatorError, GuardianError, ManagementApiError, OAuthError
from aegis_local.auth0.tenant import (
    AuthorizationResponse,
    AuthorizeRefused,
    ClientCredentials,
    LoginFailed,
    LoginRequired,
    Tenant,
    UnknownUserCode,
)
from aegis_local.auth0.tenant.records import LoginSession

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CONTROL_PREFIX = "/__emulator"
GUARDIAN_PREFIX = "/__guardian"

Handler = Callable[[Request], Awaitable[Response]]

# Where a browser application may call the tenant from another origin: the token endpoint, /userinfo and the My
# Account API. CORS_HEADERS are the request headers spa-js and the console send.
CORS_PATHS = ("/oauth/token", "/userinfo", "/me/")
CORS_HEADERS = frozenset({"authorization", "content-type", "auth0-client", "dpop"})
CORS_MAX_AGE_SECONDS = 600
UNKNOWN_USER_CODE = "That code is not valid, has expired, or was already used."


class CorsMiddleware:
    """CORS for the registered web origins of the tenant's applications (`allowed_origins`, read per request since a
    stack registers the console's origin after start). A preflight from an unregistered origin gets 403 and no CORS
    header, so the browser refuses the call."""

    def __init__(self, app: ASGIApp, allowed_origins: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(CORS_PATHS):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.allowed_origins()
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin if allowed else None, headers, scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["Access-Control-Allow-Origin"] = str(origin)
                response_headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(origin: str | None, headers: Headers, scope: Scope, receive: Receive, send: Send) -> None:
        asked = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()}
        if origin is None or not asked <= CORS_HEADERS:
            await Response(status_code=403, headers={"Vary": "Origin"})(scope, receive, send)
            return
        response = Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST, DELETE",
                "Access-Control-Allow-Headers": ", ".join(sorted(CORS_HEADERS)),
                "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
                "Vary": "Origin",
            },
        )
        await response(scope, receive, send)


# The Authentication API paths a fault is most often aimed at (any path of the tenant may be named).
BC_AUTHORIZE_PATH = "/bc-authorize"
TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/.well-known/jwks.json"
# How many requests the fault log keeps (oldest dropped first): enough for a mission, bounded for a long-lived stack.
FAULT_LOG_SIZE = 2000
FAULT_FIELDS = frozenset({"path", "grant_type", "status", "delay_seconds", "count"})
# A delay longer than this is refused: it would hold the server's shutdown and no client waits that long anyway.
MAX_FAULT_DELAY_SECONDS = 120.0


@dataclass(frozen=True)
class RequestFault:
    """What the next `count` requests matching `path` (and `grant_type`, for the token endpoint, where the CIBA poll
    and the Token Vault exchange share one path) are answered:

    - `status` alone: that 5xx at once, the request never reaching the tenant;
    - `delay_seconds` alone: held that long, then answered normally (a provider that still does what a client which
      gave up at its read timeout asked: a push sent, a grant consumed);
    - both: held, then that 5xx, the request never reaching the tenant (a gateway timing out on a dead backend);
    - `error="slow_down"`: 429 slow_down (the CIBA poll's "polling too fast"; `slow_down_storm`).
    """

    path: str
    grant_type: str | None = None
    status: int | None = None
    delay_seconds: float = 0.0
    count: int = 1
    error: str | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path.startswith((CONTROL_PREFIX, GUARDIAN_PREFIX)):
            raise ValueError("a fault names a tenant path (starting with /), never the control plane or the phone")
        if self.count < 1:
            raise ValueError("a fault needs a count >= 1")
        if not 0 <= self.delay_seconds <= MAX_FAULT_DELAY_SECONDS:
            raise ValueError(f"a fault's delay is 0 to {MAX_FAULT_DELAY_SECONDS:.0f} seconds")
        if self.error == "slow_down":
            if self.status != 429 or self.path != TOKEN_PATH or self.grant_type != CIBA_GRANT:
                raise ValueError("slow_down answers CIBA polls with 429")
        elif self.error is not None:
            raise ValueError("the only error a fault names is slow_down; others are a 5xx status")
        elif self.status is None and self.delay_seconds == 0:
            raise ValueError("a fault needs a 5xx status, a delay, or both")
        elif self.status is not None and not 500 <= self.status <= 599:
            raise ValueError("a fault's status is a 5xx")

    def matches(self, path: str, grant_type: str | None) -> bool:
        return path == self.path and (self.grant_type is None or grant_type == self.grant_type)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "grant_type": self.grant_type,
            "status": self.status,
            "delay_seconds": self.delay_seconds,
            "count": self.count,
            "error": self.error,
        }


@dataclass(frozen=True)
class ObservedRequest:
    """One request the tenant was sent (the control plane and the phone excepted), and the fault it met, if any.
    `at` is time.monotonic() on arrival. Neither a token nor an auth_req_id is kept: `ciba_request` is a digest
    of the polled auth_req_id, enough to tell one CIBA request's polls from another's."""

    at: float
    method: str
    path: str
    grant_type: str | None
    ciba_request: str | None
    fault: RequestFault | None


class FaultInjector:
    """Outage switches, and faults armed per request.

    `down` answers 503 everywhere but the control plane; `fail_next` answers the next n requests (the phone spared)
    with a server error; `arm` answers the next n requests matching a path (and grant type) with a 5xx, a delay,
    or both (`RequestFault`); `slow_down_storm` answers the next n CIBA polls `slow_down`. Armed faults are used
    up in the order they were armed. Every request to the tenant is logged (`observed`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False
        self._failures: list[int] = []
        # Each armed fault with how many matching requests it still answers.
        self._armed: list[tuple[RequestFault, int]] = []
        self._observed: deque[ObservedRequest] = deque(maxlen=FAULT_LOG_SIZE)

    def set_down(self, down: bool) -> None:
        with self._lock:
            self._down = down

    def fail_next(self, count: int, status: int) -> None:
        if count < 0 or not 500 <= status <= 599:
            raise ValueError("fail_next needs a count >= 0 and a 5xx status")
        with self._lock:
            self._failures.extend([status] * count)

    def arm(self, fault: RequestFault) -> None:
        with self._lock:
            self._armed.append((fault, fault.count))

    def slow_down_storm(self, count: int) -> None:
        self.arm(RequestFault(TOKEN_PATH, CIBA_GRANT, status=429, count=count, error="slow_down"))

    def clear(self) -> None:
        """Disarm every fault and outage switch (the log is kept)."""
        with self._lock:
            self._down = False
            self._failures.clear()
            self._armed.clear()

    def armed(self) -> list[tuple[RequestFault, int]]:
        """The faults still armed, each with how many requests it still answers."""
        with self._lock:
            return list(self._armed)

    def observed(self) -> list[ObservedRequest]:
        with self._lock:
            return list(self._observed)

    def decide(self, path: str) -> int | None:
        """The outage switches' answer for `path`, if any (`down`, `fail_next`)."""
        if path.startswith(CONTROL_PREFIX):
            return None
        with self._lock:
            if self._down:
                return 503
            if self._failures and not path.startswith(GUARDIAN_PREFIX):
                return self._failures.pop(0)
        return None

    def take(
        self, method: str, path: str, grant_type: str | None = None, ciba_request: str | None = None
    ) -> RequestFault | None:
        """Log the request and use up the first armed fault it matches; None when it meets none."""
        if path.startswith((CONTROL_PREFIX, GUARDIAN_PREFIX)):
            return None
        with self._lock:
            fault: RequestFault | None = None
            for index, (armed, remaining) in enumerate(self._armed):
                if armed.matches(path, grant_type):
                    fault = armed
                    self._armed[index] = (armed, remaining - 1)
                    break
            self._armed = [(armed, remaining) for armed, remaining in self._armed if remaining > 0]
            self._observed.append(ObservedRequest(time.monotonic(), method, path, grant_type, ciba_request, fault))
        return fault


def _fault_response(status: int, error: str | None = None) -> Response:
    if error == "slow_down":
        return JSONResponse(
            {"error": "slow_down", "error_description": "You are polling faster than allowed"},
            status_code=status,
            headers=NO_STORE,
        )
    error = "temporarily_unavailable" if status == 503 else "server_error"
    return JSONResponse(
        {"error": error, "error_description": "The service is unavailable, please retry later"}, status_code=status
    )


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The grant type and auth_req_id of a token request, read leniently: the endpoint itself refuses what is
    malformed, the fault only needs to know which grant was asked."""
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    try:
        if media_type == "application/json":
            document = json.loads(body or b"null")
            pairs = [(k, v) for k, v in document.items() if isinstance(v, str)] if isinstance(document, dict) else []
        else:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (ValueError, UnicodeDecodeError):
        return {}
    return {name: value for name, value in pairs if name in ("grant_type", "auth_req_id")}


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


class FaultMiddleware:
    def __init__(self, app: ASGIApp, faults: FaultInjector) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = str(scope["path"]), str(scope["method"])
        status = self.faults.decide(path)
        if status is not None:
            await _fault_response(status)(scope, receive, send)
            return
        grant_type = ciba_request = None
        read = False
        if method == "POST" and path == TOKEN_PATH:
            # The token endpoint serves several grants: its faults are told apart by the grant type in the body.
            body, messages = await _read_body(receive)
            fields = _form_fields(Headers(scope=scope).get("content-type", ""), body)
            grant_type = fields.get("grant_type")
            if grant_type == CIBA_GRANT and fields.get("auth_req_id"):
                ciba_request = hashlib.sha256(fields["auth_req_id"].encode()).hexdigest()[:16]
            receive, read = _replay(messages, receive), True
        fault = self.faults.take(method, path, grant_type, ciba_request)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay_seconds:
            if not read:
                # Read before waiting: a client that gives up meanwhile must not take its request with it.
                receive = _replay((await _read_body(receive))[1], receive)
            await asyncio.sleep(fault.delay_seconds)
        if fault.status is None:
            await self.app(scope, receive, send)
            return
        await _fault_response(fault.status, fault.error)(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands the already-read body messages out again, then defers to the server's."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _error_response(error: EmulatorError, extra_headers: Mapping[str, str] | None = None) -> Response:
    headers = {**(extra_headers or {}), **error.headers}
    return Response(json.dumps(error.body()), status_code=error.status, headers=headers, media_type=error.media_type)


def _guarded(handler: Handler, extra_headers: Mapping[str, str] | None = None) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except EmulatorError as error:
            return _error_response(error, extra_headers)

    return endpoint


async def _params(request: Request, *, allow_json: bool) -> dict[str, str]:
    """Request parameters of the Authentication API. Repeated parameters are refused (RFC 6749 3.1)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == FORM:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise OAuthError(400, "invalid_request", "The request body is not valid UTF-8") from exc
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params:
                raise OAuthError(400, "invalid_request", f"Parameter {name} must not be repeated")
            params[name] = value
        return params
    if allow_json and content_type == "application/json":
        try:
            document = json.loads(body or b"null")
        except ValueError as exc:
            raise OAuthError(400, "invalid_request", "The request body is not valid JSON") from exc
        if not isinstance(document, dict):
            raise OAuthError(400, "invalid_request", "The request body must be a JSON object")
        return {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in document.items()
            if value is not None
        }
    accepted = f"{FORM} or application/json" if allow_json else FORM
    raise OAuthError(400, "invalid_request", f"Content-Type must be {accepted}")


def _client_credentials(request: Request, params: Mapping[str, str]) -> ClientCredentials:
    authorization = request.headers.get("authorization")
    body_secret = params.get("client_secret")
    body_client_id = params.get("client_id")
    if "client_assertion" in params:
        raise OAuthError(401, "invalid_client", "private_key_jwt is not configured for this client")
    if authorization and authorization[:6].lower() == "basic ":
        if body_secret is not None:
            raise OAuthError(400, "invalid_request", "Only one client authentication method may be used")
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError(
                401, "invalid_client", "Malformed Basic authorization header", {"WWW-Authenticate": "Basic"}
            ) from exc
        if ":" not in decoded:
            raise OAuthError(
                401, "invalid_client", "Malformed Basic authorization header", {"WWW-Authenticate": "Basic"}
            )
        raw_id, raw_secret = decoded.split(":", 1)
        # RFC 6749 2.3.1: both parts are form-urlencoded before they are joined.
        client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if body_client_id is not None and body_client_id != client_id:
            raise OAuthError(400, "invalid_request", "client_id does not match the authenticated client")
        return ClientCredentials("client_secret_basic", client_id, client_secret)
    if body_secret is not None:
        return ClientCredentials("client_secret_post", body_client_id, body_secret)
    return ClientCredentials(None, body_client_id, None)


def _bearer(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ManagementApiError(400, "Invalid request payload JSON format", "invalid_body") from exc


class _Endpoints:
    """Request handlers: each parses the wire format and hands over to the tenant."""

    def __init__(self, tenant: Tenant, faults: FaultInjector) -> None:
        self.tenant = tenant
        self.faults = faults
        self.token_grants = {
            CLIENT_CREDENTIALS_GRANT: tenant.client_credentials,
            REFRESH_TOKEN_GRANT: tenant.refresh,
            CIBA_GRANT: tenant.poll_ciba,
            TOKEN_VAULT_GRANT: tenant.token_vault_exchange,
            AUTHORIZATION_CODE_GRANT: tenant.authorization_code,
            DEVICE_CODE_GRANT: tenant.poll_device_code,
        }

    # Authentication API -------------------------------------------------------------------

    async def discovery(self, _: Request) -> Response:
        return JSONResponse(self.tenant.discovery())

    async def jwks(self, _: Request) -> Response:
        return JSONResponse(self.tenant.jwks())

    async def provider_discovery(self, request: Request) -> Response:
        return JSONResponse(self.tenant.provider_discovery(request.path_params["connection"]))

    async def provider_jwks(self, request: Request) -> Response:
        return JSONResponse(self.tenant.provider_jwks(request.path_params["connection"]))

    async def bc_authorize(self, request: Request) -> Response:
        params = await _params(request, allow_json=False)
        client = self.tenant.authenticate_client(_client_credentials(request, params))
        return JSONResponse(self.tenant.bc_authorize(client, params), headers=NO_STORE)

    async def token(self, request: Request) -> Response:
        params = await _params(request, allow_json=True)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        grant = self.token_grants.get(grant_type)
        if grant is None:
            raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        client = self.tenant.authenticate_client(_client_credentials(request, params))
        return JSONResponse(grant(client, params), headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        params = await _params(request, allow_json=False)
        client = self.tenant.authenticate_client(_client_credentials(request, params))
        self.tenant.revoke(client, params)
        return Response(status_code=200)

    async def userinfo(self, request: Request) -> Response:
        return JSONResponse(self.tenant.userinfo(_bearer(request)))

    async def device_code(self, request: Request) -> Response:
        params = await _params(request, allow_json=True)
        client = self.tenant.authenticate_client(_client_credentials(request, params))
        return JSONResponse(self.tenant.device_authorize(client, params), headers=NO_STORE)

    # Browser login: /authorize, the login page, logout ------------------------------------------

    def _with_session(self, response: Response, session: LoginSession | None) -> Response:
        if session is not None:
            response.set_cookie(
                self.tenant.session_cookie_name,
                session.session_id,
                max_age=int(session.expires_at - session.created_at),
                path="/",
                httponly=True,
                samesite="lax",
            )
        return response

    def _answer(self, answer: AuthorizationResponse, session: LoginSession | None = None) -> Response:
        """Carry an /authorize answer back: a redirect, or for web_message a page posting it to the application's
        window (which the application's origin may frame: that is the silent iframe of prompt=none)."""
        response: Response
        if answer.response_mode == "query":
            response = RedirectResponse(answer.location, status_code=302, headers=NO_STORE)
        else:
            page = pages.web_message_page(json.dumps(answer.params), answer.target_origin)
            response = HTMLResponse(page, headers=pages.page_headers(frame_ancestors=(answer.target_origin,)))
        return self._with_session(response, session)

    async def authorize(self, request: Request) -> Response:
        try:
            params = _single_query_params(request)
            outcome = self.tenant.authorize(params, request.cookies.get(self.tenant.session_cookie_name))
        except AuthorizeRefused as refused:
            return _error_page(refused)
        if isinstance(outcome, LoginRequired):
            return RedirectResponse(f"/u/login?{urlencode({'state': outcome.transaction_id})}", 302, NO_STORE)
        return self._answer(outcome)

    async def login_page(self, request: Request) -> Response:
        transaction_id = request.query_params.get("state", "")
        try:
            prompt = self.tenant.login_prompt(transaction_id)
        except AuthorizeRefused as refused:
            return _error_page(refused)
        page = pages.login_page(
            action="/u/login", hidden={"state": transaction_id}, application=prompt.client_name, error=None
        )
        return HTMLResponse(page, headers=pages.page_headers(form_targets=(prompt.redirect_origin,)))

    async def login(self, request: Request) -> Response:
        try:
            form = await _params(request, allow_json=False)
        except OAuthError as exc:
            return _error_page(AuthorizeRefused(exc.error, exc.description))
        transaction_id, email = form.get("state", ""), form.get("email", "")
        try:
            session, answer = self.tenant.login(transaction_id, email, form.get("password", ""))
        except AuthorizeRefused as refused:
            return _error_page(refused)
        except LoginFailed as failed:
            prompt = self.tenant.login_prompt(transaction_id)
            page = pages.login_page(
                action="/u/login",
                hidden={"state": transaction_id},
                application=prompt.client_name,
                error=failed.message,
                email=email,
            )
            return HTMLResponse(page, 400, headers=pages.page_headers(form_targets=(prompt.redirect_origin,)))
        return self._answer(answer, session)

    async def logout(self, request: Request) -> Response:
        try:
            params = _single_query_params(request)
            return_to = self.tenant.logout(
                request.cookies.get(self.tenant.session_cookie_name), params.get("client_id"), params.get("returnTo")
            )
        except AuthorizeRefused as refused:
            return _error_page(refused)
        response: Response
        if return_to is None:
            response = HTMLResponse(pages.logged_out_page(), headers=pages.page_headers())
        else:
            response = RedirectResponse(return_to, 302, NO_STORE)
        response.delete_cookie(self.tenant.session_cookie_name, path="/", httponly=True, samesite="lax")
        return response

    async def asset(self, request: Request) -> Response:
        asset = pages.ASSETS.get(request.path_params["name"])
        if asset is None:
            raise HTTPException(404, "No such asset")
        content, media_type = asset
        return Response(content, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})

    # The device activation page -------------------------------------------------------------

    async def activate(self, request: Request) -> Response:
        user_code = request.query_params.get("user_code", "").strip()
        if not user_code:
            return HTMLResponse(pages.activate_entry_page(), headers=pages.page_headers())
        return self._activation_step(user_code, request.cookies.get(self.tenant.session_cookie_name))

    def _activation_step(self, user_code: str, session_id: str | None, session: LoginSession | None = None) -> Response:
        """The page after a user code: the login form without a session, else the confirmation."""
        try:
            prompt = self.tenant.device_prompt(user_code)
        except UnknownUserCode:
            return HTMLResponse(pages.activate_entry_page(UNKNOWN_USER_CODE, user_code), 400, pages.page_headers())
        live = session or self.tenant.live_session(session_id)
        user = self.tenant.session_user(live.session_id) if live is not None else None
        if live is None or user is None:
            page = pages.login_page(
                action="/activate/login",
                hidden={"user_code": prompt.user_code},
                application=prompt.client_name,
                error=None,
            )
            return HTMLResponse(page, headers=pages.page_headers())
        page = pages.activate_confirm_page(
            user_code=prompt.user_code,
            form_token=live.form_token,
            application=prompt.client_name,
            audience=prompt.audience,
            scope=prompt.scope,
            user=user.email or user.sub,
        )
        return self._with_session(HTMLResponse(page, headers=pages.page_headers()), session)

    async def activate_login(self, request: Request) -> Response:
        try:
            form = await _params(request, allow_json=False)
        except OAuthError as exc:
            return _error_page(AuthorizeRefused(exc.error, exc.description))
        user_code, email = form.get("user_code", ""), form.get("email", "")
        try:
            prompt = self.tenant.device_prompt(user_code)
        except UnknownUserCode:
            return HTMLResponse(pages.activate_entry_page(UNKNOWN_USER_CODE, user_code), 400, pages.page_headers())
        try:
            session = self.tenant.password_login(email, form.get("password", ""))
        except LoginFailed as failed:
            page = pages.login_page(
                action="/activate/login",
                hidden={"user_code": prompt.user_code},
                application=prompt.client_name,
                error=failed.message,
                email=email,
            )
            return HTMLResponse(page, 400, headers=pages.page_headers())
        return self._activation_step(user_code, session.session_id, session)

    async def activate_confirm(self, request: Request) -> Response:
        try:
            form = await _params(request, allow_json=False)
        except OAuthError as exc:
            return _error_page(AuthorizeRefused(exc.error, exc.description))
        user_code = form.get("user_code", "")
        approve = form.get("action") == "confirm"
        try:
            self.tenant.decide_device(
                user_code,
                request.cookies.get(self.tenant.session_cookie_name),
                form.get("form_token", ""),
                approve=approve,
            )
        except UnknownUserCode:
            return HTMLResponse(pages.activate_entry_page(UNKNOWN_USER_CODE, user_code), 400, pages.page_headers())
        except PermissionError as exc:
            return _error_page(AuthorizeRefused("access_denied", str(exc)), status=403)
        return HTMLResponse(pages.activate_done_page(approved=approve), headers=pages.page_headers())

    # Management API -----------------------------------------------------------------------

    def management(self, scopes: tuple[str, ...], action: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.tenant.authorize_management(_bearer(request), scopes)
            return await action(request)

        return endpoint

    async def revoke_access(self, request: Request) -> Response:
        self.tenant.revoke_access(request.path_params["user_id"], await _json_body(request))
        return Response(status_code=202)

    async def delete_refresh_tokens(self, request: Request) -> Response:
        self.tenant.delete_user_refresh_tokens(request.path_params["user_id"])
        return Response(status_code=202)

    async def delete_sessions(self, request: Request) -> Response:
        self.tenant.delete_user_sessions(request.path_params["user_id"])
        return Response(status_code=202)

    async def delete_grants(self, request: Request) -> Response:
        self.tenant.delete_grants(request.query_params.get("user_id"))
        return Response(status_code=204)

    async def get_user(self, request: Request) -> Response:
        return JSONResponse(self.tenant.get_user(request.path_params["user_id"]))

    async def patch_user(self, request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(self.tenant.patch_user(request.path_params["user_id"], body))

    async def user_connected_accounts(self, request: Request) -> Response:
        return JSONResponse(self.tenant.management_connected_accounts(request.path_params["user_id"]))

    # My Account API -----------------------------------------------------------------------

    async def my_accounts(self, request: Request) -> Response:
        user = self.tenant.authorize_my_account(_bearer(request), "read:me:connected_accounts")
        return JSONResponse(self.tenant.my_connected_accounts(user, request.query_params.get("connection")))

    async def my_connections(self, request: Request) -> Response:
        self.tenant.authorize_my_account(_bearer(request), "read:me:connected_accounts")
        return JSONResponse(self.tenant.my_connections())

    async def delete_my_account(self, request: Request) -> Response:
        user = self.tenant.authorize_my_account(_bearer(request), "delete:me:connected_accounts")
        self.tenant.delete_my_connected_account(user, request.path_params["account_id"])
        return Response(status_code=204)

    # The phone and the control plane ------------------------------------------------------

    async def guardian_pending(self, request: Request) -> Response:
        return JSONResponse({"requests": self.tenant.pending(request.path_params["sub"])})

    async def guardian_approve(self, request: Request) -> Response:
        self.tenant.decide(request.path_params["auth_req_id"], approve=True)
        return JSONResponse({"status": "approved"})

    async def guardian_deny(self, request: Request) -> Response:
        self.tenant.decide(request.path_params["auth_req_id"], approve=False)
        return JSONResponse({"status": "denied"})

    async def issued_secrets(self, _: Request) -> Response:
        return JSONResponse({"secrets": sorted(self.tenant.issued_secrets())})

    async def control_down(self, request: Request) -> Response:
        body = await _control_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("down"), bool):
            raise GuardianError(400, "invalid_body", 'expected {"down": true|false}')
        self.faults.set_down(body["down"])
        return JSONResponse({"down": body["down"]})

    async def control_fail_next(self, request: Request) -> Response:
        body = await _control_body(request)
        count, status = (body.get("count"), body.get("status", 500)) if isinstance(body, dict) else (None, None)
        if not isinstance(count, int) or not isinstance(status, int):
            raise GuardianError(400, "invalid_body", 'expected {"count": n, "status": 5xx}')
        try:
            self.faults.fail_next(count, status)
        except ValueError as exc:
            raise GuardianError(400, "invalid_body", str(exc)) from exc
        return JSONResponse({"count": count, "status": status})

    async def control_arm_fault(self, request: Request) -> Response:
        body = await _control_body(request)
        if not isinstance(body, dict) or set(body) - FAULT_FIELDS or not isinstance(body.get("path"), str):
            raise GuardianError(
                400,
                "invalid_body",
                'expected {"path": "/...", "grant_type"?: str, "status"?: 5xx, "delay_seconds"?: s, "count"?: n}',
            )
        grant_type, status, delay, count = (
            body.get(field) for field in ("grant_type", "status", "delay_seconds", "count")
        )
        if (
            not isinstance(grant_type, str | None)
            or not (status is None or _is_int(status))
            or not (delay is None or _is_int(delay) or isinstance(delay, float))
            or not (count is None or _is_int(count))
        ):
            raise GuardianError(400, "invalid_body", "grant_type is a string; status, delay_seconds, count numbers")
        try:
            fault = RequestFault(body["path"], grant_type, status, float(delay or 0), count if count is not None else 1)
        except ValueError as exc:
            raise GuardianError(400, "invalid_body", str(exc)) from exc
        self.faults.arm(fault)
        return JSONResponse(fault.as_json())

    async def control_slow_down(self, request: Request) -> Response:
        body = await _control_body(request)
        count = body.get("count") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise GuardianError(400, "invalid_body", 'expected {"count": n} with n >= 1')
        self.faults.slow_down_storm(count)
        return JSONResponse({"count": count})

    async def control_faults(self, _: Request) -> Response:
        return JSONResponse(
            {
                "armed": [fault.as_json() | {"remaining": remaining} for fault, remaining in self.faults.armed()],
                "observed": [
                    {
                        "at": seen.at,
                        "method": seen.method,
                        "path": seen.path,
                        "grant_type": seen.grant_type,
                        "ciba_request": seen.ciba_request,
                        "fault": seen.fault.as_json() if seen.fault is not None else None,
                    }
                    for seen in self.faults.observed()
                ],
            }
        )

    async def control_clear_faults(self, _: Request) -> Response:
        self.faults.clear()
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        authentication: list[tuple[str, str, Handler]] = [
            ("/.well-known/openid-configuration", "GET", self.discovery),
            ("/.well-known/jwks.json", "GET", self.jwks),
            ("/provider/{connection}/.well-known/openid-configuration", "GET", self.provider_discovery),
            ("/provider/{connection}/.well-known/jwks.json", "GET", self.provider_jwks),
            ("/bc-authorize", "POST", self.bc_authorize),
            ("/oauth/token", "POST", self.token),
            ("/oauth/revoke", "POST", self.revoke),
            ("/oauth/device/code", "POST", self.device_code),
            ("/userinfo", "GET", self.userinfo),
        ]
        # The tenant's pages answer with HTML (errors included), never with the JSON dialects.
        browser: list[tuple[str, str, Handler]] = [
            ("/authorize", "GET", self.authorize),
            ("/u/login", "GET", self.login_page),
            ("/u/login", "POST", self.login),
            ("/v2/logout", "GET", self.logout),
            (f"{pages.ASSETS_PREFIX}{{name}}", "GET", self.asset),
            ("/activate", "GET", self.activate),
            ("/activate/login", "POST", self.activate_login),
            ("/activate/confirm", "POST", self.activate_confirm),
        ]
        management: list[tuple[str, str, tuple[str, ...], Handler]] = [
            (
                "/users/{user_id}/revoke-access",
                "POST",
                ("delete:sessions", "delete:refresh_tokens"),
                self.revoke_access,
            ),
            ("/users/{user_id}/refresh-tokens", "DELETE", ("delete:refresh_tokens",), self.delete_refresh_tokens),
            ("/users/{user_id}/sessions", "DELETE", ("delete:sessions",), self.delete_sessions),
            ("/users/{user_id}/connected-accounts", "GET", ("read:users",), self.user_connected_accounts),
            ("/users/{user_id}", "GET", ("read:users",), self.get_user),
            ("/users/{user_id}", "PATCH", ("update:users",), self.patch_user),
            ("/grants", "DELETE", ("delete:grants",), self.delete_grants),
        ]
        other: list[tuple[str, str, Handler]] = [
            ("/me/v1/connected-accounts/accounts", "GET", self.my_accounts),
            ("/me/v1/connected-accounts/connections", "GET", self.my_connections),
            ("/me/v1/connected-accounts/accounts/{account_id}", "DELETE", self.delete_my_account),
            (f"{GUARDIAN_PREFIX}/users/{{sub}}/requests", "GET", self.guardian_pending),
            (f"{GUARDIAN_PREFIX}/requests/{{auth_req_id}}/approve", "POST", self.guardian_approve),
            (f"{GUARDIAN_PREFIX}/requests/{{auth_req_id}}/deny", "POST", self.guardian_deny),
            (f"{CONTROL_PREFIX}/issued-secrets", "GET", self.issued_secrets),
            (f"{CONTROL_PREFIX}/down", "POST", self.control_down),
            (f"{CONTROL_PREFIX}/fail-next", "POST", self.control_fail_next),
            (f"{CONTROL_PREFIX}/faults", "POST", self.control_arm_fault),
            (f"{CONTROL_PREFIX}/faults", "GET", self.control_faults),
            (f"{CONTROL_PREFIX}/faults", "DELETE", self.control_clear_faults),
            (f"{CONTROL_PREFIX}/slow-down", "POST", self.control_slow_down),
        ]
        routes = [
            # RFC 6749 5.1/5.2: token responses, errors included, must not be cached.
            Route(path, _guarded(handler, NO_STORE if path.startswith(("/oauth", "/bc-")) else None), methods=[method])
            for path, method, handler in authentication
        ]
        routes += [
            Route(f"/api/v2{path}", _guarded(self.management(scopes, handler)), methods=[method])
            for path, method, scopes, handler in management
        ]
        routes += [Route(path, _guarded(handler), methods=[method]) for path, method, handler in other]
        routes += [Route(path, handler, methods=[method]) for path, method, handler in browser]
        return routes


def _single_query_params(request: Request) -> dict[str, str]:
    """The query of a browser request, each parameter once (RFC 6749 3.1)."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in params:
            raise AuthorizeRefused("invalid_request", f"Parameter {name} must not be repeated")
        params[name] = value
    return params


def _error_page(refused: AuthorizeRefused, status: int = 400) -> Response:
    return HTMLResponse(pages.error_page(refused.error, refused.description), status, headers=pages.page_headers())


async def _control_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise GuardianError(400, "invalid_body", "the body must be JSON") from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _http_error(_: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = {404: "not_found", 405: "method_not_allowed"}.get(status, "server_error")
    return JSONResponse({"error": error, "error_description": str(getattr(exc, "detail", ""))}, status)


def build_app(tenant: Tenant, faults: FaultInjector) -> ASGIApp:
    app = Starlette(routes=_Endpoints(tenant, faults).routes(), exception_handlers={HTTPException: _http_error})
    # CORS outside the outage switches: an SPA must be able to read a 5xx too.
    return CorsMiddleware(FaultMiddleware(app, faults), tenant.allowed_web_origins)
