"""The HTTP face of the emulated Bedrock runtime: Converse on its restJson1 wire protocol.

`POST /model/{modelId}/converse` (the model id percent-encoded in the path, as botocore sends it) is validated
against botocore's service model and answered by the model of that id. Errors are answered as Bedrock answers them:
the status, the `x-amzn-ErrorType` header botocore reads the code from, and a `{"message": ...}` body. Any other
path or method is an unknown operation (404).

Token usage is an estimate, not a tokenizer: input tokens are ceil(characters / 4) of the request's texts (system
texts, message texts and guarded texts), output tokens ceil(characters / 4) of the answer's JSON (the tool input as
serialized), except where a model reports its own count (the flood stops at `maxTokens`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aegis_local.bedrock.models import (
    INVALID_REQUEST,
    MODEL_IDS,
    UNKNOWN_MODEL,
    Behaviour,
    behaviour,
    request_texts,
)
from aegis_local.bedrock.validation import InvalidRequest, validated_request

CHARS_PER_TOKEN = 4
_CONVERSE_PATH = re.compile(r"^/model/([^/]+)/converse$")


@dataclass(frozen=True)
class ModelCall:
    """One Converse request the emulator answered or refused, as the call log keeps it."""

    model_id: str
    batch: int | None
    outcome: str
    input_tokens: int
    output_tokens: int
    echoed: tuple[str, ...] = ()  # secret-shaped values the answer carried (the adversarial model's echo)


class CallLog:
    """The emulator's record of model calls; appended from the server's thread, read from the tests'."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[ModelCall] = []

    def add(self, call: ModelCall) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self) -> list[ModelCall]:
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


def estimated_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def error_response(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type})


def converse_response(tool_name: str | None, chosen: Behaviour, input_tokens: int, latency_ms: int) -> dict[str, Any]:
    serialized = chosen.tool_input if isinstance(chosen.tool_input, str) else json.dumps(chosen.tool_input)
    output_tokens = chosen.output_tokens if chosen.output_tokens is not None else estimated_tokens(serialized)
    if tool_name is not None:
        content: dict[str, Any] = {
            "toolUse": {"toolUseId": f"tooluse_{secrets.token_hex(11)}", "name": tool_name, "input": chosen.tool_input}
        }
        stop_reason = chosen.stop_reason
    else:
        # No tool to call: the model writes its answer as text and ends its turn.
        content = {"text": serialized}
        stop_reason = "max_tokens" if chosen.stop_reason == "max_tokens" else "end_turn"
    return {
        "output": {"message": {"role": "assistant", "content": [content]}},
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": latency_ms},
    }


def forced_tool(request: dict[str, Any]) -> str | None:
    """The tool the request makes the model call (`toolChoice.tool`), else its first tool, else none."""
    tool_config = request.get("toolConfig") or {}
    forced = ((tool_config.get("toolChoice") or {}).get("tool") or {}).get("name")
    if isinstance(forced, str):
        return forced
    for tool in tool_config.get("tools") or []:
        name = (tool.get("toolSpec") or {}).get("name")
        if isinstance(name, str):
            return name
    return None


def build_app(log: CallLog, failing_delay_seconds: Callable[[], float], stopping: Callable[[], bool]) -> Starlette:
    """The app; `stopping()` turns True when the server shuts down, which ends a delayed answer's wait early."""

    async def dispatch(request: Request) -> Response:
        began = time.monotonic()
        # The raw path: `%2F` in an ARN model id must not become a path separator before it is matched.
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?", 1)[0]
        matched = _CONVERSE_PATH.match(raw_path)
        if request.method != "POST" or matched is None:
            return error_response(404, "UnknownOperationException", f"{request.method} {raw_path} is not an operation")
        model_id = unquote(matched.group(1))
        try:
            params = validated_request(model_id, await request.body())
        except InvalidRequest as refused:
            log.add(ModelCall(model_id, None, INVALID_REQUEST, 0, 0))
            return error_response(400, "ValidationException", str(refused))
        if model_id not in MODEL_IDS:
            log.add(ModelCall(model_id, None, UNKNOWN_MODEL, 0, 0))
            return error_response(404, "ResourceNotFoundException", f"Model {model_id} is not found.")
        chosen = behaviour(model_id, params, failing_delay_seconds=failing_delay_seconds())
        input_tokens = sum(estimated_tokens(text) for text in request_texts(params))
        if chosen.error is not None:
            status, error_type, message = chosen.error
            log.add(ModelCall(model_id, chosen.batch, chosen.outcome, input_tokens, 0))
            return error_response(status, error_type, message)
        if chosen.delay_seconds > 0:
            # Logged before the wait: a client that times out never sees the answer, but the call was made.
            answer = converse_response(forced_tool(params), chosen, input_tokens, 0)
            log.add(ModelCall(model_id, chosen.batch, chosen.outcome, input_tokens, answer["usage"]["outputTokens"]))
            resume = time.monotonic() + chosen.delay_seconds
            while not stopping() and time.monotonic() < resume:
                await asyncio.sleep(min(0.05, max(0.0, resume - time.monotonic())))
        latency_ms = int((time.monotonic() - began) * 1000)
        answer = converse_response(forced_tool(params), chosen, input_tokens, latency_ms)
        if chosen.delay_seconds <= 0:
            log.add(
                ModelCall(
                    model_id, chosen.batch, chosen.outcome, input_tokens, answer["usage"]["outputTokens"], chosen.echoed
                )
            )
        return JSONResponse(answer)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    return Starlette(routes=[Route("/{rest:path}", dispatch, methods=methods)])
