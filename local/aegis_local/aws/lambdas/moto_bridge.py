"""moto's Lambda API answered by the router: every invocation through boto3 (a handler's own client, EventBridge's
delivery, Step Functions' `lambda:invoke`) runs the template's handler instead of moto's echo."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from aegis_local.aws.lambdas.payloads import InvalidRequestContent, RequestTooLarge, error_payload

if TYPE_CHECKING:
    from aegis_local.aws.lambdas.router import LambdaRouter


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None and hasattr(headers, "items"):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return None if value is None else str(value)


class RouterHook:
    """A process-wide patch of moto that hands its calls to one local stack's router while that stack runs.

    A subclass names what it patches in `_patch`/`_unpatch` and keeps a lock of its own; `install` refuses a second
    stack in the process, and `uninstall` by a stack that is not the installed one does nothing.
    """

    _lock: threading.Lock
    _router: LambdaRouter | None = None
    _busy: str  # the refusal of a second stack

    @classmethod
    def install(cls, router: LambdaRouter) -> None:
        with cls._lock:
            if cls._router is not None:
                raise RuntimeError(cls._busy)
            cls._router = router
            cls._patch()

    @classmethod
    def uninstall(cls, router: LambdaRouter) -> None:
        with cls._lock:
            if cls._router is not router:
                return
            cls._router = None
            cls._unpatch()

    @classmethod
    def _patch(cls) -> None:
        raise NotImplementedError

    @classmethod
    def _unpatch(cls) -> None:
        raise NotImplementedError


class MotoLambdaBridge(RouterHook):
    """Makes moto's Lambda API run the router's handlers.

    Replaces `moto.awslambda_simple.models.LambdaSimpleBackend.invoke` (the no-Docker backend) and lets Step
    Functions' `lambda:invoke` pass `InvocationType`, which AWS supports and moto 5.2.5's interpreter drops —
    without it a `waitForTaskToken` task with `"InvocationType": "Event"` would block on the handler instead of
    handing it the token and waiting. Process-wide, so one local stack per process.
    """

    _lock = threading.Lock()
    _busy = "another local stack already routes Lambda invocations in this process"
    _original_invoke: Any = None
    _added_invocation_type = False

    @classmethod
    def _patch(cls) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        if cls._original_invoke is None:
            cls._original_invoke = LambdaSimpleBackend.invoke
            LambdaSimpleBackend.invoke = _routed_invoke  # type: ignore[method-assign,assignment]
        bindings = _lambda_invoke_bindings()
        if "InvocationType" not in bindings:
            bindings.add("InvocationType")
            cls._added_invocation_type = True

    @classmethod
    def _unpatch(cls) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        if cls._original_invoke is not None:
            LambdaSimpleBackend.invoke = cls._original_invoke  # type: ignore[method-assign]
            cls._original_invoke = None
        if cls._added_invocation_type:
            _lambda_invoke_bindings().discard("InvocationType")
            cls._added_invocation_type = False

    @classmethod
    def active_router(cls) -> LambdaRouter | None:
        return cls._router


def _lambda_invoke_bindings() -> set[str]:
    """The parameters Step Functions' `lambda:invoke` passes on (moto's interpreter keeps them in a module set)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_lambda

    bindings: set[str] = state_task_service_lambda._SUPPORTED_API_PARAM_BINDINGS["invoke"]
    return bindings


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
        return error_payload(
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
