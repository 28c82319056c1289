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


def test_the_plan_of_requests_is_read_from_the_validators_output() -> None:
    from aegis.approvals.policy import ApprovalPolicy
    from aegis.approvals.requests import plan_requests
    from aegis_local.scenario.driver import planned_requests
    from tests.support.approval_plans import variants

    changes = [*variants("enable-kms-key-rotation", 3), *variants("strengthen-password-policy", 1, start=7)]
    output = [
        request.model_dump(mode="json")
        for request in plan_requests("m-1", changes, ApprovalPolicy(approver_subs=("auth0|a",), batch_max_changes=3))
    ]

    planned = planned_requests([*output, {"request_id": "r999", "items": "not a list of items"}])

    assert [request.request_id for request in planned] == [entry["request_id"] for entry in output]
    batch = next(request for request in planned if request.root is not None)
    assert batch.kind == "batch"
    assert batch.label == f"{batch.request_id} (batch of {len(batch.changes)}, #{batch.root[:6]})"
    assert {c.change_id for r in planned for c in r.changes} == {c.change_id for c in changes}
    assert all(request.approvers == ("auth0|a",) for request in planned)
