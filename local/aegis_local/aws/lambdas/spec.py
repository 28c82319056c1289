"""What the Lambda service knows about a function, what a handler is given, and what a caller gets back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

InvocationType = Literal["RequestResponse", "Event", "DryRun"]
Handler = Callable[[Any, Any], Any]
# `interceptor(event, context, handler)`: runs around the real handler (see `LambdaRouter.intercept`).
Interceptor = Callable[[Any, Any, Handler], Any]


class UnknownFunction(LookupError):
    """No function of that name (or logical id) is routed by this stack."""


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template, resolved: what the Lambda service knows about it."""

    logical_id: str
    function_name: str
    function_arn: str
    code_dir: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: Mapping[str, str]
    runtime: str = "python3.13"

    @property
    def handler_file(self) -> Path:
        """`app.scan_handler` -> `<code_dir>/app.py`; `pkg/mod.fn` and `pkg.mod.fn` -> `<code_dir>/pkg/mod.py`."""
        module_path, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module_path.replace(".", "/") + ".py")

    @property
    def handler_attribute(self) -> str:
        return self.handler.rpartition(".")[2]

    @property
    def handler_module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"


@dataclass
class LambdaContext:
    """The context object of the Python runtime (awslambdaric's LambdaContext), with a real countdown."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: str  # a string in the real runtime too: it is read from the environment
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


@dataclass(frozen=True)
class InvocationResult:
    """What the Lambda Invoke API returns: HTTP status, payload, and the FunctionError header if any."""

    status_code: int
    payload: bytes
    function_error: str | None = None

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


@dataclass(frozen=True)
class InvocationRecord:
    """One finished invocation, for `aegis-local` output and for tests that wait on background work."""

    function_name: str
    logical_id: str
    request_id: str
    invocation_type: InvocationType
    started_at: datetime
    duration_ms: float
    error_type: str | None
    error_message: str | None
