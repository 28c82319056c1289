"""Lambda function URLs on 127.0.0.1, so that a function's `FunctionUrlConfig` can really be called locally.

moto records function URL configurations but serves nothing at the URL it makes up. `FunctionUrlGateway` gives
each function URL of the template its own HTTP listener on 127.0.0.1 (a function URL is the root of its own host,
so one port per function), turns each request into the function URL event (payload format 2.0) and the handler's
answer into the HTTP response, as Lambda does (the event and response rules are shared with the HTTP API
emulation, `aegis_local.aws.lambda_proxy`):

- a result with `statusCode` is a full response (`headers`, `body`, `isBase64Encoded`, `cookies`); any other result
  is sent as a 200 `application/json` body;
- a function error or timeout is a 502 "Internal Server Error"; the caller never sees the error payload;
- `AuthType: AWS_IAM` needs SigV4 signatures, which the local stack does not check, so such URLs answer 403 to
  everything rather than pretending to authorize. `AuthType: NONE` URLs pass every request to the function, whose
  own code must authenticate it (as the kill switch does).

CORS settings are not applied.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from aegis_local.aws.lambda_proxy import (
    LoopbackListener,
    ProxyResponse,
    RequestTooLarge,
    invoke_for_response,
    proxy_event,
    read_request,
    send_response,
)
from aegis_local.aws.lambdas import LambdaRouter

__all__ = ["FunctionUrlGateway"]

logger = logging.getLogger(__name__)

_FORBIDDEN = ProxyResponse(403, {"content-type": "application/json"}, b'{"Message":"Forbidden"}')
_TOO_LONG = ProxyResponse(413, {"content-type": "application/json"}, b'{"Message":"Request Too Long"}')
_UNAVAILABLE = ProxyResponse(503, {"content-type": "text/plain"}, b"Service Unavailable")
_FUNCTION_FAILED = ProxyResponse(502, {"content-type": "text/plain"}, b"Internal Server Error")


class FunctionUrlGateway:
    """One loopback listener per function URL; `router()` is looked up per request (it exists once the stack runs)."""

    def __init__(self, router: Callable[[], LambdaRouter | None], account_id: str, region: str) -> None:
        self._router = router
        self.account_id = account_id
        self.region = region
        self._listeners: dict[str, LoopbackListener] = {}
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def urls(self) -> dict[str, str]:
        """Function name -> local URL."""
        return dict(self._urls)

    def serve(self, function_name: str, auth_type: str) -> str:
        """Start the listener of `function_name`'s URL; returns the URL (`http://127.0.0.1:<port>/`)."""

        class Handler(_FunctionUrlHandler):
            pass

        Handler.gateway = self
        Handler.function_name = function_name
        Handler.auth_type = auth_type
        Handler.url_id = uuid.uuid4().hex
        listener = LoopbackListener(Handler, f"function-url-{function_name}")
        with self._lock:
            self._listeners[function_name] = listener
            self._urls[function_name] = listener.url
        return listener.url

    def close(self) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
            self._urls.clear()
        for listener in listeners:
            listener.close()

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
        send_response(self, self._answer())

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _answer(self) -> ProxyResponse:
        if self.auth_type != "NONE":
            return _FORBIDDEN
        try:
            request = read_request(self)
        except RequestTooLarge:
            return _TOO_LONG
        router = self.gateway.router()
        if router is None:
            return _UNAVAILABLE
        # A function URL has no account of its own in the event, and one catch-all route.
        event = proxy_event(request, route_key="$default", api_id=self.url_id, account_id="anonymous")
        return invoke_for_response(
            router, self.function_name, event, failed=_FUNCTION_FAILED, door=f"function URL {self.function_name}"
        )
