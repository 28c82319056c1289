"""Run the template's Lambda functions in this process, the way the Lambda service would run them.

moto's no-Docker Lambda backend only echoes payloads. The local stack replaces its `invoke` with
`LambdaRouter.invoke`, so every invocation — from Step Functions, from EventBridge, from a handler's own boto3
client, sync or `InvocationType=Event` — runs the real handler named in `template.yaml`. The runtime's parts:

- `spec`: what the service knows about a function (`FunctionSpec`), the `LambdaContext` a handler gets (its
  `get_remaining_time_in_millis()` counts down from the template's `Timeout`), and what a caller gets back.
- `environment`: `FunctionEnvironment`, the thread running a handler sees its own template variables and Lambda's
  runtime variables over `os.environ`, and not the variables only other functions declare.
- `container`: one execution environment, a private module instance of the function's `app.py`.
- `invocation`: one run of a handler in its own thread, in its function's log scope
  (`aegis_local.aws.logs.invocation_scope`: while a `LogCapture` is installed everything the handler prints lands in
  the function's own log file, between Lambda's `START` / `END` / `REPORT` lines).
- `payloads`: the Invoke API's request checks, the runtime's JSON and its error payload. A raised exception is
  reported as the Python runtime reports it: `FunctionError: Unhandled` with payload
  `{"errorType": type(exc).__name__, "errorMessage": str(exc), ...}`. Step Functions takes the ASL error name from
  `errorType`, so an exception class whose `__name__` is `Executor.Halted` is caught by
  `"ErrorEquals": ["Executor.Halted"]` (see "Errors across Lambda" in docs/CONTRACTS.md); a handler that overruns
  its timeout is reported as `Sandbox.Timedout`.
- `router`: `LambdaRouter`, invocations by name to warm or cold containers, with the test seams.
- `faults`: faults injected at a function's AWS calls (`LambdaRouter.faults.inject(AwsFault(...))`): its process
  dying before or after a call (reported as `Runtime.ExitError`, the container discarded), or AWS answering an error.
- `moto_bridge`: `MotoLambdaBridge`, moto's Lambda API answered by the router, and `RouterHook`, the process-wide
  patch of moto it shares with EventBridge's delivery (`aegis_local.aws.eventbridge`).

Known differences from the service: asynchronous invocations that fail are logged and recorded but not retried
(Lambda retries twice, minutes apart); a timed-out handler keeps running in its orphaned thread.
"""

from aegis_local.aws.lambdas.environment import FunctionEnvironment
from aegis_local.aws.lambdas.faults import DIE, AwsError, AwsFault, FaultHooks, FiredFault, FunctionDied
from aegis_local.aws.lambdas.moto_bridge import MotoLambdaBridge
from aegis_local.aws.lambdas.payloads import (
    ASYNC_PAYLOAD_LIMIT_BYTES,
    SYNC_PAYLOAD_LIMIT_BYTES,
    InvalidRequestContent,
    RequestTooLarge,
)
from aegis_local.aws.lambdas.router import LambdaRouter
from aegis_local.aws.lambdas.spec import (
    FunctionSpec,
    Interceptor,
    InvocationRecord,
    InvocationResult,
    InvocationType,
    LambdaContext,
    UnknownFunction,
)

__all__ = [
    "ASYNC_PAYLOAD_LIMIT_BYTES",
    "DIE",
    "SYNC_PAYLOAD_LIMIT_BYTES",
    "AwsError",
    "AwsFault",
    "FaultHooks",
    "FiredFault",
    "FunctionDied",
    "FunctionEnvironment",
    "FunctionSpec",
    "Interceptor",
    "InvalidRequestContent",
    "InvocationRecord",
    "InvocationResult",
    "InvocationType",
    "LambdaContext",
    "LambdaRouter",
    "MotoLambdaBridge",
    "RequestTooLarge",
    "UnknownFunction",
]
