"""Corrections where moto 5.2.5 (or talking to a local endpoint) differs from AWS in a way the application relies on.

- **A task token answered before the heartbeat watch starts is missed.** For a `waitForTaskToken` task with a
  heartbeat, the interpreter registers the token, invokes the function, and only then creates the heartbeat
  endpoint that `SendTaskSuccess`/`SendTaskFailure` wake. An answer that arrives in between (an approval function
  that fails at once, e.g. `Approval.Halted` when the kill switch is engaged) is stored but wakes nobody, so the
  execution sleeps a whole heartbeat interval before it notices. On AWS the answer is taken at once. The fix wakes
  a heartbeat endpoint that is created after the outcome is already known. A heartbeat sent in that same window
  (an approval function that polls at once) is refused with `TaskTimedOut`, as if the task had ended, where AWS
  accepts a heartbeat for any token it awaits: the fix accepts it, since the watch it would reset starts afresh.

- **A heartbeat timeout is reported as a task timeout.** moto's heartbeat timeout (`HeartbeatTimeoutError`) is a
  `TimeoutError`, and its task state turns every `TimeoutError` into `States.Timeout`; so a `waitForTaskToken` task
  whose worker stopped sending heartbeats (an approval function that died) is caught as a task that nobody answered
  in time. AWS reports it as `States.HeartbeatTimeout` (a `TaskTimedOut` event with that error), which the template
  catches apart. The fix reports it so.

- **StopExecution does not stop an execution that waits for a task token.** moto marks the program stopped, but
  the thread waiting for the token looks again only when its heartbeat interval (or the task's timeout) runs out,
  and until then DescribeExecution says RUNNING; when it does wake, the wait's own timeout error overwrites the stop
  and the execution ends FAILED. On AWS a stopped execution is ABORTED at once, whatever it was waiting for. The
  fix wakes every waiting callback of the execution when it is stopped, and keeps a stopped program stopped: a
  failure or timeout reported by a state still unwinding does not replace it (moto's own `set_ended` already
  leaves a program that is no longer running alone).

- **No "Step Functions Execution Status Change" events.** AWS sends one to the account's default event bus for
  each status change of a Standard workflow's execution (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED); moto sends
  none, so no rule on them ever fires (the template's MissionEndedRule, which purges an ended mission's unconsumed
  handoffs). The fix puts that event, in AWS's shape, on moto's default bus of the execution's account and region
  when an execution starts and when it reaches its final status (after DescribeExecution reports that status), so
  the rules of the local stack match and deliver it like any other event (aegis_local.aws.eventbridge).

- **S3 Control puts the account id in the host name.** botocore sends S3 Control calls to
  `<account-id>.<endpoint host>`, which exists on AWS but not for `http://127.0.0.1:<port>`, so every
  `s3control` call of a handler (the account public access block) would fail locally with a connection error.
  `S3ControlEndpointFix` drops that label again, for the moto server's host only, in every botocore session of the
  process (the sessions handlers create themselves included), so handler code needs no local workaround.

- **A bucket policy statement with a condition denies whenever moto cannot evaluate it.** moto authorizes object
  requests against the bucket policy with no request context, and its statement check answers DENIED when a
  condition does not hold, whatever the statement's effect. So the audit export bucket's TLS-only statement (Deny
  if `aws:SecureTransport` is false) refuses every PutObject, where on AWS, over TLS, it never applies; and an
  Allow with a condition would deny too. `S3BucketPolicyFix` has moto authorize against the statements without a
  condition only: a conditional statement does not apply locally, as IAM treats one whose condition does not hold.

- **A Distributed Map ignores its tolerated failure threshold.** moto's interpreter parses `ToleratedFailureCount`,
  `ToleratedFailurePercentage` and their `*Path` forms but never applies them: a child execution that fails becomes
  a `null` result and the Map succeeds however many failed. On AWS the Map Run fails with
  `States.ExceedToleratedFailureThreshold` once more items failed (or timed out) than the declared count, or a larger
  share than the declared percentage (either, when both are declared; any failure, when neither is), and the Map
  state's Retry/Catch see that error (the organization scan's ScanEachAccount catches it, summarises and fails by
  name). The fix records which thresholds a Map state declares when its definition is parsed, and after the Map Run's
  items have all ended raises that error, so the Map Run and the Map state fail as on AWS.

- **A DynamoDB write is not atomic.** moto's `UpdateItem` checks the condition, then (for a new item) stores a bare
  item holding only its key, then applies the update expression; `PutItem` and `DeleteItem` check and then write.
  Handlers run as threads of one process, so a second request can land in between: it reads the bare item and fails
  a condition such as `attribute_not_exists(id) OR kind = :kind` that no state of the item on AWS would fail
  (the approval's pacing read did, one run in several), or two `#version = :version` writes both pass where AWS
  lets one win. On AWS every item write is atomic and a read sees an item before or after a write, never during.
  `DynamoDBAtomicItemsFix` runs moto's item operations (reads, writes, transactions) one at a time, process-wide.

Applied by the local stack while it runs (process-wide, like moto's own state) and removed by `uninstall()`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "STATUS_CHANGE_DETAIL_TYPE",
    "STATUS_CHANGE_SOURCE",
    "DynamoDBAtomicItemsFix",
    "S3BucketPolicyFix",
    "S3ControlEndpointFix",
    "StepFunctionsFixes",
]

logger = logging.getLogger(__name__)

_ACCOUNT_LABEL = re.compile(r"^\d{12}\.")
_S3_CONTROL_EVENT = "before-sign.s3-control.*"
STATUS_CHANGE_SOURCE = "aws.states"
STATUS_CHANGE_DETAIL_TYPE = "Step Functions Execution Status Change"


class StepFunctionsFixes:
    _lock = threading.Lock()
    # (owner, attribute name) -> the original attribute, for every patch in place.
    _originals: dict[tuple[Any, str], Any] = {}

    @classmethod
    def install(cls) -> None:
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
            distributed_iteration_component as distributed,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
        from moto.stepfunctions.parser.asl.eval.environment import Environment
        from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

        with cls._lock:
            if cls._originals:
                return
            patches: dict[tuple[Any, str], Any] = {
                (CallbackEndpoint, "setup_heartbeat_endpoint"): _answered_before_the_watch,
                (CallbackEndpoint, "notify_heartbeat"): _heartbeat_before_the_watch,
                (StateTask, "_from_error"): _heartbeat_timeout_named,
                (Execution, "stop"): _stop_waits_too,
                (Execution, "start"): _start_announced,
                (BaseExecutionWorkerCommunication, "terminated"): _end_announced,
                **{(Environment, name): _unless_stopped(name) for name in ("set_error", "set_timed_out")},
                (StateMap, "from_state_props"): _thresholds_declared,
                (distributed.DistributedIterationComponent, "_map_run"): _thresholds_applied,
            }
            for (owner, name), make in patches.items():
                original = getattr(owner, name)
                cls._originals[(owner, name)] = original
                setattr(owner, name, make(original))

    @classmethod
    def uninstall(cls) -> None:
        with cls._lock:
            for (owner, name), original in cls._originals.items():
                setattr(owner, name, original)
            cls._originals = {}


def _answered_before_the_watch(original: Any) -> Any:
    def setup_heartbeat_endpoint(endpoint: Any, heartbeat_seconds: int) -> Any:
        heartbeat = original(endpoint, heartbeat_seconds)
        if endpoint.get_outcome() is not None:
            heartbeat.notify()
        return heartbeat

    return setup_heartbeat_endpoint


def _heartbeat_before_the_watch(original: Any) -> Any:
    def notify_heartbeat(endpoint: Any) -> bool:
        # moto's own attribute: whether the watch exists yet. Without it the token is registered and awaited.
        if getattr(endpoint, "_heartbeat_endpoint", None) is None:
            return True
        return bool(original(endpoint))

    return notify_heartbeat


def _heartbeat_timeout_named(original: Any) -> Any:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

    def from_error(state: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, HeartbeatTimeoutError):
            return original(state, env, ex)
        heartbeat_timeout = StatesErrorNameType.StatesHeartbeatTimeout
        # EventDetails is a TypedDict of every detail kind; an event carries one, as moto builds its own.
        details: Any = {"taskTimedOutEventDetails": TaskTimedOutEventDetails(error=heartbeat_timeout.to_name())}
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=heartbeat_timeout),
            event_type=HistoryEventType.TaskTimedOut,
            event_details=details,
        )

    return from_error


def _stop_waits_too(original: Any) -> Any:
    def stop(execution: Any, stop_date: datetime, error: str | None, cause: str | None) -> None:
        original(execution, stop_date, error, cause)
        environment = getattr(execution.exec_worker, "env", None)
        if environment is None:
            return
        # Every frame of the execution shares the one callback pool: waking its endpoints ends every wait.
        for endpoint in list(environment.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()

    return stop


def _unless_stopped(name: str) -> Any:
    def make(original: Any) -> Any:
        def settle(environment: Any, *args: Any, **kwargs: Any) -> None:
            from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

            if isinstance(environment._program_state, ProgramStopped):
                return
            original(environment, *args, **kwargs)

        settle.__name__ = name
        return settle

    return make


# Which tolerated failure thresholds a Distributed Map state declares: (count declared, percentage declared), on its
# iteration component (the object whose `_map_run` runs the Map Run).
_DECLARED_THRESHOLDS = "_aegis_declared_thresholds"


def _thresholds_declared(original: Any) -> Any:
    def from_state_props(state: Any, state_props: Any) -> None:
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
            ToleratedFailureCountDecl,
            ToleratedFailurePercentageDecl,
        )

        original(state, state_props)
        declared = (
            state_props.get(ToleratedFailureCountDecl) is not None,
            state_props.get(ToleratedFailurePercentageDecl) is not None,
        )
        setattr(state.iteration_component, _DECLARED_THRESHOLDS, declared)

    return from_state_props


def exceeds_tolerance(failed: int, total: int, count: int | None, percentage: float | None) -> bool:
    """AWS's rule for a Map Run: `count`/`percentage` None when not declared. With neither, any failure fails it;
    otherwise more failures than the count, or a larger share than the percentage, does."""
    if failed == 0:
        return False
    if count is None and percentage is None:
        return True
    over_count = count is not None and failed > count
    over_share = percentage is not None and total > 0 and failed * 100.0 / total > percentage
    return over_count or over_share


def _thresholds_applied(original: Any) -> Any:
    def map_run(component: Any, env: Any, eval_input: Any) -> None:
        from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
            FailureEventException,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        original(component, env, eval_input)
        count_declared, percentage_declared = getattr(component, _DECLARED_THRESHOLDS, (False, False))
        items = eval_input.map_run_record.item_counter
        failed = items.failed.get() + items.timed_out.get()
        total = items.total.get()
        if not exceeds_tolerance(
            failed,
            total,
            eval_input.tolerated_failure_count if count_declared else None,
            eval_input.tolerated_failure_percentage if percentage_declared else None,
        ):
            return
        error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
        cause = "The specified tolerated failure threshold was exceeded"
        # moto declares EventDetails with every key required; its own code, like this, sets only the one it means.
        details = EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(error=error, cause=cause))  # type: ignore[typeddict-item]
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                event_type=HistoryEventType.MapRunFailed,
                event_details=details,
            )
        )

    return map_run


def _start_announced(original: Any) -> Any:
    def start(execution: Any) -> None:
        original(execution)
        _announce(execution)

    return start


def _end_announced(original: Any) -> Any:
    def terminated(communication: Any) -> None:
        original(communication)
        _announce(communication.execution)

    return terminated


def _epoch_millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None


def _announce(execution: Any) -> None:
    """Put the execution's status change on the default event bus of its account and region, as AWS does for a
    Standard workflow. Never raises into moto's execution thread: a failure is logged."""
    from moto.events.models import events_backends
    from moto.stepfunctions.parser.backend.execution import SyncExecution

    if isinstance(execution, SyncExecution):  # Express workflows send no status events
        return
    try:
        status = execution.exec_status.value
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _epoch_millis(execution.start_date),
            "stopDate": _epoch_millis(execution.stop_date),
            "input": json.dumps(execution.input_data),
            "inputDetails": {"included": True},
            "output": json.dumps(execution.output) if status == "SUCCEEDED" else None,
            "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
            "error": execution.error,
            "cause": execution.cause,
        }
        events_backends[execution.account_id][execution.region_name].put_events(
            [
                {
                    "Source": STATUS_CHANGE_SOURCE,
                    "DetailType": STATUS_CHANGE_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "Resources": [execution.exec_arn],
                }
            ]
        )
    except Exception:
        logger.warning("could not put the status change of %s on the event bus", execution.exec_arn, exc_info=True)


class S3ControlEndpointFix:
    _lock = threading.Lock()
    _handler: Any = None
    _default_session: Any = None

    @classmethod
    def install(cls, endpoint_url: str) -> None:
        import boto3
        from botocore import handlers

        endpoint_host = urlsplit(endpoint_url).netloc

        def drop_account_label(request: Any, **_: Any) -> None:
            parts = urlsplit(request.url)
            if parts.netloc != endpoint_host and _ACCOUNT_LABEL.sub("", parts.netloc) == endpoint_host:
                request.url = urlunsplit(parts._replace(netloc=endpoint_host))

        with cls._lock:
            if cls._handler is not None:
                raise RuntimeError("the S3 Control endpoint fix is already installed")
            cls._handler = drop_account_label
            # Every botocore session created from now on registers it; the default session may exist already.
            handlers.BUILTIN_HANDLERS.append((_S3_CONTROL_EVENT, drop_account_label))
            default = boto3.DEFAULT_SESSION
            if default is not None:
                default._session.register(_S3_CONTROL_EVENT, drop_account_label)
                cls._default_session = default

    @classmethod
    def uninstall(cls) -> None:
        from botocore import handlers

        with cls._lock:
            handler = cls._handler
            if handler is None:
                return
            handlers.BUILTIN_HANDLERS[:] = [spec for spec in handlers.BUILTIN_HANDLERS if spec[1] is not handler]
            if cls._default_session is not None:
                cls._default_session._session.unregister(_S3_CONTROL_EVENT, handler)
            cls._handler = None
            cls._default_session = None


class S3BucketPolicyFix:
    _lock = threading.Lock()
    _original: Any = None

    @classmethod
    def install(cls) -> None:
        from moto.s3.models import FakeBucket

        with cls._lock:
            if cls._original is None:
                cls._original = FakeBucket.get_permission
                FakeBucket.get_permission = _unconditional_statements_only  # type: ignore[method-assign,assignment]

    @classmethod
    def uninstall(cls) -> None:
        from moto.s3.models import FakeBucket

        with cls._lock:
            if cls._original is not None:
                FakeBucket.get_permission = cls._original  # type: ignore[method-assign]
                cls._original = None


def _unconditional_statements_only(bucket: Any, action: str, resource: str) -> Any:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(bucket.policy)
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    unconditional = [statement for statement in statements if not statement.get("Condition")]
    if not unconditional:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**document, "Statement": unconditional})).is_action_permitted(action, resource)


class DynamoDBAtomicItemsFix:
    _lock = threading.Lock()
    # Reentrant: a transaction calls moto's own put/update/delete inside it.
    _items_lock = threading.RLock()
    _originals: dict[str, Any] = {}
    ITEM_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "query", "scan", "transact_write_items")

    @classmethod
    def install(cls) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        with cls._lock:
            if cls._originals:
                return
            for name in cls.ITEM_OPERATIONS:
                original = getattr(DynamoDBBackend, name)
                cls._originals[name] = original
                setattr(DynamoDBBackend, name, cls._one_at_a_time(original))

    @classmethod
    def uninstall(cls) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        with cls._lock:
            for name, original in cls._originals.items():
                setattr(DynamoDBBackend, name, original)
            cls._originals = {}

    @classmethod
    def _one_at_a_time(cls, original: Any) -> Any:
        def operation(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with cls._items_lock:
                return original(backend, *args, **kwargs)

        operation.__wrapped__ = original  # type: ignore[attr-defined]
        return operation
