"""Lambda function URLs on 127.0.0.1, so that a function's `FunctionUrlConfig` can really be called locally.

moto records function URL configurations but serves nothing at the URL it makes up. `FunctionUrlGateway` gives
each function URL of the template its own HTTP listener on 127.0.0.1 (a function URL is the root of its own host,
so one port per function), turns each request into the function URL event (payload format 2.0) and the handler's
answer into the HTTP response, as Lambda does:

- a result with `statusCode` is a full response (`headers`, `body`, `isBase64Encoded`, `cookies`); any other result
  is sent as a 200 `application/json` body;
- a function error or timeout is a 502 "Internal Server Error"; the caller never sees the error payload;
- `AuthType: AWS_IAM` needs SigV4 signatures, which the local stack does not check, so such URLs answer 403 to
  everything rather than pretending to authorize. `AuthType: NONE` URLs pass every request to the function, whose
  own code must authenticate it (as the kill switch does).

CORS settings are not applied.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aegis_local.aws.lambdas import LambdaRouter

__all__ = ["FunctionUrlGateway"]

logger = logging.getLogger(__name__)

# Content types whose body a function URL event carries as text; anything else is base64.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form")
MAX_REQUEST_BYTES = 6 * 1024 * 1024


class _Listener:
    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread


class FunctionUrlGateway:
    """One loopback listener per function URL; `router()` is looked up per request (it exists once the stack runs)."""

    def __init__(self, router: Callable[[], LambdaRouter | None], account_id: str, region: str) -> None:
        self._router = router
        self.account_id = account_id
        self.region = region
        self._listeners: dict[str, _Listener] = {}
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def urls(self) -> dict[str, str]:
        """Function name -> local URL."""
        return dict(self._urls)

    def serve(self, function_name: str, auth_type: str) -> str:
        """Start the listener of `function_name`'s URL; returns the URL (`http://127.0.0.1:<port>/`)."""
        gateway = self
        url_id = uuid.uuid4().hex

        class Handler(_FunctionUrlHandler):
            pass

        Handler.gateway = gateway
        Handler.function_name = function_name
        Handler.auth_type = auth_type
        Handler.url_id = url_id
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, name=f"function-url-{function_name}", kwargs={"poll_interval": 0.2}
        )
        thread.daemon = True
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with self._lock:
            self._listeners[function_name] = _Listener(server, thread)
            self._urls[function_name] = url
        return url

    def close(self) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
            self._urls.clear()
        for listener in listeners:
            listener.server.shutdown()
            listener.server.server_close()
            listener.thread.join(timeout=5)

    def router(self) -> LambdaRouter | None:
        return self._router()


class _FunctionUrlHandler(BaseHTTPRequestHandler):
    gateway: FunctionUrlGateway
    function_name: str
    auth_type: str
    url_id: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("function URL %s: " + format, self.function_name, *args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        if self.auth_type != "NONE":
            self._send(403, {"content-type": "application/json"}, b'{"Message":"Forbidden"}')
            return
        router = self.gateway.router()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._send(413, {"content-type": "application/json"}, b'{"Message":"Request Too Long"}')
            return
        body = self.rfile.read(length) if length else b""
        if router is None:
            self._send(503, {"content-type": "text/plain"}, b"Service Unavailable")
            return
        event = self._event(body)
        result = router.invoke(self.function_name, json.dumps(event), "RequestResponse")
        if result.function_error:
            self._send(502, {"content-type": "text/plain"}, b"Internal Server Error")
            return
        status, headers, payload, cookies = _response(result.json())
        self._send(status, headers, payload, cookies)

    def _event(self, body: bytes) -> dict[str, Any]:
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        query: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        content_type = headers.get("content-type", "")
        is_text = not body or content_type.startswith(_TEXT_TYPES)
        now = datetime.now(UTC)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": parts.path or "/",
            "rawQueryString": parts.query,
            "headers": headers,
            "requestContext": {
                "accountId": "anonymous",
                "apiId": self.url_id,
                "domainName": headers.get("host", ""),
                "domainPrefix": self.url_id,
                "http": {
                    "method": self.command,
                    "path": parts.path or "/",
                    "protocol": self.request_version,
                    "sourceIp": self.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": not is_text,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if body:
            event["body"] = body.decode("utf-8", errors="replace") if is_text else base64.b64encode(body).decode()
        return event

    def _send(self, status: int, headers: dict[str, str], payload: bytes, cookies: list[str] | None = None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        for cookie in cookies or []:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _response(result: Any) -> tuple[int, dict[str, str], bytes, list[str]]:
    """Lambda's function URL response rules: a `statusCode` makes it a full response, anything else is JSON."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body")
        if body is None:
            payload = b""
        elif result.get("isBase64Encoded"):
            payload = base64.b64decode(str(body))
        else:
            payload = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        cookies = [str(cookie) for cookie in result.get("cookies") or []]
        return int(result["statusCode"]), headers, payload, cookies
    return 200, {"content-type": "application/json"}, json.dumps(result).encode("utf-8"), []
