"""Payloads as the Lambda service and the Python runtime handle them: the request checks made before anything runs,
the runtime's JSON for a handler's result, and its error payload."""

from __future__ import annotations

import decimal
import json
from typing import Any

from aegis_local.aws.lambdas.spec import InvocationType

# Lambda's payload quotas: 6 MB for synchronous requests and responses, 256 KB for asynchronous events.
SYNC_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT_BYTES = 256 * 1024


class RequestTooLarge(ValueError):
    """The invocation payload exceeds Lambda's quota for its invocation type."""


class InvalidRequestContent(ValueError):
    """The invocation payload is not JSON, which Lambda rejects before running anything."""


def request_event(payload: bytes | str | None, invocation_type: InvocationType) -> Any:
    """The event a request carries, refused as the Invoke API refuses it (too large for its type, or not JSON)."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else (payload or b"")
    limit = ASYNC_PAYLOAD_LIMIT_BYTES if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT_BYTES
    if len(raw) > limit:
        raise RequestTooLarge(f"{len(raw)} byte payload exceeds the {limit} byte limit for {invocation_type}")
    try:
        return json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidRequestContent(f"Could not parse request body into json: {error}") from error


def lambda_json(value: Any) -> bytes:
    """Serialize a handler result as the Python runtime does (Decimal becomes a number)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, decimal.Decimal):
            return float(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default).encode("utf-8")


def error_payload(error_type: str, message: str, request_id: str, stack: list[str] | None = None) -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}
    ).encode("utf-8")
