"""The `Halted` gauge: every trigger and re-arm publishes whether the halt flag is engaged afterwards (1) or clear
(0), and template.yaml's HaltEngagedAlarm watches exactly that metric, so it stays in ALARM from a trigger until a
re-arm."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis_killswitch.report import KillSwitchReport
from aegis_killswitch.settings import KillSwitchSettings
from tests.support.killswitch_world import AwsWorld, Context
from tests.support.lambda_app import load_app
from tests.support.stack import build_stack


def emitted(output: str, metric: str) -> list[dict[str, Any]]:
    """The EMF documents (one per flushed invocation) that carry `metric`, as CloudWatch would ingest them."""
    documents = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    return [
        document
        for document in documents
        if any(metric in (m["Name"] for m in d["Metrics"]) for d in document["_aws"]["CloudWatchMetrics"])
    ]


def metric_identity(document: dict[str, Any], metric: str) -> tuple[str, str, dict[str, str]]:
    """(namespace, name, dimensions) of `metric` in one EMF document: what an alarm must name to watch it."""
    (directive,) = [d for d in document["_aws"]["CloudWatchMetrics"] if metric in (m["Name"] for m in d["Metrics"])]
    (dimension_names,) = directive["Dimensions"]
    return directive["Namespace"], metric, {name: document[name] for name in dimension_names}


def test_a_trigger_publishes_halted_and_a_rearm_clears_it(
    settings: KillSwitchSettings, aws_world: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_world.create_mission_state_machine()
    app = load_app("killswitch")
    capsys.readouterr()

    app.handler({"action": "trigger", "reason": "drill", "requested_by": "alice"}, Context())
    (after_trigger,) = emitted(capsys.readouterr().out, app.HALTED_METRIC)
    app.handler({"action": "rearm", "reason": "drill over", "requested_by": "alice"}, Context())
    (after_rearm,) = emitted(capsys.readouterr().out, app.HALTED_METRIC)

    assert after_trigger[app.HALTED_METRIC] == [1.0]
    assert after_rearm[app.HALTED_METRIC] == [0.0]
    # The alarm in template.yaml names this very metric: namespace, name and dimensions as the kill switch emits it.
    alarm = build_stack().properties("HaltEngagedAlarm")
    watched = (alarm["Namespace"], alarm["MetricName"], {d["Name"]: d["Value"] for d in alarm["Dimensions"]})
    assert metric_identity(after_trigger, app.HALTED_METRIC) == watched
    assert metric_identity(after_rearm, app.HALTED_METRIC) == watched


@pytest.mark.parametrize(("halted", "gauge"), [(True, 1), (False, 0), (None, 1)])
def test_only_a_flag_read_back_clear_reports_the_halt_lifted(halted: bool | None, gauge: int) -> None:
    report = KillSwitchReport(
        operation="rearm",
        operation_id="ks-0",
        requested_by="alice",
        reason="drill over",
        at="2030-01-01T00:00:00+00:00",
        halted=halted,
        steps=[],
    )
    assert report.halt_engaged == gauge
