"""The kill switch's HTTP calls, through its function URL or through the ops HTTP API's `POST /kill` and `POST /rearm`
routes: the JSON body a caller sends and the answers it gets. Both doors send the same payload format 2.0 event and
get the same answers; the caller's token is verified by the function either way (aegis_jwt.callers).

Every answer is JSON and never cached. A trigger or re-arm answers 200 when every step succeeded and 502 when any
failed (the halt flag stays engaged whatever else failed); a refused call answers 401, 403 or 400 and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel

from aegis_jwt.errors import Forbidden
from aegis_killswitch.errors import InvalidKillSwitchRequest
from aegis_killswitch.report import KillSwitchReport
from aegis_killswitch.requests import parse

HTTP_OK = 200
HTTP_PARTIAL_FAILURE = 502


def is_http_event(event: Any) -> bool:
    """A payload format 2.0 HTTP request: from the function URL or from an HTTP API route (`routeKey`
    "$default" or "POST /kill"). Direct invocations and EventBridge events have neither key."""
    return isinstance(event, dict) and isinstance(event.get("requestContext"), dict) and "rawPath" in event


def read_body[M: BaseModel](raw: str | None, model: type[M]) -> M:
    """The request body as a `model`; an empty body is an empty object."""
    try:
        document = json.loads(raw) if raw and raw.strip() else {}
    except ValueError:
        raise InvalidKillSwitchRequest("the body is not JSON") from None
    return parse(model, document, "body")


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def report_response(report: KillSwitchReport) -> Response:
    return json_response(HTTP_OK if report.ok else HTTP_PARTIAL_FAILURE, report.as_response())


def unauthenticated_response() -> Response:
    return json_response(
        401,
        {"error": "invalid_token", "error_description": "a valid bearer token for the kill switch is required"},
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden_response(error: Forbidden) -> Response:
    return json_response(
        403,
        {"error": "insufficient_scope", "error_description": f"the token lacks the scope {error.required_scope}"},
        {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{error.required_scope}"'},
    )


def invalid_request_response(error: InvalidKillSwitchRequest) -> Response:
    return json_response(400, {"error": "invalid_request", "error_description": str(error)})
