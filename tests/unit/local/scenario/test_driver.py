"""The mission driver's executor gate behind `--kill-after` and `--drift`, without a stack."""

from __future__ import annotations

import threading
import time
from typing import Any

from aegis.catalogue import ChangeBase
from aegis_local.scenario.driver import ExecutorInterceptor
from tests.support.changes import one_of_each_kind

CHANGES = [c for c in one_of_each_kind() if c.kind != "undo"]


def test_kill_after_holds_any_executor_that_could_apply_one_change_too_many() -> None:
    gate = ExecutorInterceptor(kill_after=2)
    started: list[str] = []
    lock = threading.Lock()

    def handler(event: Any, context: Any) -> dict[str, Any]:
        with lock:
            started.append(event["change"]["change_id"])
        time.sleep(0.05)
        return {"change_id": event["change"]["change_id"], "outcome": "applied"}

    context = type("Context", (), {"get_remaining_time_in_millis": staticmethod(lambda: 60_000)})()
    events = [{"change": change.model_dump(mode="json")} for change in CHANGES[:5]]
    threads = [threading.Thread(target=gate, args=(event, context, handler)) for event in events]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while gate.applied_count() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the other three stay held for as long as the kill switch takes

    assert gate.applied_count() == 2
    assert len(started) == 2
    gate.mark_killed()
    for thread in threads:
        thread.join(5)
    assert len(started) == 5  # released: each finds the halt flag (here: the fake handler just runs)


def test_drift_edits_the_resource_once_before_the_executor_runs() -> None:
    order: list[str] = []
    target = CHANGES[0]

    def edit(change: ChangeBase) -> str:
        order.append(f"edit {change.change_id}")
        return "changed by hand"

    def handler(event: Any, context: Any) -> dict[str, Any]:
        order.append(f"execute {event['change']['change_id']}")
        return {"outcome": "drift"}

    gate = ExecutorInterceptor(drift_checks=frozenset({target.check_id}), edit=edit)
    for change in (target, CHANGES[1], target):
        gate({"change": change.model_dump(mode="json")}, None, handler)

    assert order == [
        f"edit {target.change_id}",
        f"execute {target.change_id}",
        f"execute {CHANGES[1].change_id}",
        f"execute {target.change_id}",  # a retried invocation is not edited twice
    ]
    assert gate.drifted == {target.change_id: "changed by hand"}
