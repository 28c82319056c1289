"""Faults injected into a function's AWS calls: the function's process dying at a call, or AWS answering it with an
error, for the fault tests of the local stack (tests/faults/).

    with stack.lambdas.faults.inject(
        AwsFault(function="ExecutorFunction", operation="ec2:EnableEbsEncryptionByDefault", when="after", effect=DIE)
    ) as fired:
        ...  # run a mission; `fired` lists each fault as it fires

How: while a local stack runs, every botocore client made in the process carries a few event hooks of this module
(`FaultHooks`: `provide-client-params`, `before-call`, `before-send`, `after-call`). They do nothing unless a fault is
armed, and a fault fires only for a call made by the thread running the function it names (the invocation's thread:
`function_scope`, entered by the router around each handler), for the operation it names (`service:Operation`, the
service as IAM spells it: `states:SendTaskSuccess`, `dynamodb:PutItem`), when its optional `matches(params)` is true
on the call's parameters as the code passed them, and at most `times` times.

Effects:
- `DIE`: `FunctionDied` is raised from the hook, `before` the request is sent (it never reaches AWS) or `after` the
  answer came back (AWS applied the call; the code never sees the answer). The router reports the invocation as
  Lambda reports a process that exited: `errorType` "Runtime.ExitError", and the container is discarded.
- `AwsError(code)`: the request is answered with that error, serialized by moto's own serializer for the operation's
  protocol (what moto's server would send), in place of sending it. Only `before`: each attempt of botocore's retry
  loop is one answer, so `times=2` on a throttling code is retried away by botocore's standard retries, as on AWS.

What a thread "death" leaves untested. Lambda kills the process; here a thread cannot be killed, so `FunctionDied`
(a BaseException, so that `except Exception` handlers do not swallow it) unwinds the handler's stack instead:
- `finally` blocks and context managers' exits still run (a real death runs none): the executor's credential drop,
  Powertools' metrics flush, `with` blocks releasing locks or closing files. A death that would leave a lock held or
  a file half-written is not reproduced.
- `except BaseException:` (or a bare `except:`) in the function's code or its libraries would catch the death; the
  product has none, and botocore and Powertools' idempotency catch `Exception` only (so Powertools leaves its record
  IN_PROGRESS, as after a real death).
- Only the handler's own thread dies: threads the handler started go on, and calls they make are not matched (they
  do not run in the function's scope).
- The discarded container takes the function's module instance with it, but layer modules are imported once per
  process and shared by every function, so a cache kept in a layer module survives the death (on Lambda it would
  not).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.awsrequest import AWSResponse
from botocore.client import ClientCreator
from botocore.model import OperationModel

When = Literal["before", "after"]

# What a process that exits reports on Lambda, for the caller and Step Functions.
EXIT_ERROR_TYPE = "Runtime.ExitError"

# The request context key under which a call's parameters are kept from its first event to the later ones.
_PARAMS_KEY = "aegis_local_fault_params"
_OPERATION_KEY = "aegis_local_fault_operation"


class FunctionDied(BaseException):
    """The function's process died here: raised at an AWS call by an injected fault, never caught by the function's
    `except Exception` handlers, and reported by the router as Lambda reports a process exit."""

    def __init__(self, function_name: str, operation: str, when: When) -> None:
        super().__init__(f"{function_name} died {when} {operation}")
        self.function_name = function_name
        self.operation = operation
        self.when = when


# --- which function a thread runs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunningFunction:
    """The function invocation a thread is running."""

    function_name: str
    logical_id: str
    request_id: str


_running: ContextVar[RunningFunction | None] = ContextVar("aegis_local_running_function", default=None)


@contextmanager
def function_scope(function_name: str, logical_id: str, request_id: str) -> Iterator[None]:
    """Within this block, the current thread runs this invocation (the router enters it around each handler)."""
    token = _running.set(RunningFunction(function_name, logical_id, request_id))
    try:
        yield
    finally:
        _running.reset(token)


def running_function() -> RunningFunction | None:
    """The invocation the current thread runs, or None outside any function."""
    return _running.get()


# --- what a fault is --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Die:
    """The effect: the function's process dies at the call."""

    def __str__(self) -> str:
        return "died"


DIE = Die()


@dataclass(frozen=True)
class AwsError:
    """The effect: AWS answers the call with this error code (as moto would serialize it for the operation)."""

    code: str
    message: str = "injected by a fault test"

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True)
class AwsFault:
    """One fault: `effect` on `function`'s call of `operation` (`service:Operation`), `when` relative to the call, the
    first `times` calls for which `matches(params)` holds (every call when `matches` is None)."""

    function: str
    operation: str
    when: When = "before"
    effect: Die | AwsError = DIE
    times: int = 1
    matches: Callable[[Mapping[str, Any]], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        service, _, name = self.operation.partition(":")
        if not service or not name or ":" in name:
            raise ValueError(f"operation {self.operation!r} is not `service:Operation` (e.g. dynamodb:PutItem)")
        if self.when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', not {self.when!r}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if isinstance(self.effect, AwsError) and self.when != "before":
            raise ValueError("an AWS error answers the request in place of AWS: it can only be injected 'before'")

    @property
    def service(self) -> str:
        return self.operation.partition(":")[0].lower()

    @property
    def operation_name(self) -> str:
        return self.operation.partition(":")[2]


@dataclass(frozen=True)
class FiredFault:
    """A fault that fired: which invocation of which function it hit, and how."""

    fault: AwsFault
    function_name: str
    request_id: str
    operation: str
    when: When
    effect: str


class _Armed:
    """A fault while its `inject` block runs: the function it names resolved, its remaining firings counted."""

    def __init__(self, fault: AwsFault, function_name: str, fired: list[FiredFault]) -> None:
        self.fault = fault
        self.function_name = function_name
        self._remaining = fault.times
        self._fired = fired
        self._lock = threading.Lock()

    def applies_to(self, running: RunningFunction, model: OperationModel) -> bool:
        fault = self.fault
        return (
            running.function_name == self.function_name
            and model.name == fault.operation_name
            and fault.service in _service_names(model)
        )

    def fire(self, running: RunningFunction, model: OperationModel) -> bool:
        """Take one firing; False once `times` are used up."""
        with self._lock:
            if self._remaining <= 0:
                return False
            self._remaining -= 1
            self._fired.append(
                FiredFault(
                    fault=self.fault,
                    function_name=running.function_name,
                    request_id=running.request_id,
                    operation=f"{self.fault.service}:{model.name}",
                    when=self.fault.when,
                    effect=str(self.fault.effect),
                )
            )
            return True


def _service_names(model: OperationModel) -> set[str]:
    """The names a fault may use for the operation's service: IAM's prefix (the signing name, e.g. `states`), the
    endpoint prefix, botocore's service name (`stepfunctions`) and its service id (`sfn`)."""
    service = model.service_model
    names = {service.service_name, service.endpoint_prefix, service.service_id.hyphenize()}
    signing_name = service.signing_name
    if signing_name:
        names.add(signing_name)
    return {name.lower() for name in names if name}


# Every fault armed in the process (one local stack per process, so one router's faults).
_armed: list[_Armed] = []
_armed_lock = threading.Lock()


class FaultInjector:
    """The faults of one router's functions (`LambdaRouter.faults`). `resolve` maps a name, ARN or logical id to the
    function's physical name."""

    def __init__(self, resolve: Callable[[str], str]) -> None:
        self._resolve = resolve

    @contextmanager
    def inject(self, *faults: AwsFault) -> Iterator[list[FiredFault]]:
        """Arm `faults` while the block runs; yields the list of firings, appended to as they happen. Needs
        `FaultHooks` installed (the local stack installs them while it runs)."""
        if not FaultHooks.installed():
            raise RuntimeError("no fault hooks installed: faults are injected while a local stack runs")
        fired: list[FiredFault] = []
        armed = [_Armed(fault, self._resolve(fault.function), fired) for fault in faults]
        with _armed_lock:
            _armed.extend(armed)
        try:
            yield fired
        finally:
            with _armed_lock:
                for item in armed:
                    _armed.remove(item)


def _candidates(model: OperationModel, when: When, effect: type[Die] | type[AwsError]) -> list[_Armed]:
    if not _armed:
        return []
    running = running_function()
    if running is None:
        return []
    with _armed_lock:
        return [
            item
            for item in _armed
            if item.fault.when == when and isinstance(item.fault.effect, effect) and item.applies_to(running, model)
        ]


def _matching(candidates: list[_Armed], context: Mapping[str, Any]) -> Iterator[_Armed]:
    params = context.get(_PARAMS_KEY) or {}
    for item in candidates:
        if item.fault.matches is None or item.fault.matches(params):
            yield item


# --- the hooks on every client ----------------------------------------------------------------------------------------
def _keep_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Keep the parameters as the code passed them, for `matches` (the later events see them serialized)."""
    if _armed and running_function() is not None:
        context[_PARAMS_KEY] = params


def _die_before(model: OperationModel, context: Mapping[str, Any], **_: Any) -> None:
    _die(model, context, "before")


def _die_after(model: OperationModel, context: Mapping[str, Any], **_: Any) -> None:
    _die(model, context, "after")


def _die(model: OperationModel, context: Mapping[str, Any], when: When) -> None:
    running = running_function()
    for item in _matching(_candidates(model, when, Die), context):
        if running is not None and item.fire(running, model):
            raise FunctionDied(running.function_name, f"{item.fault.service}:{model.name}", when)


def _answer_error(request: Any, **_: Any) -> AWSResponse | None:
    context = getattr(request, "context", None)
    if not isinstance(context, Mapping):
        return None
    # before-send carries no operation model: `_keep_operation` kept it in the request's context.
    model = context.get(_OPERATION_KEY)
    if not isinstance(model, OperationModel):
        return None
    running = running_function()
    for item in _matching(_candidates(model, "before", AwsError), context):
        if running is not None and item.fire(running, model):
            effect = item.fault.effect
            assert isinstance(effect, AwsError)
            return error_answer(model, effect, str(getattr(request, "url", "")))
    return None


def _keep_operation(model: OperationModel, context: dict[str, Any], **_: Any) -> None:
    if _armed and running_function() is not None:
        context[_OPERATION_KEY] = model


def error_answer(model: OperationModel, error: AwsError, url: str = "") -> AWSResponse:
    """The HTTP answer moto's server would give for `error` on `model`'s operation (its own serializer)."""
    from moto.core.exceptions import ServiceException
    from moto.core.serialize import SerializationContext, get_serializer_class

    class InjectedError(ServiceException):
        """Defined outside moto's packages: moto then looks the code up in the operation's own service model only."""

    service = model.service_model
    serializer = get_serializer_class(service.service_name, service.protocol)
    response = serializer(model, SerializationContext(str(uuid.uuid4()))).serialize(
        InjectedError(error.code, error.message)
    )
    body = response["body"]
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return made_up_answer(url, int(response["status_code"]), raw, dict(response["headers"]))


def made_up_answer(url: str, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> AWSResponse:
    """An answer for a `before-send` hook to return instead of sending the request."""
    return AWSResponse(url, status, dict(headers or {}), _Body(body))


class _Body:
    """The raw body botocore reads from an answer."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_args: Any, **_kwargs: Any) -> bytes:
        return self._body


class FaultHooks:
    """The process-wide part: every botocore client made while installed carries this module's event hooks (inert
    while no fault is armed). Installed by the local stack while it runs, so that clients a function makes at its
    cold start, or a layer caches, have them before any fault is armed. Counted: each install needs an uninstall."""

    _lock = threading.Lock()
    _users = 0
    _original_create_client: Any = None

    @classmethod
    def install(cls) -> None:
        with cls._lock:
            if cls._users == 0:
                original = ClientCreator.create_client
                cls._original_create_client = original

                def create_client(self: ClientCreator, *args: Any, **kwargs: Any) -> Any:
                    client = original(self, *args, **kwargs)
                    register_hooks(client.meta.events)
                    return client

                ClientCreator.create_client = create_client
            cls._users += 1

    @classmethod
    def uninstall(cls) -> None:
        with cls._lock:
            if cls._users == 0:
                return
            cls._users -= 1
            if cls._users == 0 and cls._original_create_client is not None:
                ClientCreator.create_client = cls._original_create_client
                cls._original_create_client = None

    @classmethod
    def installed(cls) -> bool:
        with cls._lock:
            return cls._users > 0


def register_hooks(events: Any) -> None:
    """This module's hooks on one client's event emitter (first, so that nothing else answers or refuses first)."""
    events.register_first("provide-client-params", _keep_params, unique_id="aegis-local-fault-params")
    events.register_first("before-call", _keep_operation, unique_id="aegis-local-fault-operation")
    events.register_first("before-call", _die_before, unique_id="aegis-local-fault-die-before")
    events.register_first("before-send", _answer_error, unique_id="aegis-local-fault-answer")
    events.register("after-call", _die_after, unique_id="aegis-local-fault-die-after")
