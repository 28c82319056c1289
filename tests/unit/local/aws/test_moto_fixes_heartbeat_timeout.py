"""The heartbeat-timeout fix (aegis_local.aws.moto_fixes): a `waitForTaskToken` task whose worker stopped sending
heartbeats fails with `States.HeartbeatTimeout`, as on AWS, where moto 5.2.5 reports every `TimeoutError` (its
heartbeat timeout included) as `States.Timeout`; a task's own timeout stays `States.Timeout`."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

from aegis_local.aws.moto_fixes import StepFunctionsFixes

# What a failure event reads of the environment it fails.
ENV = SimpleNamespace(
    next_state_name="RequestApproval", event_history_context=SimpleNamespace(source_event_id=7), states=None
)


@pytest.fixture
def fixes() -> Iterator[None]:
    StepFunctionsFixes.install()
    try:
        yield
    finally:
        StepFunctionsFixes.uninstall()


def failure_of(error: Exception) -> tuple[str, str, object]:
    # The template's approval task (lambda:invoke.waitForTaskToken), as far as failing it goes.
    state = object.__new__(StateTaskServiceLambda)
    state.resource = SimpleNamespace(service_name="lambda", api_action="invoke", condition="waitForTaskToken")  # type: ignore[assignment]
    event = state._from_error(ENV, error)  # type: ignore[arg-type]
    assert event.error_name is not None
    return str(event.error_name.error_name), str(event.event_type.value), event.event_details


@pytest.mark.usefixtures("fixes")
def test_a_heartbeat_timeout_is_named_as_aws_names_it() -> None:
    name, event_type, details = failure_of(HeartbeatTimeoutError())

    assert name == "States.HeartbeatTimeout"
    assert event_type == "TaskTimedOut"
    assert details == {"taskTimedOutEventDetails": {"error": "States.HeartbeatTimeout"}}


@pytest.mark.usefixtures("fixes")
def test_a_task_timeout_is_still_a_task_timeout() -> None:
    assert failure_of(TimeoutError())[0] == "States.Timeout"


def test_without_the_fix_moto_calls_a_heartbeat_timeout_a_task_timeout() -> None:
    assert failure_of(HeartbeatTimeoutError())[0] == "States.Timeout"
