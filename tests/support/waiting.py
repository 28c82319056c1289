"""Waiting for something a running stack does in its own time (a mission to complete, a request to reach the phone)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_SECONDS = 0.5


def wait_for(condition: Callable[[], Any], what: str, *, timeout: float) -> Any:
    """Poll `condition` until it returns something truthy, and return that; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out waiting for {what}")
