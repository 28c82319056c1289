"""The mission-overhead benchmark: how it configures the stack for a plan of N changes, how it splits wall-clock time
into stages, the agent-cap override it needs above the template's MaxChangesPerMission, and a real 3-change mission
on the local stack whose timestamps come back in the order the flow dictates."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aegis_local.aws.lambdas import FunctionEnvironment
from aegis_local.aws.template import load_template
from bench import mission_overhead
from bench.common import TEMPLATE
from bench.mission_overhead import (
    MAX_CHANGES_VARIABLE,
    AgentCapOverride,
    BenchError,
    read_history,
    stack_plan,
    sweep,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_plan_within_the_template_cap_is_a_plain_parameter(template: dict[str, Any]) -> None:
    plan = stack_plan(50, template)
    maximum = int(template["Parameters"]["MapMaxConcurrency"]["MaxValue"])
    assert plan.parameters["MaxChangesPerMission"] == "50"
    assert plan.parameters["MaxSharePerResourceType"] == "1"
    assert plan.parameters["MapMaxConcurrency"] == str(maximum) == str(plan.concurrency)
    assert plan.agent_cap_override is None
    assert plan.requests_per_minute >= 50


def test_plan_above_the_template_cap_sets_the_agent_variable_instead(template: dict[str, Any]) -> None:
    cap = int(template["Parameters"]["MaxChangesPerMission"]["MaxValue"])
    plan = stack_plan(cap + 100, template, concurrency=4)
    # The stack is still created with a value the template accepts; the agent is told the real size.
    assert plan.parameters["MaxChangesPerMission"] == str(cap)
    assert plan.agent_cap_override == cap + 100
    assert plan.requests_per_minute >= cap + 100
    assert plan.parameters["MapMaxConcurrency"] == "4"


def test_plan_refuses_a_concurrency_the_template_refuses(template: dict[str, Any]) -> None:
    with pytest.raises(BenchError, match="MapMaxConcurrency must be between 1 and"):
        stack_plan(10, template, concurrency=0)
    with pytest.raises(BenchError, match="at least one change"):
        stack_plan(0, template)


def test_agent_cap_override_changes_only_the_invocations_environment() -> None:
    seen: list[str | None] = []
    override = AgentCapOverride(250)
    FunctionEnvironment.install()
    try:
        with FunctionEnvironment.applied({MAX_CHANGES_VARIABLE: "100"}):
            override({}, None, lambda event, context: seen.append(os.environ.get(MAX_CHANGES_VARIABLE)))
        assert MAX_CHANGES_VARIABLE not in os.environ
    finally:
        FunctionEnvironment.uninstall()
        os.unsetenv(MAX_CHANGES_VARIABLE)
    assert seen == ["250"]
    assert override.invocations == 1


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
    # Two at a time: the third change waited for a slot.
    waits = sorted((c.approval_entered - mission.map_started).total_seconds() for c in mission.per_change)
    assert waits[-1] > 1.0
    assert 0 < mission.execution_input_bytes <= mission.largest_payload_bytes < mission_overhead.PAYLOAD_LIMIT_BYTES

    mission_overhead.report([mission])
    out = capsys.readouterr().out
    table = out.split("## Mission overhead")[1].split("##")[0]
    row = next(line for line in table.splitlines() if line.startswith("3 "))
    assert row.split()[:2] == ["3", "2"]
    assert "## Step Functions payloads" in out
    assert "MapMaxConcurrency 2" in out
