"""Corrections to moto 5.2.5's Step Functions interpreter where it differs from AWS in a way the mission relies on.

- **A task token answered before the heartbeat watch starts is missed.** For a `waitForTaskToken` task with a
  heartbeat, the interpreter registers the token, invokes the function, and only then creates the heartbeat
  endpoint that `SendTaskSuccess`/`SendTaskFailure` wake. An answer that arrives in between (an approval function
  that fails at once, e.g. `Approval.Halted` when the kill switch is engaged) is stored but wakes nobody, so the
  execution sleeps a whole heartbeat interval before it notices. On AWS the answer is taken at once. The fix wakes
  a heartbeat endpoint that is created after the outcome is already known.

Applied by the local stack while it runs (process-wide, like moto's own state) and removed by `uninstall()`.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["StepFunctionsFixes"]


class StepFunctionsFixes:
    _lock = threading.Lock()
    _original_setup_heartbeat: Any = None

    @classmethod
    def install(cls) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

        with cls._lock:
            if cls._original_setup_heartbeat is not None:
                return
            original = CallbackEndpoint.setup_heartbeat_endpoint
            cls._original_setup_heartbeat = original

            def setup_heartbeat_endpoint(endpoint: Any, heartbeat_seconds: int) -> Any:
                heartbeat = original(endpoint, heartbeat_seconds)
                if endpoint.get_outcome() is not None:
                    heartbeat.notify()
                return heartbeat

            CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign,assignment]

    @classmethod
    def uninstall(cls) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

        with cls._lock:
            if cls._original_setup_heartbeat is None:
                return
            CallbackEndpoint.setup_heartbeat_endpoint = cls._original_setup_heartbeat  # type: ignore[method-assign]
            cls._original_setup_heartbeat = None
