"""One invocation: the handler run in its own thread, in its function's environment and log scope, with a context
whose countdown starts once the handler is about to run.

A handler that overruns its timeout is reported as `Sandbox.Timedout` by the router; its thread cannot be killed, so
it keeps running, orphaned. A raised exception is kept as the Python runtime reports it: its type name, its message
and the stack from the handler's frames on.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from aegis_local.aws.lambdas.container import Container, HandlerLoadError
from aegis_local.aws.lambdas.environment import FunctionEnvironment
from aegis_local.aws.lambdas.faults import EXIT_ERROR_TYPE, FunctionDied, function_scope
from aegis_local.aws.lambdas.spec import FunctionSpec, Handler, Interceptor, InvocationType, LambdaContext
from aegis_local.aws.logs import invocation_scope, runtime_line

# The runtime's own frames (this package's files) are left out of a handler's stack, as Lambda leaves out its own.
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


class Invocation:
    """One run of a handler in its own thread, so that the caller can stop waiting at the timeout."""

    def __init__(self, spec: FunctionSpec, invocation_type: InvocationType) -> None:
        self.spec = spec
        self.invocation_type = invocation_type
        self.request_id = str(uuid.uuid4())
        self.started_at = datetime.now(UTC)
        self.started = time.monotonic()
        self.result: Any = None
        self.error: tuple[str, str, list[str]] | None = None
        # Set when an injected fault killed the function (aegis_local.aws.lambdas.faults): its container must go.
        self.died: FunctionDied | None = None
        self._deadline: float | None = None
        self._finished = threading.Event()

    def start(
        self,
        container: Container,
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
        container: Container,
        override: Handler | None,
        interceptor: Interceptor | None,
        event: Any,
        environment: dict[str, str | None],
    ) -> None:
        spec = self.spec
        with invocation_scope(spec.function_name), function_scope(spec.function_name, spec.logical_id, self.request_id):
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
                        log_group_name=spec.log_group_name,
                        log_stream_name=container.log_stream_name,
                        deadline_monotonic=deadline,
                    )
                    self._deadline = deadline
                    if interceptor is not None:
                        self.result = interceptor(event, context, handler)
                    else:
                        self.result = handler(event, context)
            except HandlerLoadError as error:
                self.error = (error.error_type, str(error), [])
            except Exception as error:
                self.error = (type(error).__name__, str(error), handler_stack(error))
            except FunctionDied as death:
                # What Lambda reports when the runtime's process exits in the middle of an invocation.
                self.died = death
                self.error = (
                    EXIT_ERROR_TYPE,
                    f"RequestId: {self.request_id} Error: Runtime exited with error: exit status 1",
                    [],
                )
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


def handler_stack(error: BaseException) -> list[str]:
    """The traceback from the handler's frames on, as the runtime reports it (its own frames left out)."""
    frames = traceback.extract_tb(error.__traceback__)
    while frames and os.path.dirname(os.path.abspath(frames[0].filename)) == _RUNTIME_DIR:
        frames.pop(0)
    return traceback.format_list(frames)
