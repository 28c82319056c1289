"""Driving executions of the mission state machine on the local stack: the errors its handlers raise and the wait for
an execution's end, shared by the tests that run the state machine there."""

from __future__ import annotations

import time
from typing import Any

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def named_error(name: str) -> type[Exception]:
    """An exception class whose __name__ is a Step Functions error name, as the project's handlers define them."""
    error = type(name.replace(".", ""), (Exception,), {})
    error.__name__ = name
    return error


def wait_until_ended(sfn: Any, execution_arn: str, timeout: float) -> dict[str, Any]:
    """DescribeExecution's answer once the execution's status is terminal; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        description = dict(sfn.describe_execution(executionArn=execution_arn))
        if description["status"] in TERMINAL:
            return description
        if time.monotonic() >= deadline:
            raise AssertionError(f"execution still {description['status']} after {timeout}s")
        time.sleep(0.1)
