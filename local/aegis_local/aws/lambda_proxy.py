"""What Lambda function URLs and HTTP APIs share locally: a loopback HTTP listener, the payload format 2.0 event a
request becomes, and the rules that turn the function's answer into the HTTP response.

Both front doors build the same event (`version` "2.0", lower-cased `headers` with repeats comma-joined, `cookies`
split out, `queryStringParameters` with repeats comma-joined, `body` as text for textual content types and base64
otherwise) and read the answer the same way: a result with `statusCode` is a full response (`headers`, `body`,
`isBase64Encoded`, `cookies`); any other JSON result is sent as a 200 `application/json` body. Where they differ
(route key, account, authorizer context, error answers) the caller says so.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from aegis_local.aws.lambdas import LambdaRouter

__all__ = [
    "MAX_REQUEST_BYTES",
    "IncomingRequest",
    "LoopbackListener",
    "MalformedProxyResponse",
    "ProxyResponse",
    "RequestTooLarge",
    "invoke_for_response",
    "proxy_event",
    "proxy_response",
    "read_request",
    "send_response",
]

logger = logging.getLogger(__name__)

# Lambda's synchronous invocation payload limit: a bigger request could never reach the function.
MAX_REQUEST_BYTES = 6 * 1024 * 1024
# Content types whose body a 2.0 event carries as text; anything else is base64.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form")


class RequestTooLarge(ValueError):
    """The request body exceeds what a synchronous Lambda invocation can carry."""


class MalformedProxyResponse(ValueError):
    """The function answered with something that is not a valid proxy response (e.g. a non-integer statusCode)."""


@dataclass(frozen=True)
class IncomingRequest:
    """One HTTP request as a 2.0 event sees it."""

    method: str
    raw_path: str
    raw_query: str
    # Lower-cased names; a repeated header's values comma-joined; without `cookie` (see `cookies`).
    headers: dict[str, str]
    cookies: list[str]
    # Repeated parameters comma-joined, as API Gateway and function URLs do.
    query: dict[str, str]
    body: bytes
    source_ip: str
    protocol: str

    @property
    def path(self) -> str:
        return self.raw_path or "/"


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cookies: list[str] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, document: Any, headers: Mapping[str, str] | None = None) -> ProxyResponse:
        return cls(status, {"content-type": "application/json", **(headers or {})}, json.dumps(document).encode())


def read_request(handler: BaseHTTPRequestHandler) -> IncomingRequest:
    """Read the request `handler` is serving (raises RequestTooLarge before reading an oversized body)."""
    length = int(handler.headers.get("content-length") or 0)
    if length > MAX_REQUEST_BYTES:
        raise RequestTooLarge(f"{length} bytes")
    body = handler.rfile.read(length) if length else b""
    parts = urlsplit(handler.path)
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return IncomingRequest(
        method=handler.command,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=headers,
        cookies=cookies,
        query=query,
        body=body,
        source_ip=handler.client_address[0],
        protocol=handler.request_version,
    )


def proxy_event(
    request: IncomingRequest,
    *,
    route_key: str,
    api_id: str,
    account_id: str,
    path_parameters: Mapping[str, str] | None = None,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event of `request`; optional members appear only when they have a value, as in AWS."""
    content_type = request.headers.get("content-type", "")
    is_text = not request.body or content_type.startswith(_TEXT_TYPES)
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": request.headers.get("host", ""),
        "domainPrefix": api_id,
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": request.headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(time.time() * 1000),
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": dict(request.headers),
        "requestContext": context,
        "isBase64Encoded": not is_text,
    }
    if request.cookies:
        event["cookies"] = list(request.cookies)
    if request.query:
        event["queryStringParameters"] = dict(request.query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if request.body:
        event["body"] = (
            request.body.decode("utf-8", errors="replace") if is_text else base64.b64encode(request.body).decode()
        )
    return event


def proxy_response(result: Any) -> ProxyResponse:
    """The HTTP response of a function's answer to a 2.0 event: a `statusCode` makes it a full response, anything
    else is a 200 JSON body (raises MalformedProxyResponse for a full response that cannot be sent)."""
    if isinstance(result, dict) and "statusCode" in result:
        status = result["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise MalformedProxyResponse(f"statusCode {status!r} is not an HTTP status")
        raw_headers = result.get("headers") or {}
        if not isinstance(raw_headers, dict):
            raise MalformedProxyResponse("headers is not an object")
        headers = {str(k): str(v) for k, v in raw_headers.items()}
        body = result.get("body")
        if body is None:
            payload = b""
        elif result.get("isBase64Encoded"):
            try:
                payload = base64.b64decode(str(body), validate=True)
            except ValueError as error:
                raise MalformedProxyResponse(f"isBase64Encoded but the body is not base64: {error}") from error
        else:
            payload = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        cookies = [str(cookie) for cookie in result.get("cookies") or []]
        return ProxyResponse(status, headers, payload, cookies)
    return ProxyResponse.json(200, result)


def invoke_for_response(
    router: LambdaRouter, function_name: str, event: dict[str, Any], *, failed: ProxyResponse, door: str
) -> ProxyResponse:
    """Invoke `function_name` with a 2.0 event and return its HTTP response, or `failed` when the function errs,
    times out or answers something that is not a response: the caller never sees why, the log (naming `door`) does."""
    result = router.invoke(function_name, json.dumps(event), "RequestResponse")
    if result.function_error:
        return failed
    try:
        return proxy_response(result.json())
    except MalformedProxyResponse as error:
        logger.warning("%s: the function's answer is not a valid response: %s", door, error)
        return failed


def send_response(handler: BaseHTTPRequestHandler, response: ProxyResponse) -> None:
    handler.send_response(response.status)
    for name, value in response.headers.items():
        if name.lower() != "content-length":
            handler.send_header(name, value)
    for cookie in response.cookies:
        handler.send_header("set-cookie", cookie)
    handler.send_header("content-length", str(len(response.body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(response.body)


class LoopbackListener:
    """A threaded HTTP server on 127.0.0.1 (`port`, or a free one) serving `handler_class` until `close()`."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], thread_name: str, *, port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler_class)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name=thread_name, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>/`."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
