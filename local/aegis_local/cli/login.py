"""`aegis-local login` and `logout`: an operator's access token for the ops API, through the OAuth device
authorization grant (RFC 8628), kept in a private cache file until it expires.

The CLI is a public client: it holds no secret, so the user signs in in a browser and the CLI polls the token
endpoint with the device code. The access token is cached per issuer and audience in
`$XDG_CACHE_HOME/aegis-local/` (default `~/.cache/aegis-local/`), mode 0600 in a 0700 directory, and is never
printed. No refresh token is asked for or kept: when the access token expires, the operator logs in again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aegis_local.cli.common import (
    EXIT_AUTH,
    EXIT_FORBIDDEN,
    EXIT_OK,
    CommandFailed,
)

__all__ = [
    "API_AUDIENCE_ENV",
    "CLI_CLIENT_ID_ENV",
    "DEVICE_CODE_GRANT",
    "ISSUER_ENV",
    "OPS_API_SCOPES",
    "CachedToken",
    "DeviceAuthorization",
    "LoginDenied",
    "LoginExpired",
    "LoginSettings",
    "NotLoggedIn",
    "TokenCache",
    "json_object",
    "poll_for_token",
    "register",
    "start_device_authorization",
]

ISSUER_ENV = "AEGIS_ISSUER"
CLI_CLIENT_ID_ENV = "AEGIS_CLI_CLIENT_ID"
API_AUDIENCE_ENV = "AEGIS_API_AUDIENCE"
CACHE_HOME_ENV = "XDG_CACHE_HOME"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Every scope of the ops API; the provider grants the intersection with the user's permissions.
OPS_API_SCOPES = ("aegis:read", "aegis:audit", "aegis:scan", "aegis:undo", "aegis:killswitch", "aegis:rearm")
LOGIN_SCOPES = ("openid", "profile", "email")
# RFC 8628 §3.5: on slow_down the interval grows by 5 seconds for this and every later request.
SLOW_DOWN_STEP_SECONDS = 5.0
# RFC 8628 §3.2: when the provider names no interval, the client waits 5 seconds.
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
# A token this close to its expiry is treated as expired: a command started now would see it refused mid-way.
EXPIRY_MARGIN_SECONDS = 30.0
HTTP_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=5.0, pool=5.0)
LOGIN_HINT = "run `aegis-local login`"


class NotLoggedIn(CommandFailed):
    """No usable token: none cached, expired, unreadable, or refused by the API."""

    exit_code = EXIT_AUTH


class LoginExpired(CommandFailed):
    """The device code expired before the user confirmed it in the browser."""

    exit_code = EXIT_AUTH


class LoginDenied(CommandFailed):
    """The user (or the provider) refused the sign-in."""

    exit_code = EXIT_FORBIDDEN


# ----------------------------------------------------------------------------------------------------------------
# settings


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def require_secure_url(url: str, what: str) -> str:
    """`url` if it is https, or plain http on loopback (the local stack); a token never crosses a network in clear."""
    parts = httpx.URL(url)
    if parts.scheme not in ("https", "http") or not parts.host:
        raise CommandFailed(f"{what} must be an absolute http(s) URL, not {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.host):
        raise CommandFailed(f"{what} must use https (plain http only on loopback): {url}")
    return url


@dataclass(frozen=True)
class LoginSettings:
    """Where to log in and for which API; from the options, else the environment `aegis-local up` prints."""

    issuer: str
    audience: str
    client_id: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, need_client: bool = False) -> Self:
        issuer = _setting(args, "issuer", ISSUER_ENV, "--issuer")
        audience = _setting(args, "audience", API_AUDIENCE_ENV, "--audience")
        client_id = _setting(args, "client_id", CLI_CLIENT_ID_ENV, "--client-id") if need_client else None
        require_secure_url(issuer, "the issuer")
        # Auth0 issuers end in "/"; a user who leaves it off means the same tenant (and the same cache entry).
        return cls(issuer=issuer if issuer.endswith("/") else issuer + "/", audience=audience, client_id=client_id)


def _setting(args: argparse.Namespace, name: str, environment: str, option: str) -> str:
    value = getattr(args, name, None) or os.environ.get(environment)
    if not value:
        raise CommandFailed(f"give {option} (or set {environment}; `aegis-local up` prints the export line)")
    return str(value)


# ----------------------------------------------------------------------------------------------------------------
# the token cache


class CachedToken(BaseModel):
    """What the cache keeps of a token response: enough to call the API and to say who is logged in."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    issuer: str
    audience: str
    access_token: str = Field(min_length=1, repr=False)
    token_type: str = "Bearer"
    expires_at: float
    scope: str = ""

    def expired(self, now: float) -> bool:
        return now >= self.expires_at - EXPIRY_MARGIN_SECONDS

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    @property
    def subject(self) -> str:
        """The token's `sub`, read without verification (the API verifies; this only labels messages)."""
        claims = unverified_claims(self.access_token)
        return str(claims.get("sub", "?"))


def unverified_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


class TokenCache:
    """One private file per issuer and audience under `$XDG_CACHE_HOME/aegis-local/`."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_cache_directory()

    def path(self, settings: LoginSettings) -> Path:
        # Hashed so that a URL becomes a safe file name, and the pair never collides with another tenant's.
        key = hashlib.sha256(f"{settings.issuer}\n{settings.audience}".encode()).hexdigest()[:24]
        return self.directory / f"token-{key}.json"

    def store(self, token: CachedToken, settings: LoginSettings) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)  # mkdir's mode is masked by umask and ignored for an existing directory
        target = self.path(settings)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        # Created 0600 from the first byte: the token is never readable by others, not even for a moment.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(token.model_dump_json())
            temporary.replace(target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return target

    def load(self, settings: LoginSettings, now: float | None = None) -> CachedToken:
        """The cached token for these settings, or `NotLoggedIn` saying why not."""
        path = self.path(settings)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise NotLoggedIn(f"not logged in to {settings.issuer} for {settings.audience}: {LOGIN_HINT}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Another user could have read (or planted) it: do not use it.
            raise NotLoggedIn(f"the token cache {path} is open to other users; delete it and {LOGIN_HINT}")
        try:
            token = CachedToken.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError) as error:
            raise NotLoggedIn(f"the token cache {path} is unreadable ({type(error).__name__}): {LOGIN_HINT}") from None
        if token.issuer != settings.issuer or token.audience != settings.audience:
            raise NotLoggedIn(f"the token cache {path} is for another tenant: {LOGIN_HINT}")
        if token.expired(time.time() if now is None else now):
            raise NotLoggedIn(f"your token for {settings.issuer} expired: {LOGIN_HINT}")
        return token

    def remove(self, settings: LoginSettings) -> bool:
        path = self.path(settings)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed


def default_cache_directory() -> Path:
    base = os.environ.get(CACHE_HOME_ENV) or str(Path.home() / ".cache")
    return Path(base) / "aegis-local"


# ----------------------------------------------------------------------------------------------------------------
# the device authorization grant


class DeviceAuthorization(BaseModel):
    """The provider's answer to the device authorization request (RFC 8628 §3.2)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    device_code: str = Field(min_length=1, repr=False)
    user_code: str = Field(min_length=1)
    verification_uri: str = Field(min_length=1)
    verification_uri_complete: str | None = None
    expires_in: float = Field(gt=0)
    interval: float = Field(default=DEFAULT_POLL_INTERVAL_SECONDS, ge=0)


@dataclass(frozen=True)
class Endpoints:
    device_authorization: str
    token: str


def provider_endpoints(http: httpx.Client, issuer: str) -> Endpoints:
    """The device and token endpoints from the issuer's discovery document; Auth0's fixed paths if it names none."""
    discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = http.get(discovery)
    except httpx.HTTPError as error:
        raise CommandFailed(f"cannot reach the issuer {issuer}: {error}") from error
    if response.status_code != 200:
        raise CommandFailed(f"the issuer's discovery document answered {response.status_code}: {discovery}")
    document = json_object(response)
    device = document.get("device_authorization_endpoint") or issuer + "oauth/device/code"
    token = document.get("token_endpoint") or issuer + "oauth/token"
    return Endpoints(
        device_authorization=require_secure_url(str(device), "the device authorization endpoint"),
        token=require_secure_url(str(token), "the token endpoint"),
    )


def start_device_authorization(
    http: httpx.Client, endpoints: Endpoints, settings: LoginSettings, scopes: Iterable[str]
) -> DeviceAuthorization:
    if settings.client_id is None:
        raise CommandFailed("the device authorization grant needs a client id (--client-id)")
    form = {"client_id": settings.client_id, "scope": " ".join(scopes), "audience": settings.audience}
    try:
        response = http.post(endpoints.device_authorization, data=form)
    except httpx.HTTPError as error:
        raise CommandFailed(f"cannot reach {endpoints.device_authorization}: {error}") from error
    body = json_object(response)
    if response.status_code != 200:
        raise CommandFailed(f"the provider refused to start the login: {_oauth_error(body, response)}")
    try:
        return DeviceAuthorization.model_validate(body)
    except ValidationError as error:
        raise CommandFailed(f"the provider's device authorization answer is malformed: {error}") from None


def poll_for_token(
    http: httpx.Client,
    endpoints: Endpoints,
    settings: LoginSettings,
    authorization: DeviceAuthorization,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_slow_down: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Poll the token endpoint until the user confirms (the token response), denies or lets the code expire."""
    interval = authorization.interval
    deadline = clock() + authorization.expires_in
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": authorization.device_code, "client_id": settings.client_id}
    while True:
        # RFC 8628 §3.4: wait the interval before each request, the first one included.
        sleep(interval)
        if clock() > deadline:
            raise LoginExpired(f"the code {authorization.user_code} expired before it was confirmed: {LOGIN_HINT}")
        try:
            response = http.post(endpoints.token, data=form)
        except httpx.TransportError:
            # A dropped connection is not an answer: try again at the next interval, until the code expires.
            continue
        body = json_object(response)
        if response.status_code == 200:
            if not isinstance(body.get("access_token"), str) or not body["access_token"]:
                raise CommandFailed("the provider's token answer has no access_token")
            return body
        error = str(body.get("error", ""))
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP_SECONDS
            if on_slow_down is not None:
                on_slow_down(interval)
            continue
        if error in ("expired_token", "invalid_grant"):
            raise LoginExpired(
                f"the code {authorization.user_code} expired or is no longer valid "
                f"({_oauth_error(body, response)}): {LOGIN_HINT}"
            )
        if error == "access_denied":
            raise LoginDenied(f"the sign-in was denied ({_oauth_error(body, response)})")
        raise CommandFailed(f"the provider refused the login: {_oauth_error(body, response)}")


def cached_token_from(body: dict[str, Any], settings: LoginSettings, now: float) -> CachedToken:
    expires_in = body.get("expires_in")
    if not isinstance(expires_in, int | float) or expires_in <= 0:
        raise CommandFailed("the provider's token answer has no usable expires_in")
    scope = body.get("scope")
    if not isinstance(scope, str):
        # Auth0 leaves `scope` out when it granted what was asked; the token's own claim is then the truth.
        scope = str(unverified_claims(str(body["access_token"])).get("scope", ""))
    return CachedToken(
        issuer=settings.issuer,
        audience=settings.audience,
        access_token=str(body["access_token"]),
        token_type=str(body.get("token_type") or "Bearer"),
        expires_at=now + float(expires_in),
        scope=scope,
    )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's body when it is a JSON object, else {} (an HTML error page, a list, nothing): callers read
    fields from what a provider or the ops API answered without trusting it to be JSON."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _oauth_error(body: dict[str, Any], response: httpx.Response) -> str:
    error = body.get("error") or f"HTTP {response.status_code}"
    description = body.get("error_description")
    return f"{error}: {description}" if description else str(error)


# ----------------------------------------------------------------------------------------------------------------
# commands


def cmd_login(args: argparse.Namespace) -> int:
    settings = LoginSettings.from_args(args, need_client=True)
    scopes = [*LOGIN_SCOPES, *(args.scope or OPS_API_SCOPES)]
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        endpoints = provider_endpoints(http, settings.issuer)
        authorization = start_device_authorization(http, endpoints, settings, scopes)
        print(f"To sign in, open {authorization.verification_uri} and enter the code {authorization.user_code}")
        if authorization.verification_uri_complete:
            print(f"  (or open {authorization.verification_uri_complete} directly)")
        minutes = max(1, round(authorization.expires_in / 60))
        print(f"Waiting for you to confirm (the code expires in {minutes} min; Ctrl-C to give up)...", flush=True)
        body = poll_for_token(
            http,
            endpoints,
            settings,
            authorization,
            on_slow_down=lambda interval: print(f"  the provider asked to slow down: polling every {interval:g} s"),
        )
    token = cached_token_from(body, settings, time.time())
    TokenCache().store(token, settings)
    granted = " ".join(sorted(token.scopes - set(LOGIN_SCOPES))) or "no API scope"
    expires = _minutes_left(token)
    print(f"Logged in as {token.subject} to {settings.audience} ({granted}); the token expires in {expires}")
    return EXIT_OK


def _minutes_left(token: CachedToken) -> str:
    return f"{max(0, round((token.expires_at - time.time()) / 60))} min"


def cmd_logout(args: argparse.Namespace) -> int:
    settings = LoginSettings.from_args(args)
    if TokenCache().remove(settings):
        print(f"Logged out: the cached token for {settings.issuer} ({settings.audience}) is deleted")
    else:
        print(f"Not logged in to {settings.issuer} for {settings.audience}: nothing to delete")
    return EXIT_OK


def add_login_options(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("--issuer", help=f"the Auth0 tenant's issuer URL (default: ${ISSUER_ENV})")
    parser.add_argument("--audience", help=f"the ops API's audience (default: ${API_AUDIENCE_ENV})")


LOGIN_EXAMPLES = """\
examples:
  aegis-local login
  aegis-local login --issuer https://TENANT.auth0.com/ --client-id CLIENT_ID --audience https://aegis.example/ops
  aegis-local login --scope aegis:read --scope aegis:audit      ask for read-only access

It prints a URL and a code: open the URL in a browser, check that it shows the same code, and sign in. The token is
kept in $XDG_CACHE_HOME/aegis-local/ (readable by you only) until it expires; it is never printed.

exit status: 0 logged in, 3 the code expired, 4 the sign-in was denied, 1 any other failure
"""

LOGOUT_EXAMPLES = """\
examples:
  aegis-local logout
  aegis-local logout --issuer https://TENANT.auth0.com/ --audience https://aegis.example/ops
"""


def register(subparsers: Any) -> None:
    login = subparsers.add_parser(
        "login",
        help="sign in (in a browser) and keep an access token for the operator commands",
        description="Sign in with the OAuth device authorization grant and keep the access token for the operator "
        "commands (missions, show, audit, scan, undo, kill, rearm).",
        epilog=LOGIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_login_options(login)
    login.add_argument("--client-id", help=f"the CLI's Auth0 application (default: ${CLI_CLIENT_ID_ENV})")
    login.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help="ask only for this ops API scope (repeatable; default: all of them, the tenant grants what you may have)",
    )
    login.set_defaults(handler=cmd_login)

    logout = subparsers.add_parser(
        "logout",
        help="delete the cached access token",
        description="Delete the access token `aegis-local login` cached for this issuer and audience.",
        epilog=LOGOUT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_login_options(logout)
    logout.set_defaults(handler=cmd_logout)
