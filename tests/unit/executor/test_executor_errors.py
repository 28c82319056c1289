"""The executor's errors reach Step Functions under the names the state machine matches."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest

from aegis_executor.errors import (
    ERRORS,
    ApprovalExpired,
    ApprovalInvalid,
    ExecutorError,
    InvalidRequest,
    NoConnectedAccount,
    Throttled,
    TokenExchangeFailed,
)

DEFINITION = Path(__file__).parents[3] / "statemachine" / "mission.asl.json"


def _apply_change_state() -> dict[str, object]:
    """The ApplyChange task, wherever the definition nests it (inside the Map over a request's items)."""
    found: list[dict[str, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            states = node.get("States")
            if isinstance(states, dict) and isinstance(states.get("ApplyChange"), dict):
                found.append(states["ApplyChange"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(DEFINITION.read_text()))
    assert len(found) == 1, "exactly one ApplyChange task"
    return found[0]


def _lambda_error_type(exc: BaseException) -> str:
    # What the Lambda Python runtime puts into the error payload's errorType.
    return type(exc).__name__


@pytest.mark.parametrize("error", ERRORS, ids=[e.__name__ for e in ERRORS])
def test_each_error_reports_its_state_machine_name_and_is_still_caught_by_class(error: type[ExecutorError]) -> None:
    assert error.__name__.startswith("Executor.")
    with pytest.raises(error) as caught:
        raise error("why")
    assert _lambda_error_type(caught.value) == error.__name__
    assert isinstance(caught.value, ExecutorError)
    assert error.__name__ in "".join(traceback.format_exception_only(caught.value))


def test_the_errors_the_executor_raises_are_the_ones_the_state_machine_expects_of_it() -> None:
    state = _apply_change_state()
    named = {
        name
        for rule in [*state["Retry"], *state["Catch"]]  # type: ignore[misc]
        for name in rule["ErrorEquals"]
        if name.startswith("Executor.")
    }
    raised = {e.__name__ for e in ERRORS}
    # Malformed input is caught by States.ALL; a halt is an outcome, not an error.
    assert raised - named == {InvalidRequest.__name__}
    assert named - raised <= {"Executor.Halted"}
    assert {
        e.__name__ for e in (ApprovalInvalid, ApprovalExpired, NoConnectedAccount, TokenExchangeFailed, Throttled)
    } <= named


def test_only_throttling_is_retried() -> None:
    retried = {name for rule in _apply_change_state()["Retry"] for name in rule["ErrorEquals"]}  # type: ignore[attr-defined]
    assert {name for name in retried if name.startswith("Executor.")} == {Throttled.__name__}
    assert InvalidRequest.__name__ not in retried
