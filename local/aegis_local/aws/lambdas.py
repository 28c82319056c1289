"""Run the template's Lambda functions in this process, the way the Lambda service would run them.

moto's no-Docker Lambda backend only echoes payloads. The local stack replaces its `invoke` with
`LambdaRouter.invoke`, so every invocation — from Step Functions, from EventBridge, from a handler's own boto3
client, sync or `InvocationType=Event` — runs the real handler named in `template.yaml`:

- **Containers.** Each function gets its own module instance of its `app.py`, loaded by file path under a
  unique module name (every function's file is called `app.py`). A container serves one invocation at a time;
  a concurrent invocation gets a fresh container (a cold start), exactly as Lambda scales out. Module globals
  therefore behave as they do on Lambda: shared by warm invocations of one function, never across functions.
- **Environment.** The process environment is shared by every thread, but each function must see only its
  own template variables. `FunctionEnvironment` gives the thread running a handler a private overlay on
  `os.environ`: the function's variables plus Lambda's runtime variables, with the variables that only *other*
  functions declare hidden (so a handler that reads a variable its template entry lacks fails here as it would
  on AWS). Threads a handler starts itself see the process environment, where the local stack has put every
  value that is the same for all functions that declare it.
- **Context.** A `LambdaContext` with the runtime's attributes; `get_remaining_time_in_millis()` counts down
  from the template's `Timeout`, and a handler that overruns it is reported as `Sandbox.Timedout` (its thread
  cannot be killed, so its container is discarded rather than reused).
- **Errors.** A raised exception is reported as the Python runtime reports it: `FunctionError: Unhandled` with
  payload `{"errorType": type(exc).__name__, "errorMessage": str(exc), ...}`. Step Functions takes the ASL error
  name from `errorType`, so an exception class whose `__name__` is `Executor.Halted` is caught by
  `"ErrorEquals": ["Executor.Halted"]` (see "Errors across Lambda" in docs/CONTRACTS.md).

- **Logs.** The invocation's thread is marked with `aegis_local.aws.logs.invocation_scope`, so that while a
  `LogCapture` is installed everything the handler prints lands in the function's own log file, between Lambda's
  `START` / `END` / `REPORT` lines (CloudWatch's log group of the function).

Known differences from the service: asynchronous invocations that fail are logged and recorded but not retried
(Lambda retries twice, minutes apart); a timed-out handler keeps running in its orphaned thread.
"""

from __future__ import annotations

import decimal
import importlib.util
import itertools
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from aegis_local.aws.logs import invocation_scope, runtime_line

__all__ = [
    "FunctionEnvironment",
    "FunctionSpec",
    "Interceptor",
    "InvocationRecord",
    "InvocationResult",
    "InvocationType",
    "LambdaContext",
    "LambdaRouter",
    "MotoLambdaBridge",
    "RequestTooLarge",
    "UnknownFunction",
]

logger = logging.getLogger(__name__)

InvocationType = Literal["RequestResponse", "Event", "DryRun"]
Handler = Callable[[Any, Any], Any]
# `interceptor(event, context, handler)`: runs around the real handler (see `LambdaRouter.intercept`).
Interceptor = Callable[[Any, Any, Handler], Any]

# Lambda's payload quotas: 6 MB for synchronous requests and responses, 256 KB for asynchronous events.
SYNC_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT_BYTES = 256 * 1024


class UnknownFunction(LookupError):
    """No function of that name (or logical id) is routed by this stack."""


class RequestTooLarge(ValueError):
    """The invocation payload exceeds Lambda's quota for its invocation type."""


class InvalidRequestContent(ValueError):
    """The invocation payload is not JSON, which Lambda rejects before running anything."""


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


class FunctionEnvironment:
    """A per-thread overlay on `os.environ`.

    `os.environ` keeps its data in a dict (`os.environ._data`); this replaces that dict with a subclass that
    first consults the calling thread's overlay. Values set to None in an overlay are hidden in that thread.
    Installed once per process while a local stack runs; `uninstall()` restores a plain dict with the same
    process-wide contents — but only once no thread is inside a function environment any more. A handler still
    running when its stack stops (Lambda would have frozen it) keeps its overlay, so it goes on seeing the stack's
    dead endpoint and fake credentials instead of the developer's real AWS configuration.
    """

    _lock = threading.Lock()
    _installed: _OverlayEnvironData | None = None
    _users = 0
    _applied = 0

    @classmethod
    def install(cls) -> None:
        with cls._lock:
            if cls._installed is None:
                data = _OverlayEnvironData(os.environ._data)  # type: ignore[attr-defined]
                os.environ._data = data  # type: ignore[attr-defined]
                if hasattr(os, "environb"):
                    os.environb._data = data  # type: ignore[attr-defined]
                cls._installed = data
            cls._users += 1

    @classmethod
    def uninstall(cls) -> None:
        with cls._lock:
            cls._users = max(0, cls._users - 1)
            cls._restore_if_unused()

    @classmethod
    def _restore_if_unused(cls) -> None:
        # Called with the lock held.
        if cls._users == 0 and cls._applied == 0 and cls._installed is not None:
            plain = dict(dict.items(cls._installed))
            os.environ._data = plain  # type: ignore[attr-defined]
            if hasattr(os, "environb"):
                os.environb._data = plain  # type: ignore[attr-defined]
            cls._installed = None

    @classmethod
    @contextmanager
    def applied(cls, variables: Mapping[str, str | None]) -> Iterator[None]:
        """Within this block, this thread sees `variables` over the process environment (None = unset)."""
        data = cls._installed
        if data is None:
            raise RuntimeError("FunctionEnvironment.install() must run before a function environment is applied")
        encode_key = os.environ.encodekey
        encode_value = os.environ.encodevalue
        overlay = {
            encode_key(name): (None if value is None else encode_value(value)) for name, value in variables.items()
        }
        previous = getattr(data.local, "overlay", None)
        with cls._lock:
            cls._applied += 1
        data.local.overlay = overlay
        try:
            yield
        finally:
            data.local.overlay = previous
            with cls._lock:
                cls._applied -= 1
                cls._restore_if_unused()


class _OverlayEnvironData(dict[Any, Any]):
    """The storage behind `os.environ`, with a thread-local overlay (see FunctionEnvironment)."""

    def __init__(self, base: Mapping[Any, Any]) -> None:
        super().__init__(base)
        self.local = threading.local()

    def _overlay(self) -> dict[Any, Any] | None:
        return getattr(self.local, "overlay", None)

    def __getitem__(self, key: Any) -> Any:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            return overlay[key] is not None
        return dict.__contains__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[Any]:
        overlay = self._overlay()
        if overlay is None:
            return iter(list(dict.keys(self)))
        visible = [key for key in dict.keys(self) if key not in overlay]
        visible.extend(key for key, value in overlay.items() if value is not None)
        return iter(visible)

    def keys(self) -> Any:
        return list(iter(self))

    def items(self) -> Any:
        return [(key, self[key]) for key in iter(self)]

    def values(self) -> Any:
        return [self[key] for key in iter(self)]

    def __len__(self) -> int:
        return sum(1 for _ in iter(self))

    def __setitem__(self, key: Any, value: Any) -> None:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            overlay[key] = value
        else:
            dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            if overlay[key] is None:
                raise KeyError(key)
            overlay[key] = None
        else:
            dict.__delitem__(self, key)


class _HandlerLoadError(Exception):
    """Lambda could not import the handler: reported with the runtime's own error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class _Container:
    """One execution environment: a private module instance of the function's handler file."""

    _serial = itertools.count(1)

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.module: ModuleType | None = None
        self.handler: Handler | None = None
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"

    def load(self) -> Handler:
        """Import the handler file (the cold start). Runs in the function's environment."""
        if self.handler is not None:
            return self.handler
        spec = self.spec
        path = spec.handler_file
        if not path.is_file():
            raise _HandlerLoadError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{spec.handler_module}': No module named '{spec.handler_module}'",
            )
        module_name = f"aegis_local_functions.{spec.logical_id}_{next(self._serial)}"
        import_spec = importlib.util.spec_from_file_location(module_name, path)
        if import_spec is None or import_spec.loader is None:  # pragma: no cover - only for non-.py paths
            raise _HandlerLoadError("Runtime.ImportModuleError", f"Unable to import module '{spec.handler_module}'")
        module = importlib.util.module_from_spec(import_spec)
        # Registered before running, as an import would be: dataclasses and pickling look modules up by name.
        sys.modules[module_name] = module
        try:
            import_spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(module_name, None)
            raise _HandlerLoadError(
                "Runtime.ImportModuleError", f"Unable to import module '{spec.handler_module}': {error}"
            ) from error
        handler = getattr(module, spec.handler_attribute, None)
        if not callable(handler):
            sys.modules.pop(module_name, None)
            raise _HandlerLoadError(
                "Runtime.HandlerNotFound",
                f"Handler '{spec.handler_attribute}' missing on module '{spec.handler_module}'",
            )
        self.module = module
        self.handler = handler
        return handler

    def discard(self) -> None:
        if self.module is not None:
            sys.modules.pop(self.module.__name__, None)
        self.module = None
        self.handler = None


def _lambda_json(value: Any) -> bytes:
    """Serialize a handler result as the Python runtime does (Decimal becomes a number)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, decimal.Decimal):
            return float(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default).encode("utf-8")


def _handler_stack(error: BaseException) -> list[str]:
    """The traceback from the handler's frames on, as the runtime reports it (its own frames left out)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = os.path.abspath(__file__)
    while frames and os.path.abspath(frames[0].filename) == own:
        frames.pop(0)
    return traceback.format_list(frames)


def _error_payload(error_type: str, message: str, request_id: str, stack: list[str] | None = None) -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}
    ).encode("utf-8")


class LambdaRouter:
    """Routes invocations by function name to in-process handlers (see the module docstring)."""

    def __init__(self, specs: list[FunctionSpec], *, runtime_environment: Mapping[str, str] | None = None) -> None:
        self._specs: dict[str, FunctionSpec] = {}
        self._by_logical_id: dict[str, FunctionSpec] = {}
        for spec in specs:
            if spec.function_name in self._specs or spec.logical_id in self._by_logical_id:
                raise ValueError(f"function {spec.logical_id} ({spec.function_name}) is routed twice")
            self._specs[spec.function_name] = spec
            self._by_logical_id[spec.logical_id] = spec
        self._runtime_environment = dict(runtime_environment or {})
        # Variables some function declares: hidden from the functions that do not declare them.
        self._declared_names = {name for spec in specs for name in spec.environment}
        self._idle: dict[str, list[_Container]] = {name: [] for name in self._specs}
        self._overrides: dict[str, Handler] = {}
        self._interceptors: dict[str, Interceptor] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle_condition = threading.Condition(self._lock)
        self._records: deque[InvocationRecord] = deque(maxlen=2000)
        self._closed = False

    # -- lookup ---------------------------------------------------------------------------------------

    @property
    def specs(self) -> list[FunctionSpec]:
        return list(self._specs.values())

    def spec(self, name_or_logical_id: str) -> FunctionSpec:
        """A routed function by its physical name, its ARN, or its template logical id."""
        name = name_or_logical_id
        if name.startswith("arn:"):
            # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else name
        spec = self._specs.get(name) or self._by_logical_id.get(name)
        if spec is None:
            raise UnknownFunction(f"no function named {name_or_logical_id!r} in the local stack")
        return spec

    def is_routed(self, function_name: str) -> bool:
        return function_name in self._specs

    # -- test seam ------------------------------------------------------------------------------------

    @contextmanager
    def override(self, name_or_logical_id: str, handler: Handler) -> Iterator[FunctionSpec]:
        """Run `handler(event, context)` instead of the function's code while the block runs.

        For tests that prove the state machine's semantics with a controlled function; the function keeps its
        name, ARN, environment, context and error reporting. Never used by the product.
        """
        spec = self.spec(name_or_logical_id)
        with self._lock:
            if spec.function_name in self._overrides:
                raise ValueError(f"{spec.logical_id} is already overridden")
            self._overrides[spec.function_name] = handler
        try:
            yield spec
        finally:
            with self._lock:
                self._overrides.pop(spec.function_name, None)

    @contextmanager
    def intercept(self, name_or_logical_id: str, interceptor: Interceptor) -> Iterator[FunctionSpec]:
        """Run `interceptor(event, context, handler)` around each invocation of the function while the block runs.

        Unlike `override`, the function's real handler still runs, in its own warm container: the interceptor
        decides when (or whether) to call `handler(event, context)` and returns the result. It runs in the
        invocation's thread and environment, before the handler, so a local tool can act at a precise point of a
        mission (`aegis-local demo --drift` changes a resource between its approval and its execution). Never used
        by the product.
        """
        spec = self.spec(name_or_logical_id)
        with self._lock:
            if spec.function_name in self._interceptors:
                raise ValueError(f"{spec.logical_id} is already intercepted")
            self._interceptors[spec.function_name] = interceptor
        try:
            yield spec
        finally:
            with self._lock:
                self._interceptors.pop(spec.function_name, None)

    # -- invocation -----------------------------------------------------------------------------------

    def invoke(
        self, name_or_logical_id: str, payload: bytes | str | None, invocation_type: InvocationType = "RequestResponse"
    ) -> InvocationResult:
        """Invoke like the Lambda Invoke API. `Event` returns 202 at once and runs the handler in the background."""
        spec = self.spec(name_or_logical_id)
        raw = payload.encode("utf-8") if isinstance(payload, str) else (payload or b"")
        limit = ASYNC_PAYLOAD_LIMIT_BYTES if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT_BYTES
        if len(raw) > limit:
            raise RequestTooLarge(f"{len(raw)} byte payload exceeds the {limit} byte limit for {invocation_type}")
        try:
            event = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InvalidRequestContent(f"Could not parse request body into json: {error}") from error
        if invocation_type == "DryRun":
            return InvocationResult(204, b"")
        if invocation_type == "Event":
            self._begin()
            thread = threading.Thread(
                target=self._run_async, args=(spec, event), name=f"lambda-event-{spec.logical_id}", daemon=True
            )
            thread.start()
            return InvocationResult(202, b"")
        if invocation_type != "RequestResponse":
            raise ValueError(f"unknown invocation type {invocation_type!r}")
        self._begin()
        try:
            return self._run(spec, event, "RequestResponse")
        finally:
            self._end()

    def preload(self, name_or_logical_id: str) -> str | None:
        """Cold-start one container of the function now (import its handler in its environment) and keep it warm.

        Returns None, or the Lambda error the first invocation would report (`Runtime.ImportModuleError: ...`).
        """
        spec = self.spec(name_or_logical_id)
        container = _Container(spec)
        try:
            with FunctionEnvironment.applied(self._environment_for(spec)):
                container.load()
        except _HandlerLoadError as error:
            return f"{error.error_type}: {error}"
        self._release(container)
        return None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no invocation is running; True if that happened within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._idle_condition:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle_condition.wait(remaining)
        return True

    def records(self, name_or_logical_id: str | None = None) -> list[InvocationRecord]:
        """Finished invocations, oldest first, optionally of one function."""
        with self._lock:
            records = list(self._records)
        if name_or_logical_id is None:
            return records
        spec = self.spec(name_or_logical_id)
        return [record for record in records if record.function_name == spec.function_name]

    def close(self) -> None:
        """Drop every warm container (their modules leave sys.modules)."""
        with self._lock:
            self._closed = True
            containers = [container for idle in self._idle.values() for container in idle]
            for idle in self._idle.values():
                idle.clear()
        for container in containers:
            container.discard()

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _end(self) -> None:
        with self._idle_condition:
            self._in_flight -= 1
            self._idle_condition.notify_all()

    def _run_async(self, spec: FunctionSpec, event: Any) -> None:
        try:
            result = self._run(spec, event, "Event")
            if result.function_error:
                detail = result.json() or {}
                logger.warning(
                    "asynchronous invocation of %s failed: %s: %s",
                    spec.logical_id,
                    detail.get("errorType"),
                    detail.get("errorMessage"),
                )
        finally:
            self._end()

    def _acquire(self, spec: FunctionSpec) -> _Container:
        with self._lock:
            idle = self._idle[spec.function_name]
            return idle.pop() if idle else _Container(spec)

    def _release(self, container: _Container) -> None:
        with self._lock:
            if not self._closed and container.handler is not None:
                self._idle[container.spec.function_name].append(container)
                return
        container.discard()

    def _environment_for(self, spec: FunctionSpec) -> dict[str, str | None]:
        variables: dict[str, str | None] = dict.fromkeys(self._declared_names - set(spec.environment))
        variables.update(self._runtime_environment)
        variables.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                # What `sam local` sets: Powertools then knows no X-Ray daemon is listening.
                "AWS_SAM_LOCAL": "true",
            }
        )
        variables.update(spec.environment)
        return variables

    def _run(self, spec: FunctionSpec, event: Any, invocation_type: InvocationType) -> InvocationResult:
        invocation = _Invocation(spec, invocation_type)
        container = self._acquire(spec)
        with self._lock:
            override = self._overrides.get(spec.function_name)
            interceptor = self._interceptors.get(spec.function_name)
        finished = invocation.start(container, override, interceptor, event, self._environment_for(spec))
        if not finished:
            # Lambda freezes and discards a timed-out sandbox; a thread cannot be killed, so abandon it.
            container.discard()
            message = (
                f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%f}"[:-3]
                + f"Z {invocation.request_id} Task timed out after {spec.timeout_seconds:.2f} seconds"
            )
            return self._failed(invocation, "Sandbox.Timedout", message)
        if override is None:
            self._release(container)
        else:
            container.discard()
        if invocation.error is not None:
            error_type, message, stack = invocation.error
            return self._failed(invocation, error_type, message, stack)
        try:
            body = _lambda_json(invocation.result)
        except (TypeError, ValueError) as error:
            return self._failed(invocation, "Runtime.MarshalError", f"Unable to marshal response: {error}")
        if len(body) > SYNC_PAYLOAD_LIMIT_BYTES:
            message = f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size"
            return self._failed(invocation, "Function.ResponseSizeTooLarge", message)
        self._record(invocation, None, None)
        return InvocationResult(200, body)

    def _failed(
        self, invocation: _Invocation, error_type: str, message: str, stack: list[str] | None = None
    ) -> InvocationResult:
        self._record(invocation, error_type, message)
        return InvocationResult(200, _error_payload(error_type, message, invocation.request_id, stack), "Unhandled")

    def _record(self, invocation: _Invocation, error_type: str | None, error_message: str | None) -> None:
        record = InvocationRecord(
            function_name=invocation.spec.function_name,
            logical_id=invocation.spec.logical_id,
            request_id=invocation.request_id,
            invocation_type=invocation.invocation_type,
            started_at=invocation.started_at,
            duration_ms=(time.monotonic() - invocation.started) * 1000,
            error_type=error_type,
            error_message=error_message,
        )
        with self._lock:
            self._records.append(record)


class _Invocation:
    """One run of a handler in its own thread, so that the caller can stop waiting at the timeout."""

    def __init__(self, spec: FunctionSpec, invocation_type: InvocationType) -> None:
        self.spec = spec
        self.invocation_type = invocation_type
        self.request_id = str(uuid.uuid4())
        self.started_at = datetime.now(UTC)
        self.started = time.monotonic()
        self.result: Any = None
        self.error: tuple[str, str, list[str]] | None = None
        self._deadline: float | None = None
        self._finished = threading.Event()

    def start(
        self,
        container: _Container,
        override: Handler | None,
        interceptor: Interceptor | None,
        event: Any,
        environment: dict[str, str | None],
    ) -> bool:
        """Run the handler; True if it finished before the function's timeout."""
        worker = threading.Thread(
            target=self._body,
            args=(container, override, interceptor, event, environment),
            name=f"lambda-{self.spec.logical_id}-{self.request_id[:8]}",
            daemon=True,
        )
        worker.start()
        # The cold start (module import) is not charged to the handler's timeout, as on Lambda: the deadline
        # exists once the handler is about to run.
        while not self._finished.wait(0.05):
            if self._deadline is not None and time.monotonic() > self._deadline:
                return False
        return True

    def _body(
        self,
        container: _Container,
        override: Handler | None,
        interceptor: Interceptor | None,
        event: Any,
        environment: dict[str, str | None],
    ) -> None:
        spec = self.spec
        with invocation_scope(spec.function_name):
            runtime_line(f"START RequestId: {self.request_id} Version: $LATEST")
            try:
                with FunctionEnvironment.applied(environment):
                    handler = override if override is not None else container.load()
                    deadline = time.monotonic() + spec.timeout_seconds
                    context = LambdaContext(
                        function_name=spec.function_name,
                        function_version="$LATEST",
                        invoked_function_arn=spec.function_arn,
                        memory_limit_in_mb=str(spec.memory_mb),
                        aws_request_id=self.request_id,
                        log_group_name=f"/aws/lambda/{spec.function_name}",
                        log_stream_name=container.log_stream_name,
                        deadline_monotonic=deadline,
                    )
                    self._deadline = deadline
                    if interceptor is not None:
                        self.result = interceptor(event, context, handler)
                    else:
                        self.result = handler(event, context)
            except _HandlerLoadError as error:
                self.error = (error.error_type, str(error), [])
            except Exception as error:
                self.error = (type(error).__name__, str(error), _handler_stack(error))
            finally:
                if self.error is not None:
                    # What the Python runtime prints for an unhandled error.
                    runtime_line(f"[ERROR] {self.error[0]}: {self.error[1]}")
                duration = (time.monotonic() - self.started) * 1000
                runtime_line(f"END RequestId: {self.request_id}")
                runtime_line(
                    f"REPORT RequestId: {self.request_id}\tDuration: {duration:.2f} ms\t"
                    f"Memory Size: {spec.memory_mb} MB"
                )
                self._finished.set()


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None and hasattr(headers, "items"):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return None if value is None else str(value)


class MotoLambdaBridge:
    """Makes moto's Lambda API run the router's handlers.

    Replaces `moto.awslambda_simple.models.LambdaSimpleBackend.invoke` (the no-Docker backend) and lets Step
    Functions' `lambda:invoke` pass `InvocationType`, which AWS supports and moto 5.2.5's interpreter drops —
    without it a `waitForTaskToken` task with `"InvocationType": "Event"` would block on the handler instead of
    handing it the token and waiting. Process-wide, so one local stack per process.
    """

    _lock = threading.Lock()
    _router: LambdaRouter | None = None
    _original_invoke: Any = None
    _added_invocation_type = False

    @classmethod
    def install(cls, router: LambdaRouter) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_lambda,
        )

        with cls._lock:
            if cls._router is not None:
                raise RuntimeError("another local stack already routes Lambda invocations in this process")
            cls._router = router
            if cls._original_invoke is None:
                cls._original_invoke = LambdaSimpleBackend.invoke
                LambdaSimpleBackend.invoke = _routed_invoke  # type: ignore[method-assign,assignment]
            bindings = state_task_service_lambda._SUPPORTED_API_PARAM_BINDINGS["invoke"]
            if "InvocationType" not in bindings:
                bindings.add("InvocationType")
                cls._added_invocation_type = True

    @classmethod
    def uninstall(cls, router: LambdaRouter) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_lambda,
        )

        with cls._lock:
            if cls._router is not router:
                return
            cls._router = None
            if cls._original_invoke is not None:
                LambdaSimpleBackend.invoke = cls._original_invoke  # type: ignore[method-assign]
                cls._original_invoke = None
            if cls._added_invocation_type:
                state_task_service_lambda._SUPPORTED_API_PARAM_BINDINGS["invoke"].discard("InvocationType")
                cls._added_invocation_type = False

    @classmethod
    def active_router(cls) -> LambdaRouter | None:
        return cls._router


def _routed_invoke(  # noqa: PLR0917 - moto's signature
    backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    """`LambdaSimpleBackend.invoke`, answered by the active router (signature is moto's)."""
    from moto.core.exceptions import JsonRESTError

    function = backend.get_function(function_name, qualifier)  # ResourceNotFoundException as on AWS
    router = MotoLambdaBridge.active_router()
    invocation_type = (_header(headers, "X-Amz-Invocation-Type") or "RequestResponse").strip()
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        raise JsonRESTError("InvalidParameterValueException", f"Invalid invocation type: {invocation_type}")
    if router is None or not router.is_routed(function.function_name):
        request_id = str(uuid.uuid4())
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error_payload(
            "Runtime.ImportModuleError",
            f"function {function.function_name} is not part of the local stack's template, so it has no code here",
            request_id,
        )
    try:
        result = router.invoke(function.function_name, body, invocation_type)  # type: ignore[arg-type]
    except InvalidRequestContent as error:
        raise JsonRESTError("InvalidRequestContentException", str(error)) from error
    except RequestTooLarge as error:
        too_large = JsonRESTError("RequestEntityTooLargeException", str(error))
        too_large.code = 413
        raise too_large from error
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    response_headers["x-amz-executed-version"] = "$LATEST"
    response_headers["Content-Length"] = str(len(result.payload))
    return result.payload
