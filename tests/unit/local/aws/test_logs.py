"""Per-function log files of the local Lambda runtime (`aegis_local.aws.logs`) and its interceptor seam: what a handler
prints lands in its function's log, like a CloudWatch log group, and never on the console."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_local.aws.lambdas import FunctionSpec, LambdaRouter
from aegis_local.aws.logs import PROCESS_LOG, LogCapture, invocation_scope, runtime_line
from tests.unit.local.aws.lambda_router import HERE, function_spec, running_router


def spec(logical_id: str, directory: str) -> FunctionSpec:
    return function_spec(logical_id, HERE / directory, memory_mb=128)


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    return [h for found in loggers for h in found.handlers if type(h) is logging.StreamHandler]


@pytest.fixture(autouse=True)
def _isolated_console() -> Iterator[None]:
    """A capture reroutes process-wide state (sys.stdout, sys.stderr, every console logging handler): each test here
    starts with none installed and leaves every stream as it found it, whatever ran before it on this worker."""
    assert LogCapture.active() is None, "an earlier test left a LogCapture installed"
    streams = {handler: handler.stream for handler in _stream_handlers()}
    stdout, stderr = sys.stdout, sys.stderr
    try:
        yield
    finally:
        active = LogCapture.active()
        if active is not None:
            active.uninstall()
        sys.stdout, sys.stderr = stdout, stderr
        for handler, stream in streams.items():
            handler.stream = stream


@pytest.fixture
def router() -> Iterator[LambdaRouter]:
    with running_router(
        [spec("Printer", "log_functions/printer"), spec("Counter", "lambda_functions/counter")]
    ) as routed:
        yield routed


def test_what_a_handler_prints_goes_to_its_functions_log_between_start_and_report(
    router: LambdaRouter, tmp_path: Path
) -> None:
    console = io.StringIO()
    original = sys.stdout
    sys.stdout = console
    try:
        with LogCapture(tmp_path) as capture:
            result = router.invoke("Printer", json.dumps({"say": "hello", "thread": True}))
            print("printed by the process itself")
        assert sys.stdout is console
    finally:
        sys.stdout = original

    assert result.json() == {"ok": True}
    lines = (tmp_path / "test-Printer.log").read_text().splitlines()
    request_id = lines[0].split()[2]
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "printed by test-Printer: hello" in lines
    assert "logged by test-Printer" in lines
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    # A thread the handler started is not the invocation's: its output is kept, in the process log.
    process_log = (tmp_path / PROCESS_LOG).read_text()
    assert "printed by a thread the handler started" in process_log
    assert "printed by the process itself" in process_log
    assert console.getvalue() == ""  # nothing reached the console
    assert capture.files == [tmp_path / PROCESS_LOG, tmp_path / "test-Printer.log"]


def test_an_unhandled_error_is_logged_as_the_python_runtime_logs_it(router: LambdaRouter, tmp_path: Path) -> None:
    with LogCapture(tmp_path):
        result = router.invoke("Printer", json.dumps({"fail": True}))
    assert result.function_error == "Unhandled"
    assert "[ERROR] RuntimeError: the handler failed on purpose" in (tmp_path / "test-Printer.log").read_text()


def test_console_logging_handlers_are_pointed_at_the_capture_and_back(tmp_path: Path) -> None:
    console = io.StringIO()
    handler = logging.StreamHandler(console)
    logger = logging.getLogger("aegis-test-configured-before-the-capture")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    original = sys.stdout
    sys.stdout = console  # the handler holds the console stream, as a Powertools logger would hold stdout
    try:
        with LogCapture(tmp_path):
            with invocation_scope("some-function"):
                logger.info("inside an invocation")
            logger.info("outside any invocation")
        logger.info("after the capture")
    finally:
        sys.stdout = original
        logger.removeHandler(handler)

    assert "inside an invocation" in (tmp_path / "some-function.log").read_text()
    assert "outside any invocation" in (tmp_path / PROCESS_LOG).read_text()
    assert handler.stream is console
    assert console.getvalue() == "after the capture\n"


def test_runtime_lines_are_written_only_while_a_capture_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with invocation_scope("quiet"):
        runtime_line("START RequestId: x")
    assert capsys.readouterr().out == ""
    with LogCapture(tmp_path), pytest.raises(RuntimeError, match="already installed"):
        LogCapture(tmp_path / "other").install()


def test_an_interceptor_runs_around_the_real_handler_in_its_warm_container(router: LambdaRouter) -> None:
    seen: list[Any] = []

    def interceptor(event: Any, context: Any, handler: Any) -> Any:
        seen.append((event, context.function_name))
        result = handler(event, context)
        return {**result, "intercepted": True}

    first = router.invoke("Counter", "{}").json()
    with router.intercept("Counter", interceptor):
        second = router.invoke("Counter", json.dumps({"n": 2})).json()
        with pytest.raises(ValueError, match="already intercepted"), router.intercept("Counter", interceptor):
            pass
    third = router.invoke("Counter", "{}").json()

    assert seen == [({"n": 2}, "test-Counter")]
    assert second["intercepted"] is True
    assert "intercepted" not in third
    # The same warm container served all three: the interceptor does not replace the function's code.
    assert (first["invocations"], second["invocations"], third["invocations"]) == (1, 2, 3)


@pytest.mark.parametrize("kind", ["console", "powertools"])
def test_a_handler_whose_stream_was_closed_under_it_is_captured_and_given_back(tmp_path: Path, kind: str) -> None:
    # What an earlier test on the same worker leaves behind: a handler bound to its captured stdout, now closed.
    # A text wrapper, as pytest's capture is: a closed one raises on flush (a closed StringIO would not).
    stale = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    handler = logging.StreamHandler(stale)
    logger = logging.getLogger(f"aegis-test-stale-{kind}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if kind == "powertools":
        logger.powertools_handler = handler  # type: ignore[attr-defined]
    original = sys.stdout
    if kind == "console":
        sys.stdout = stale  # the closed stream is still the console's, as after a capsys test
    stale.close()
    try:
        with LogCapture(tmp_path), invocation_scope("some-function"):
            logger.info("logged through a handler whose stream was closed")
        assert handler.stream is stale, "given back the stream it was found with"
    finally:
        sys.stdout = original
        logger.removeHandler(handler)
        if kind == "powertools":
            del logger.powertools_handler  # type: ignore[attr-defined]

    assert "logged through a handler whose stream was closed" in (tmp_path / "some-function.log").read_text()
