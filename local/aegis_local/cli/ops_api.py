"""The ops HTTP API as the operator commands call it: the bearer token from `aegis-local login`, and every refusal
turned into one line that says what to do (log in, which scope is missing, why the request was refused)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

import httpx

from aegis_local.cli.common import EXIT_CONFLICT, EXIT_FORBIDDEN, CommandFailed
from aegis_local.cli.login import (
    LOGIN_HINT,
    CachedToken,
    LoginSettings,
    NotLoggedIn,
    TokenCache,
    add_login_options,
    json_object,
    require_secure_url,
)

__all__ = [
    "API_URL_ENV",
    "ApiForbidden",
    "ApiRefused",
    "OpsApiClient",
    "add_api_options",
    "path_segment",
]

API_URL_ENV = "AEGIS_API_URL"
# A report or a page of missions is small, but the first call may wake a cold function behind the gateway.
HTTP_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=5.0)


class ApiForbidden(CommandFailed):
    """403: the token is valid but lacks the route's scope."""

    exit_code = EXIT_FORBIDDEN


class ApiRefused(CommandFailed):
    """409: the API understood the request and refuses it as things stand (the reason is in the message)."""

    exit_code = EXIT_CONFLICT

    def __init__(self, message: str, reason: str | None) -> None:
        super().__init__(message)
        self.reason = reason


def path_segment(value: str) -> str:
    """An id as one URL path segment: a '/' or '?' in it cannot reach another route."""
    return quote(value, safe="")


@dataclass
class OpsApiClient:
    base_url: str
    token: CachedToken
    http: httpx.Client

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        base_url = getattr(args, "api", None) or os.environ.get(API_URL_ENV)
        if not base_url:
            raise CommandFailed(f"give --api (or set {API_URL_ENV}) to the ops API URL (`aegis-local up` prints it)")
        require_secure_url(base_url, "the ops API URL")
        settings = LoginSettings.from_args(args)
        token = TokenCache().load(settings)
        return cls(base_url=base_url.rstrip("/"), token=token, http=httpx.Client(timeout=HTTP_TIMEOUT))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, scope: str | None, params: Mapping[str, str] | None = None) -> Any:
        return self._send("GET", path, scope, params=params).json()

    def get_text(self, path: str, scope: str | None) -> str:
        return self._send("GET", path, scope).text

    def post_json(
        self, path: str, scope: str | None, body: Mapping[str, Any] | None = None, *, accept: tuple[int, ...] = ()
    ) -> Any:
        """POST `body`; an error status listed in `accept` is an answer to return, not a refusal."""
        return self._send("POST", path, scope, json=dict(body or {}), accept=accept).json()

    def _send(
        self,
        method: str,
        path: str,
        scope: str | None,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        accept: tuple[int, ...] = (),
    ) -> httpx.Response:
        url = self.base_url + path
        headers = {"authorization": f"Bearer {self.token.access_token}"}
        try:
            response = self.http.request(method, url, params=dict(params or {}), json=json, headers=headers)
        except httpx.HTTPError as error:
            raise CommandFailed(f"cannot reach the ops API at {self.base_url}: {error}") from error
        if response.status_code < 400 or response.status_code in accept:
            return response
        raise self._refusal(method, path, scope, response)

    def _refusal(self, method: str, path: str, scope: str | None, response: httpx.Response) -> CommandFailed:
        body = json_object(response)
        message = str(body.get("message") or response.reason_phrase or "").strip()
        route = f"{method} {path.split('?', maxsplit=1)[0]}"
        status = response.status_code
        if status == 401:
            why = response.headers.get("www-authenticate", "")
            detail = f" ({why})" if why else ""
            return NotLoggedIn(f"the ops API refused your token{detail}: {LOGIN_HINT}")
        if status == 403:
            held = " ".join(sorted(self.token.scopes)) or "none"
            needed = f"the {scope} scope" if scope else "a scope"
            return ApiForbidden(
                f"forbidden: {route} needs {needed}, which your token for {self.token.subject} does not hold "
                f"(it holds: {held}); ask an administrator for the permission, then {LOGIN_HINT} again"
            )
        if status == 409:
            reason = body.get("reason")
            return ApiRefused(
                f"refused: {message}" + (f" (reason: {reason})" if reason else ""),
                str(reason) if reason else None,
            )
        if status == 404:
            return CommandFailed(f"not found: {message or route}")
        if status == 400:
            return CommandFailed(f"bad request: {message}")
        return CommandFailed(f"the ops API answered {status} to {route}: {message}")


def add_api_options(parser: argparse.ArgumentParser) -> None:
    """Where the API is and which login's token to use: options, else what `aegis-local up` exports."""
    group = parser.add_argument_group("API and login")
    group.add_argument("--api", metavar="URL", help=f"the ops API URL (default: ${API_URL_ENV})")
    add_login_options(group)
