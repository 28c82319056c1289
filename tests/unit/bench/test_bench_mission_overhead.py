"""The mission-overhead benchmark: how it configures the stack for a plan of N changes, how it splits wall-clock time
into stages, the agent-cap override it needs above the template's MaxChangesPerMission, and a real 3-change mission
on the local stack whose timestamps come back in the order the flow dictates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aegis.catalogue import ChangeBase
from aegis_local.aws.template import load_template
from bench import mission_overhead
from bench.common import TEMPLATE
from bench.mission_overhead import (
    AUTH0_REQUESTS_PER_USER_PER_MINUTE,
    ApprovalTraffic,
    BenchError,
    ChangeTiming,
    DriverOverhead,
    MissionTiming,
    StackPlan,
    extrapolate,
    pacing_seconds,
    read_history,
    stack_plan,
    sweep,
    template_cap,
)
from tests.support.changes import one_of_each_kind

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_plan_within_the_template_cap_is_a_plain_parameter_at_auth0s_limit(template: dict[str, Any]) -> None:
    plan = stack_plan(50, template)
    maximum = int(template["Parameters"]["MapMaxConcurrency"]["MaxValue"])
    assert plan.parameters["MaxChangesPerMission"] == "50"
    assert plan.parameters["MaxSharePerResourceType"] == "1"
    assert plan.parameters["MapMaxConcurrency"] == str(maximum) == str(plan.concurrency)
    # Auth0's real limit, at the emulator and in the approval function's pacer.
    assert plan.requests_per_minute == AUTH0_REQUESTS_PER_USER_PER_MINUTE == 5
    assert plan.parameters["ApproverPushesPerMinute"] == "5"


def test_smaller_batches_are_a_parameter_the_template_bounds(template: dict[str, Any]) -> None:
    default = int(template["Parameters"]["ApprovalBatchMaxChanges"]["Default"])
    assert stack_plan(50, template).batch_max_changes == default
    assert "ApprovalBatchMaxChanges" not in stack_plan(50, template).parameters
    smaller = stack_plan(100, template, batch_max_changes=12)
    assert (smaller.parameters["ApprovalBatchMaxChanges"], smaller.batch_max_changes) == ("12", 12)
    with pytest.raises(BenchError, match="ApprovalBatchMaxChanges must be between 2 and"):
        stack_plan(10, template, batch_max_changes=1)


def test_a_plan_above_the_template_cap_cannot_run(template: dict[str, Any]) -> None:
    cap = template_cap(template)
    assert cap == int(template["Parameters"]["MaxChangesPerMission"]["MaxValue"])
    with pytest.raises(BenchError, match="the validator refuses the plan"):
        stack_plan(cap + 1, template)


def test_plan_refuses_a_concurrency_the_template_refuses(template: dict[str, Any]) -> None:
    with pytest.raises(BenchError, match="MapMaxConcurrency must be between 1 and"):
        stack_plan(10, template, concurrency=0)
    with pytest.raises(BenchError, match="at least one change"):
        stack_plan(0, template)


def test_pacing_holds_each_block_of_five_pushes_one_window_after_the_previous() -> None:
    assert [pacing_seconds(n) for n in (0, 1, 5, 6, 10, 11, 200)] == [0, 0, 0, 60, 60, 120, 39 * 60]


def test_a_size_above_the_cap_is_extrapolated_from_the_planner_and_the_measured_latency(
    template: dict[str, Any],
) -> None:
    sample = next(c for c in one_of_each_kind() if c.kind == "revoke-security-group-rules")
    basis = timing_of(sample, push_to_decision=2.5)

    found = extrapolate(200, basis, template, "auth0|a")

    batch_max = int(template["Parameters"]["ApprovalBatchMaxChanges"]["Default"])
    assert found.requests == found.batches == found.pushes == -(-200 // batch_max)
    # The measured mission's 4 pushes needed no pacing: all its 4 s of approvals are carried over.
    assert found.beyond_pacing == 4.0
    assert found.wall_seconds == pacing_seconds(found.pushes) + 4.0
    assert found.validate_output_bytes > 0
    mission_overhead.approvals_report([basis], [found])


def timing_of(
    sample: ChangeBase,
    *,
    push_to_decision: float,
    changes: int = 100,
    driver: DriverOverhead | None = None,
    driver_cpu_seconds: float = 0.0,
    on_phone: float = 0.1,
) -> MissionTiming:
    """A measured mission of `changes` changes, as far as an extrapolation and the driver's table read it."""
    plan = StackPlan(changes=changes, concurrency=40, parameters={}, template_cap=100, requests_per_minute=5)
    traffic = ApprovalTraffic(
        requests=4, batches=4, pushes=4, first_push=at(0), last_decision=at(4), push_to_decision=push_to_decision
    )
    change = ChangeTiming("chg-1", at(1), at(2), at(2 + on_phone), at(4), at(4), at(5), at(6), "applied")
    return MissionTiming(
        mission_id="m-00000000000000000001",
        changes=changes,
        findings=changes,
        concurrency=40,
        event_at=at(0),
        execution_started=at(1),
        map_started=at(1),
        completed=at(9),
        per_change=[change],
        execution_input_bytes=1,
        largest_payload_bytes=1,
        largest_payload_where="",
        stack_plan=plan,
        load_average=0.0,
        build_seconds=0.0,
        cpu_seconds=0.0,
        driver_cpu_seconds=driver_cpu_seconds,
        approvals=traffic,
        driver=driver or DriverOverhead(0, 0, 0, None, None, 0.2),
        sample_change=sample,
    )


def test_the_driver_table_compares_each_size_with_the_smallest_against_the_flat_goal() -> None:
    """Items read per change, driver CPU per change and the poll's duration, each beside its ratio to the smallest
    mission's: items and CPU within x1.5 is flat; a driver that re-reads the whole trail every poll shows as
    growing."""
    sample = one_of_each_kind()[0]

    def mission(changes: int, items: int, cpu: float, poll_seconds: float, on_phone: float) -> MissionTiming:
        driver = DriverOverhead(
            records=4 * changes,
            audit_queries=100,
            audit_items=items,
            polls=100,
            poll_seconds=poll_seconds,
            poll_period=0.2,
        )
        return timing_of(
            sample,
            push_to_decision=1.0,
            changes=changes,
            driver=driver,
            driver_cpu_seconds=cpu,
            on_phone=on_phone,
        )

    flat = [mission(10, 80, 0.1, 1.0, 0.1), mission(100, 820, 0.9, 1.2, 0.15)]
    rows = mission_overhead.driver_overhead_rows(flat)
    assert [row[0] for row in rows] == [10, 100]
    assert rows[1][6:14] == ["8.2", "x1.02", "9.0", "x0.90", "12.0", "x1.20", "0.15", "x1.50"]
    assert rows[1][-1] == "flat (items, cpu <= x1.5); on phone <= 0.21 s"
    assert rows[0][-1] == "-; on phone <= 0.21 s"

    growing = [mission(10, 80, 0.1, 1.0, 0.1), mission(100, 40_000, 0.5, 25.0, 0.6)]
    [_, row] = mission_overhead.driver_overhead_rows(growing)
    assert row[-1] == "GROWS: items; on phone OVER 0.45 s"
    assert row[11] == "x25.00"  # the poll's duration is shown beside the smallest's, not judged

    # A driver that does not count its polls (the one before the cursor): the bench's own counts only, and no CPU
    # figure to compare here.
    unknown = [
        timing_of(sample, push_to_decision=1.0, changes=c, driver=DriverOverhead(4 * c, 3, 4 * c, None, None, 0.2))
        for c in (10, 50)
    ]
    [_, row] = mission_overhead.driver_overhead_rows(unknown)
    assert row[3] == "-"
    assert row[10:12] == ["-", "-"]
    assert row[-1] == "flat (items <= x1.5)"
    mission_overhead.driver_report(flat)


def test_sweep_gives_execution_precedence_and_adds_up_to_the_window() -> None:
    split = sweep(
        at(0),
        at(10),
        executing=[(at(3), at(5)), (at(4), at(8))],
        approving=[(at(1), at(4)), (at(2), at(9))],
    )
    # 0-1 nothing, 1-3 approvals, 3-8 execution (an approval overlaps it), 8-9 approvals, 9-10 nothing.
    assert split == {"approvals": 3.0, "execution": 5.0, "state machine": 2.0}


def test_history_gives_each_changes_state_boundaries_and_the_largest_payload() -> None:
    change = '{"change": {"change_id": "chg-1"}}'
    events = [
        {"type": "ExecutionStarted", "timestamp": at(0), "executionStartedEventDetails": {"input": "x" * 50}},
        {"type": "MapStateStarted", "timestamp": at(0.1), "mapStateStartedEventDetails": {"length": 1}},
        {
            "type": "TaskStateEntered",
            "timestamp": at(0.2),
            "stateEnteredEventDetails": {"name": "RequestApproval", "input": change},
        },
        {
            "type": "TaskStateExited",
            "timestamp": at(1.5),
            "stateExitedEventDetails": {"name": "RequestApproval", "output": change},
        },
        {
            "type": "TaskStateEntered",
            "timestamp": at(1.6),
            "stateEnteredEventDetails": {"name": "ApplyChange", "input": change},
        },
        {
            "type": "TaskStateExited",
            "timestamp": at(2.0),
            "stateExitedEventDetails": {"name": "ApplyChange", "output": '{"change_id": "chg-1", "outcome": "ok"}'},
        },
    ]
    facts = read_history(events)
    assert (facts.execution_started, facts.map_started) == (at(0), at(0.1))
    assert facts.entered == {("RequestApproval", "chg-1"): at(0.2), ("ApplyChange", "chg-1"): at(1.6)}
    assert facts.exited == {("RequestApproval", "chg-1"): at(1.5), ("ApplyChange", "chg-1"): at(2.0)}
    assert (facts.largest_payload_bytes, facts.largest_payload_where) == (50, "ExecutionStarted input")
    with pytest.raises(BenchError, match="no ExecutionStarted"):
        read_history(events[2:])


def test_a_batchs_approval_bounds_each_of_its_changes_from_first_entry_to_last_exit() -> None:
    request = json.dumps(
        {
            "approver_sub": "auth0|a",
            "request": {"items": [{"change": {"change_id": "chg-1"}}, {"change": {"change_id": "chg-2"}}]},
        }
    )
    approved = json.dumps({"decision": "approved", "handoffs": {"chg-1": "h1", "chg-2": "h2"}})
    events = [
        {"type": "ExecutionStarted", "timestamp": at(0), "executionStartedEventDetails": {"input": "{}"}},
        {"type": "MapStateStarted", "timestamp": at(0.1), "mapStateStartedEventDetails": {"length": 1}},
        *(
            {
                "type": "TaskStateEntered",
                "timestamp": at(t),
                "stateEnteredEventDetails": {"name": "RequestApproval", "input": request},
            }
            for t in (0.2, 0.3)  # two approvers of one request
        ),
        *(
            {
                "type": "TaskStateExited",
                "timestamp": at(t),
                "stateExitedEventDetails": {"name": "RequestApproval", "output": approved},
            }
            for t in (1.0, 1.4)
        ),
    ]
    facts = read_history(events)
    assert facts.entered == {("RequestApproval", "chg-1"): at(0.2), ("RequestApproval", "chg-2"): at(0.2)}
    assert facts.exited == {("RequestApproval", "chg-1"): at(1.4), ("RequestApproval", "chg-2"): at(1.4)}


@pytest.mark.e2e
def test_a_real_mission_of_three_changes_is_timed_stage_by_stage(capsys: pytest.CaptureFixture[str]) -> None:
    mission = mission_overhead.measure(3, concurrency=2)
    assert (mission.changes, mission.findings, mission.concurrency) == (3, 3, 2)
    assert len(mission.per_change) == 3
    for change in mission.per_change:
        assert change.outcome == "applied"
        # The flow's order: requested, on the phone, answered, decided, task done, executor in and out.
        path = [
            change.approval_entered,
            change.on_phone,
            change.answered,
            change.decided,
            change.approval_exited,
            change.executor_entered,
            change.executor_exited,
        ]
        assert path == sorted(path), change
        # The emulator asks for a 1 s CIBA interval; the first poll waits for it.
        assert change.decided - change.on_phone >= timedelta(seconds=1)
        assert 0 < change.executor_pipeline < change.stages()["executor"]
    assert mission.event_at < mission.execution_started < mission.last_result < mission.completed
    split = mission.wall_split()
    assert sum(split.values()) == pytest.approx(mission.total, abs=1e-6)
    assert all(value >= 0 for value in split.values())
    # One batch: one push for the three changes, approved at once.
    approvals = mission.approvals
    assert (approvals.requests, approvals.batches, approvals.pushes) == (1, 1, 1)
    assert 1.0 <= approvals.wall_seconds < 60
    assert len({c.approval_entered for c in mission.per_change}) == 1
    # Two at a time: the third change waited for an executor slot, until one of the first two was done.
    first, second, third = sorted(mission.per_change, key=lambda c: c.executor_entered)
    assert third.executor_entered >= min(first.executor_exited, second.executor_exited)
    assert 0 < mission.execution_input_bytes <= mission.largest_payload_bytes < mission_overhead.PAYLOAD_LIMIT_BYTES

    # The driver's reads, counted at botocore's events of its own thread: each record about twice (as it is linked,
    # and once more at the end), not once per poll.
    driver = mission.driver
    assert driver.records > 0
    assert driver.polls
    assert driver.audit_queries > 0
    assert driver.records <= driver.audit_items <= 2 * driver.records

    mission_overhead.report([mission])
    out = capsys.readouterr().out
    assert "## The driver's overhead per change" in out
    table = out.split("## Mission overhead")[1].split("##")[0]
    row = next(line for line in table.splitlines() if line.startswith("3 "))
    assert row.split()[:2] == ["3", "2"]
    assert "## Step Functions payloads" in out
    assert "## Approvals at Auth0's limit" in out
    assert "MapMaxConcurrency 2" in out
