"""The in-process Lambda runtime of the local stack: what a handler sees and what a caller gets back.

Runs the router directly on small test functions (tests/unit/local/aws/lambda_functions/*/app.py); the integration
tests run it behind moto's Lambda API and Step Functions.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import pytest

from aegis_local.aws.lambdas import (
    ASYNC_PAYLOAD_LIMIT_BYTES,
    FunctionEnvironment,
    FunctionSpec,
    InvalidRequestContent,
    LambdaRouter,
    RequestTooLarge,
    UnknownFunction,
)
from tests.unit.local.aws.lambda_router import ARN, HERE, function_spec, running_router

FUNCTIONS = HERE / "lambda_functions"


def spec(logical_id: str, directory: str, handler: str = "app.handler", **changes: object) -> FunctionSpec:
    return function_spec(logical_id, FUNCTIONS / directory, handler, **changes)


@pytest.fixture
def router() -> Iterator[LambdaRouter]:
    with running_router(
        [
            spec("Counter", "counter", environment={"GREETING": "hello from counter"}),
            spec("Records", "records", environment={"RECORDS_ONLY": "records value", "GREETING": "hello from records"}),
            spec("Failing", "counter", "app.failing_handler"),
            spec("Decimal", "counter", "app.decimal_handler"),
            spec("Unserializable", "counter", "app.unserializable_handler"),
            spec("Broken", "broken"),
            spec("NoSuchHandler", "counter", "app.not_there"),
            spec("NoSuchFile", "counter", "missing.handler"),
            spec("Short", "counter", timeout_seconds=1),
        ]
    ) as routed:
        yield routed


def test_handler_gets_the_event_and_a_realistic_context(router: LambdaRouter) -> None:
    result = router.invoke("Counter", json.dumps({"mission_id": "m-1"}))

    assert (result.status_code, result.function_error) == (200, None)
    body = result.json()
    assert body["event"] == {"mission_id": "m-1"}
    assert body["function_name"] == "test-Counter"
    assert body["invoked_function_arn"] == f"{ARN}test-Counter"
    assert body["memory_limit_in_mb"] == "256"  # a string, as the Python runtime gives it
    assert 29_000 < body["remaining_ms"] <= 30_000
    assert body["log_group_name"] == "/aws/lambda/test-Counter"
    assert body["function_name_env"] == "test-Counter"
    first_request = body["request_id"]
    assert router.invoke("Counter", "{}").json()["request_id"] != first_request


def test_functions_are_found_by_name_arn_or_logical_id(router: LambdaRouter) -> None:
    for name in ("Counter", "test-Counter", f"{ARN}test-Counter", f"{ARN}test-Counter:$LATEST"):
        assert router.spec(name).logical_id == "Counter"
    with pytest.raises(UnknownFunction):
        router.invoke("NotInTheTemplate", "{}")


def test_each_function_has_its_own_module_and_warm_containers_keep_state(router: LambdaRouter) -> None:
    # Both files are called app.py: each function still gets its own module instance.
    assert router.invoke("Counter", "{}").json()["invocations"] == 1
    assert router.invoke("Counter", "{}").json()["invocations"] == 2
    assert router.invoke("Records", "{}").json()["invocations"] == 1


def test_concurrent_invocations_get_separate_containers(router: LambdaRouter) -> None:
    results: list[int] = []

    def call() -> None:
        results.append(router.invoke("Counter", json.dumps({"sleep": 0.5})).json()["invocations"])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Two cold starts, each container counting its own first invocation, as two Lambda sandboxes would.
    assert results == [1, 1]


def test_a_function_sees_its_own_environment_and_not_other_functions_variables(router: LambdaRouter) -> None:
    counter = router.invoke("Counter", "{}").json()
    records = router.invoke("Records", "{}").json()

    assert counter["greeting"] == "hello from counter"
    assert counter["greeting_at_import"] == "hello from counter"
    # RECORDS_ONLY is declared by another function only: hidden here, as on AWS.
    assert counter["records_only"] is None
    assert records == {"records_only": "records value", "greeting": "hello from records", "invocations": 1}
    assert "GREETING" not in os.environ
    assert "RECORDS_ONLY" not in os.environ


def test_concurrent_functions_do_not_see_each_others_environment(router: LambdaRouter) -> None:
    slow: dict[str, object] = {}
    thread = threading.Thread(target=lambda: slow.update(router.invoke("Counter", '{"sleep": 0.6}').json()))
    thread.start()
    time.sleep(0.2)
    records = router.invoke("Records", "{}").json()
    thread.join()

    assert records["greeting"] == "hello from records"
    assert slow["greeting"] == "hello from counter"


def test_an_exception_is_reported_as_lambda_reports_it(router: LambdaRouter) -> None:
    result = router.invoke("Failing", json.dumps({"who": "the approver"}))

    assert (result.status_code, result.function_error) == (200, "Unhandled")
    body = result.json()
    # Step Functions reads the error name from errorType: the class __name__.
    assert body["errorType"] == "Approval.Failed"
    assert body["errorMessage"] == "could not ask the approver"
    assert body["requestId"]
    # The trace starts at the handler's own frames, not the runtime's.
    assert "failing_handler" in body["stackTrace"][0]
    assert router.records("Failing")[-1].error_type == "Approval.Failed"


@pytest.mark.parametrize(
    ("function", "error_type", "message_part"),
    [
        ("Broken", "Runtime.ImportModuleError", "a_dependency_that_is_not_installed"),
        ("NoSuchHandler", "Runtime.HandlerNotFound", "Handler 'not_there' missing on module 'app'"),
        ("NoSuchFile", "Runtime.ImportModuleError", "No module named 'missing'"),
    ],
)
def test_a_handler_that_cannot_be_loaded_fails_with_the_runtime_error(
    router: LambdaRouter, function: str, error_type: str, message_part: str
) -> None:
    result = router.invoke(function, "{}")

    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == error_type
    assert message_part in result.json()["errorMessage"]


def test_results_are_serialized_as_the_python_runtime_does(router: LambdaRouter) -> None:
    assert router.invoke("Decimal", "{}").json() == {"amount": 2.5, "count": 3.0}

    failed = router.invoke("Unserializable", "{}")
    assert failed.function_error == "Unhandled"
    assert failed.json()["errorType"] == "Runtime.MarshalError"


def test_a_handler_that_overruns_its_timeout_is_reported_timed_out(router: LambdaRouter) -> None:
    started = time.monotonic()
    result = router.invoke("Short", json.dumps({"sleep": 3}))
    elapsed = time.monotonic() - started

    assert 1.0 <= elapsed < 2.5
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result.json()["errorMessage"]


def test_event_invocations_return_202_at_once_and_run_in_the_background(router: LambdaRouter) -> None:
    started = time.monotonic()
    result = router.invoke("Counter", json.dumps({"sleep": 0.5, "n": 1}), "Event")

    assert (result.status_code, result.payload) == (202, b"")
    assert time.monotonic() - started < 0.4
    assert router.records("Counter") == []
    assert router.wait_idle(5)
    [record] = router.records("Counter")
    assert (record.invocation_type, record.error_type) == ("Event", None)


def test_dry_run_checks_without_running(router: LambdaRouter) -> None:
    assert router.invoke("Counter", "{}", "DryRun").status_code == 204
    assert router.records() == []


def test_bad_payloads_are_refused_before_anything_runs(router: LambdaRouter) -> None:
    with pytest.raises(InvalidRequestContent):
        router.invoke("Counter", b"{not json")
    with pytest.raises(RequestTooLarge):
        router.invoke("Counter", json.dumps({"blob": "x" * ASYNC_PAYLOAD_LIMIT_BYTES}), "Event")
    assert router.records() == []


def test_override_replaces_the_code_only_inside_the_block(router: LambdaRouter) -> None:
    def replacement(event: dict[str, object], context: object) -> dict[str, object]:
        return {"replaced": True, "greeting": os.environ.get("GREETING")}

    with router.override("Counter", replacement):
        assert router.invoke("Counter", "{}").json() == {"replaced": True, "greeting": "hello from counter"}
    assert router.invoke("Counter", "{}").json()["invocations"] == 1


def test_preload_cold_starts_a_handler_or_reports_why_it_cannot(router: LambdaRouter) -> None:
    assert router.preload("Counter") is None
    assert router.records() == []  # loading is not an invocation
    # The preloaded container is the warm one the first invocation uses.
    assert router.invoke("Counter", "{}").json()["invocations"] == 1

    problem = router.preload("Broken")
    assert problem is not None
    assert problem.startswith("Runtime.ImportModuleError: ")
    assert router.preload("NoSuchHandler") == "Runtime.HandlerNotFound: Handler 'not_there' missing on module 'app'"


def test_a_handler_still_running_when_the_environment_is_removed_keeps_its_own() -> None:
    FunctionEnvironment.install()
    router = LambdaRouter([spec("Counter", "counter", environment={"GREETING": "inside the function"})])
    seen: dict[str, object] = {}
    thread = threading.Thread(target=lambda: seen.update(router.invoke("Counter", '{"sleep": 0.8}').json()))
    thread.start()
    time.sleep(0.3)

    FunctionEnvironment.uninstall()  # the stack stops while the handler runs
    thread.join()
    router.close()

    # It never saw the process environment, and the process gets its plain environment back once no handler runs
    # (a timed-out handler of an earlier test may still be sleeping in its abandoned thread).
    assert seen["greeting"] == "inside the function"
    deadline = time.monotonic() + 5
    while type(os.environ._data) is not dict and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert type(os.environ._data) is dict  # type: ignore[attr-defined]
    assert "GREETING" not in os.environ
