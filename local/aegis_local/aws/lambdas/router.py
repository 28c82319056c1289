"""The router: invocations by function name (or ARN, or logical id) to in-process handlers, the way the Lambda service
routes them.

A container serves one invocation at a time; a concurrent invocation gets a fresh container (a cold start), exactly as
Lambda scales out, and a finished one goes back to the function's warm pool. `Event` invocations return 202 at once and
run in the background; those that fail are logged and recorded but not retried (Lambda retries twice, minutes apart).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from aegis_local.aws.lambdas.container import Container, HandlerLoadError
from aegis_local.aws.lambdas.environment import FunctionEnvironment, function_variables
from aegis_local.aws.lambdas.faults import FaultInjector
from aegis_local.aws.lambdas.invocation import Invocation
from aegis_local.aws.lambdas.payloads import SYNC_PAYLOAD_LIMIT_BYTES, error_payload, lambda_json, request_event
from aegis_local.aws.lambdas.spec import (
    FunctionSpec,
    Handler,
    Interceptor,
    InvocationRecord,
    InvocationResult,
    InvocationType,
    UnknownFunction,
)

logger = logging.getLogger(__name__)


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
        self._idle: dict[str, list[Container]] = {name: [] for name in self._specs}
        self._overrides: dict[str, Handler] = {}
        self._interceptors: dict[str, Interceptor] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        # Since the last `reset_load()`: invocations begun, and the most running at one time (bench.load).
        self._begun = 0
        self._most_in_flight = 0
        self._idle_condition = threading.Condition(self._lock)
        self._records: deque[InvocationRecord] = deque(maxlen=2000)
        self._closed = False
        # Test seam: faults injected at the functions' AWS calls (aegis_local.aws.lambdas.faults).
        self.faults = FaultInjector(lambda name: self.spec(name).function_name)

    # -- lookup ---------------------------------------------------------------------------------------

    @property
    def specs(self) -> list[FunctionSpec]:
        return list(self._specs.values())

    def spec(self, name_or_logical_id: str) -> FunctionSpec:
        """A routed function by its physical name, its ARN, or its template logical id."""
        name = name_or_logical_id
        if name.startswith("arn:"):
            # arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else name
        spec = self._specs.get(name) or self._by_logical_id.get(name)
        if spec is None:
            raise UnknownFunction(f"no function named {name_or_logical_id!r} in the local stack")
        return spec

    def is_routed(self, function_name: str) -> bool:
        return function_name in self._specs

    # -- test seam ------------------------------------------------------------------------------------

    def override(self, name_or_logical_id: str, handler: Handler) -> AbstractContextManager[FunctionSpec]:
        """Run `handler(event, context)` instead of the function's code while the block runs.

        For tests that prove the state machine's semantics with a controlled function; the function keeps its
        name, ARN, environment, context and error reporting. Never used by the product.
        """
        return self._registered(self._overrides, name_or_logical_id, handler, "overridden")

    def intercept(self, name_or_logical_id: str, interceptor: Interceptor) -> AbstractContextManager[FunctionSpec]:
        """Run `interceptor(event, context, handler)` around each invocation of the function while the block runs.

        Unlike `override`, the function's real handler still runs, in its own warm container: the interceptor
        decides when (or whether) to call `handler(event, context)` and returns the result. It runs in the
        invocation's thread and environment, before the handler, so a local tool can act at a precise point of a
        mission (`aegis-local demo --drift` changes a resource between its approval and its execution). Never used
        by the product.
        """
        return self._registered(self._interceptors, name_or_logical_id, interceptor, "intercepted")

    @contextmanager
    def _registered(
        self, table: dict[str, Any], name_or_logical_id: str, value: Any, state: str
    ) -> Iterator[FunctionSpec]:
        """`value` in `table` under the function's name while the block runs (one at a time per function)."""
        spec = self.spec(name_or_logical_id)
        with self._lock:
            if spec.function_name in table:
                raise ValueError(f"{spec.logical_id} is already {state}")
            table[spec.function_name] = value
        try:
            yield spec
        finally:
            with self._lock:
                table.pop(spec.function_name, None)

    # -- invocation -----------------------------------------------------------------------------------

    def invoke(
        self, name_or_logical_id: str, payload: bytes | str | None, invocation_type: InvocationType = "RequestResponse"
    ) -> InvocationResult:
        """Invoke like the Lambda Invoke API. `Event` returns 202 at once and runs the handler in the background."""
        spec = self.spec(name_or_logical_id)
        event = request_event(payload, invocation_type)
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
        container = Container(spec)
        try:
            with FunctionEnvironment.applied(self._environment_for(spec)):
                container.load()
        except HandlerLoadError as error:
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

    def load(self) -> tuple[int, int]:
        """(invocations begun, the most running at one time) since the last `reset_load()`; unlike `records()`,
        never truncated."""
        with self._lock:
            return self._begun, self._most_in_flight

    def reset_load(self) -> None:
        with self._lock:
            self._begun = 0
            self._most_in_flight = self._in_flight

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._begun += 1
            self._most_in_flight = max(self._most_in_flight, self._in_flight)

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

    def _acquire(self, spec: FunctionSpec) -> Container:
        with self._lock:
            idle = self._idle[spec.function_name]
            return idle.pop() if idle else Container(spec)

    def _release(self, container: Container) -> None:
        with self._lock:
            if not self._closed and container.handler is not None:
                self._idle[container.spec.function_name].append(container)
                return
        container.discard()

    def _environment_for(self, spec: FunctionSpec) -> dict[str, str | None]:
        return function_variables(
            spec, declared_elsewhere=self._declared_names, runtime_environment=self._runtime_environment
        )

    def _run(self, spec: FunctionSpec, event: Any, invocation_type: InvocationType) -> InvocationResult:
        invocation = Invocation(spec, invocation_type)
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
        if override is None and invocation.died is None:
            self._release(container)
        else:
            # A process that died takes its execution environment with it: no warm state survives.
            container.discard()
        if invocation.error is not None:
            error_type, message, stack = invocation.error
            return self._failed(invocation, error_type, message, stack)
        try:
            body = lambda_json(invocation.result)
        except (TypeError, ValueError) as error:
            return self._failed(invocation, "Runtime.MarshalError", f"Unable to marshal response: {error}")
        if len(body) > SYNC_PAYLOAD_LIMIT_BYTES:
            message = f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size"
            return self._failed(invocation, "Function.ResponseSizeTooLarge", message)
        self._record(invocation, None, None)
        return InvocationResult(200, body)

    def _failed(
        self, invocation: Invocation, error_type: str, message: str, stack: list[str] | None = None
    ) -> InvocationResult:
        self._record(invocation, error_type, message)
        return InvocationResult(200, error_payload(error_type, message, invocation.request_id, stack), "Unhandled")

    def _record(self, invocation: Invocation, error_type: str | None, error_message: str | None) -> None:
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
