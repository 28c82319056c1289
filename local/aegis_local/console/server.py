"""The console on 127.0.0.1: the static build (`console/dist`), a `config.json` generated for the running stack, and
the same security headers as the CloudFront distribution of the template (`ConsoleResponseHeadersPolicy`).

The console's port must be known before the stack starts (the ops API's CORS origins are a template parameter) and
the stack's URLs only after, so the server binds first and is configured once the stack runs:

    with ConsoleServer() as console:
        with LocalStack(parameters=console.stack_parameters()) as stack:
            console.attach(stack)       # config.json, and the emulator learns the console's URLs
            print(console.url)
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from aegis_local.aws.lambda_proxy import LoopbackListener
from aegis_local.console.build import DIST_DIR

__all__ = [
    "CONSOLE_CLIENT_ID",
    "ConsoleNotConfigured",
    "ConsoleRuntimeConfig",
    "ConsoleServer",
    "content_security_policy",
    "origin_of",
    "security_headers",
    "start_local_console",
]

# The console's application at the emulator (aegis_local.auth0.config.DEFAULT_CONSOLE_CLIENT_ID).
CONSOLE_CLIENT_ID = "aegis-console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


class ConsoleNotConfigured(RuntimeError):
    """config.json was asked for before the server knew the stack it belongs to."""


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL: what CSP sources, CORS and the emulator's web origins compare."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(issuer: str, api_url: str) -> str:
    """The console's CSP: its own scripts and styles only (no inline script or style), tokens sent only to the issuer
    and the ops API, and the issuer alone in a frame (the SDK's silent `prompt=none` renewal)."""
    issuer_origin, api_origin = origin_of(issuer), origin_of(api_url)
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": " ".join(dict.fromkeys(["'self'", issuer_origin, api_origin])),
        "frame-src": issuer_origin,
        "form-action": "'self'",
        "base-uri": "'none'",
        "object-src": "'none'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(issuer: str, api_url: str) -> dict[str, str]:
    """Every response's headers besides the content's (HSTS is CloudFront's alone: it means nothing over http)."""
    return {
        "Content-Security-Policy": content_security_policy(issuer, api_url),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


@dataclass(frozen=True)
class ConsoleRuntimeConfig:
    """What `/config.json` tells the console: where to log in and which API to call."""

    issuer: str
    client_id: str
    audience: str
    api_url: str

    def __post_init__(self) -> None:
        if not self.issuer.endswith("/"):
            raise ValueError("issuer must end with a slash, as Auth0's does")
        origin_of(self.issuer)
        origin_of(self.api_url)

    @classmethod
    def of_stack(cls, stack: Any, *, client_id: str = CONSOLE_CLIENT_ID) -> ConsoleRuntimeConfig:
        """The running local stack's issuer, its ops API (`OpsApi`) and that API's audience."""
        issuer = stack.endpoints.issuer
        if not issuer:
            raise ConsoleNotConfigured("the console needs the stack's Auth0 issuer (the emulator, or --issuer)")
        return cls(
            issuer=issuer,
            client_id=client_id,
            audience=str(stack.parameters["OpsApiAudience"]),
            api_url=stack.http_api_url("OpsApi"),
        )

    def as_json(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "clientId": self.client_id,
            "audience": self.audience,
            "apiUrl": self.api_url,
            "myAccountAudience": f"{self.issuer}me/",
        }


class ConsoleServer:
    """Serves `dist_dir` and `/config.json` on 127.0.0.1 until `stop()`."""

    def __init__(self, dist_dir: Path = DIST_DIR, *, port: int = 0) -> None:
        self.dist_dir = dist_dir.resolve()
        self._port = port
        self._config: ConsoleRuntimeConfig | None = None
        self._listener: LoopbackListener | None = None

    # -- lifecycle

    def start(self) -> str:
        if self._listener is not None:
            raise RuntimeError("the console server is already running")
        if not (self.dist_dir / "index.html").is_file():
            raise FileNotFoundError(f"{self.dist_dir} holds no console build (make console)")
        owner = self

        class Handler(_ConsoleHandler):
            server_of = owner

        self._listener = LoopbackListener(Handler, "aegis-console", port=self._port)
        return self.url

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._listener = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- where it is and what it serves

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>/`: the console's page, and the redirect URI of its logins."""
        if self._listener is None:
            raise RuntimeError("start the console server first")
        return self._listener.url

    @property
    def origin(self) -> str:
        return origin_of(self.url)

    @property
    def config(self) -> ConsoleRuntimeConfig | None:
        return self._config

    def configure(self, config: ConsoleRuntimeConfig) -> None:
        self._config = config

    def stack_parameters(self) -> dict[str, str]:
        """Template parameters a local stack needs for this console: its origin may call the ops API (CORS)."""
        return {"ConsoleOrigins": self.origin}

    def attach(self, stack: Any) -> ConsoleRuntimeConfig:
        """Serve `stack`'s config.json and register the console's URLs with the stack's Auth0 emulator (callback,
        web origin for CORS and the silent-login iframe, logout return), as an administrator would in Auth0."""
        config = ConsoleRuntimeConfig.of_stack(stack)
        emulator = stack.emulator
        if emulator is not None:
            emulator.register_application_urls(
                config.client_id, callbacks=(self.url,), web_origins=(self.origin,), logout_urls=(self.url,)
            )
        self.configure(config)
        return config


def start_local_console(log: Callable[[str], None] = print) -> tuple[ConsoleServer | None, str]:
    """The console for a local stack, built first if its inputs changed and listening (attach it to the stack once
    it runs), or None and why it cannot be served (no npm, a failed build, no free port): a stack without its
    console is still a stack, so callers say why and go on."""
    from aegis_local.console.build import ConsoleBuildError, ensure_built

    try:
        server = ConsoleServer(ensure_built(log=log))
        server.start()
    except (ConsoleBuildError, OSError) as error:
        return None, str(error).splitlines()[0]
    return server, ""


class _ConsoleHandler(BaseHTTPRequestHandler):
    server_of: ConsoleServer
    protocol_version = "HTTP/1.1"
    server_version = "aegis-console"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stack's own output says what matters."""

    def do_GET(self) -> None:
        self._serve(include_body=True)

    def do_HEAD(self) -> None:
        self._serve(include_body=False)

    def _serve(self, *, include_body: bool) -> None:
        config = self.server_of.config
        path = urlsplit(self.path).path
        if path == "/config.json":
            if config is None:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b'{"message":"the stack is still starting"}', ".json", None)
                return
            body = json.dumps(config.as_json()).encode()
            self._send(HTTPStatus.OK, body if include_body else b"", ".json", config, length=len(body))
            return
        file = self._file(path)
        if file is None:
            self._send(HTTPStatus.NOT_FOUND, b"Not Found", ".txt", config)
            return
        body = file.read_bytes()
        self._send(HTTPStatus.OK, body if include_body else b"", file.suffix, config, length=len(body))

    def _file(self, path: str) -> Path | None:
        """The build's file for a URL path; None outside the build, for dot files and for directories."""
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        if any(part.startswith(".") or part == "" for part in relative.split("/")):
            return None
        root = self.server_of.dist_dir
        candidate = (root / relative).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        suffix: str,
        config: ConsoleRuntimeConfig | None,
        *,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "text/plain"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        # The page and its config change with every build and stack; nothing here is worth a stale copy.
        self.send_header("Cache-Control", "no-store")
        if config is not None:
            for name, value in security_headers(config.issuer, config.api_url).items():
                self.send_header(name, value)
        else:
            # Before the stack is known: no source beyond the console itself.
            self.send_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
            self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body:
            self.wfile.write(body)
