"""The Lambda handlers: thin wrappers that hand the raw event to the service, never log it, and surface named
errors by name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.missions_keys import mission_id_for_event
from tests.support.agent_world import (
    POWERTOOLS_ENV,
    FakeScanner,
    LambdaContext,
    all_items,
    approved,
    bucket_finding,
    build_service,
    scan_event,
    scheduled_event,
    settings,
)
from tests.support.lambda_app import load_app

MARKER = "do-not-log-this-event-value"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, aws: Any, tables: dict[str, Any], sfn: Any) -> Any:
    for name, value in POWERTOOLS_ENV.items():
        monkeypatch.setenv(name, value)
    module = load_app("agent")
    scanner = FakeScanner([bucket_finding("b")])
    services = iter([build_service(aws, scanner, settings()), build_service(aws, scanner, settings())])
    current: dict[str, Any] = {}

    def service() -> Any:
        # The scan invocation and the resume invocation each get their own service, as two containers would.
        current["service"] = next(services)
        return current["service"]

    monkeypatch.setattr(module, "service", service)
    return module


def test_scan_then_resume_through_the_handlers(app: Any, tables: dict[str, Any], sfn: Any, capsys: Any) -> None:
    started = app.scan_handler(scheduled_event(), LambdaContext())
    assert started["status"] == "awaiting_approval"
    change_ids = [
        c["change_id"]
        for c in json.loads(sfn.describe_execution(executionArn=started["execution_arn"])["input"])["changes"]
    ]
    resumed = app.resume_handler(
        {"mission_id": started["mission_id"], "results": approved(change_ids)}, LambdaContext("other-request")
    )
    assert resumed["status"] == "completed"
    logged = capsys.readouterr().out
    metrics = [json.loads(line) for line in logged.splitlines() if '"_aws"' in line]
    assert {
        name for m in metrics for d in m["_aws"]["CloudWatchMetrics"] for name in (x["Name"] for x in d["Metrics"])
    } >= {
        "MissionsStarted",
        "ChangesProposed",
        "MissionsResumed",
    }


def test_a_malformed_event_raises_the_named_error_and_is_not_logged(
    app: Any, tables: dict[str, Any], capsys: Any
) -> None:
    event = scan_event(regions=[MARKER])
    with pytest.raises(Exception) as raised:
        app.scan_handler(event, LambdaContext())
    assert type(raised.value).__name__ == "Agent.MalformedEvent"
    assert all(all_items(table) == [] for table in tables.values())
    captured = capsys.readouterr()
    assert MARKER not in captured.out + captured.err


def test_the_mission_id_is_derived_from_the_event_id(app: Any) -> None:
    outcome = app.scan_handler(scheduled_event("evt-42"), LambdaContext())
    assert outcome["mission_id"] == mission_id_for_event("evt-42")
    assert outcome["mission_id"].startswith("m-")
    assert len(outcome["mission_id"]) == 22
