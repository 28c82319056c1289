"""The execution the agent starts carries the analyst's notes (`analyst_notes`, change id -> priority and rationale)
when it has any, in the form the validator accepts, and nothing new when it has none."""

from __future__ import annotations

import json
from typing import Any

from aegis_agent.plan import make_plan
from aegis_agent.state import PlanPolicy
from aegis_validator.rules import analyst_note_problems, analyst_notes, parse_envelope
from tests.support.agent_world import FakeScanner, bucket_finding, build_service, ebs_finding, executions, propose

POLICY = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0)
MISSION_ID = "m-0123456789abcdef0123"


def started_input(sfn: Any) -> dict[str, Any]:
    [execution] = executions(sfn)
    return dict(json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]))


def test_the_notes_travel_in_the_execution_input_as_the_validator_reads_them(aws: Any, sfn: Any) -> None:
    findings = [bucket_finding("exports"), ebs_finding()]
    changes = make_plan(findings, POLICY, propose).changes
    notes = {changes[0].change_id: {"priority": 2, "rationale": "Public bucket: fix soon"}}
    arn = build_service(aws, FakeScanner(findings))._start_execution(MISSION_ID, changes, analyst_notes=notes)

    plan = started_input(sfn)
    assert plan == {
        "mission_id": MISSION_ID,
        "changes": [change.model_dump(mode="json") for change in changes],
        "analyst_notes": notes,
    }
    envelope = parse_envelope({"execution_arn": arn, "plan": plan})
    assert analyst_note_problems(envelope) == []
    assert {change_id: note.model_dump() for change_id, note in analyst_notes(envelope).items()} == notes


def test_without_notes_the_input_is_exactly_mission_and_changes(aws: Any, sfn: Any) -> None:
    findings = [bucket_finding("exports")]
    changes = make_plan(findings, POLICY, propose).changes
    build_service(aws, FakeScanner(findings))._start_execution(MISSION_ID, changes, analyst_notes={})
    assert set(started_input(sfn)) == {"mission_id", "changes"}
