"""Undo requests over the seeded vulnerable account, with the real scanner, through the Lambda handler: a change
audited as applied is planned as its undo after a read-only re-scan finds the resource still in the change's
after-state; a resource that moved on since is refused by name. Every call the undo path makes is one AgentRole
grants in template.yaml (the Audit table's ByChange index among them), and the mission writes for the ops API
(listed mission items, latest findings) stay within the Missions grant."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.client import BaseClient

from aegis import missions_keys
from aegis.audit import AuditLog
from aegis.catalogue import Undo, parse_change
from aegis.checks import CHECKS
from aegis.missions_keys import mission_id_for_event
from aegis_agent.missions import MissionStore
from tests.integration.agent.conftest import World
from tests.support.agent_world import REGION, STATE_MACHINE_ARN, LambdaContext, scheduled_event, undo_event
from tests.support.lambda_app import load_app
from tests.support.stack import build_stack

EBS_CHECK = "ec2-ebs-default-encryption-off"
TABLE_LOGICAL_IDS = {
    "aegis-Checkpoints": "CheckpointsTable",
    "aegis-Missions": "MissionsTable",
    "aegis-Audit": "AuditTable",
    "aegis-Control": "ControlTable",
}


@pytest.fixture
def recorded_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(IAM action, the template resource it acts on) of every DynamoDB call made while recording."""
    calls: list[tuple[str, str]] = []
    original = BaseClient._make_api_call

    def record(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb" and "TableName" in params:
            resource = TABLE_LOGICAL_IDS[params["TableName"]]
            if "IndexName" in params:
                resource += f"/index/{params['IndexName']}"
            calls.append((f"dynamodb:{operation}", resource))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return calls


def applied_ebs_change(world: World) -> Any:
    """A scheduled mission whose EBS change the executor applied (the setting turned on, `executor.applied`
    audited as the executor writes it), resumed and completed; the others denied."""
    started = load_app("agent").scan_handler(scheduled_event(), LambdaContext())
    payload = json.loads(world.sfn.describe_execution(executionArn=started["execution_arn"])["input"])
    changes = [parse_change(change) for change in payload["changes"]]
    [ebs] = [c for c in changes if c.check_id == EBS_CHECK]
    world.session.client("ec2", region_name=REGION).enable_ebs_encryption_by_default()
    AuditLog(world.tables["Audit"], actor="executor").append(
        started["mission_id"],
        "executor.applied",
        "applied",
        change_id=ebs.change_id,
        execution_arn=started["execution_arn"],
        digest=ebs.digest,
        approver_sub="auth0|aegis-approver",
    )
    results = [
        {"change_id": c.change_id, "decision": "approved", "outcome": "applied", "reason": ""}
        if c is ebs
        else {"change_id": c.change_id, "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"}
        for c in changes
    ]
    resumed = load_app("agent").resume_handler(
        {"mission_id": started["mission_id"], "results": results}, LambdaContext()
    )
    assert resumed["status"] == "completed"
    return ebs


def test_an_applied_change_still_in_its_after_state_is_planned_as_its_undo_within_agent_role(
    world: World, monkeypatch: pytest.MonkeyPatch, recorded_calls: list[tuple[str, str]]
) -> None:
    monkeypatch.setenv("UNDO_ENABLED", "true")
    original = applied_ebs_change(world)

    outcome = load_app("agent").scan_handler(undo_event(original.change_id, "undo-1"), LambdaContext())

    assert outcome["status"] == "awaiting_approval", outcome
    payload = json.loads(world.sfn.describe_execution(executionArn=outcome["execution_arn"])["input"])
    assert payload["changes"] == [Undo.of(original).model_dump(mode="json")]
    assert outcome["execution_arn"] == STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + (
        f":{mission_id_for_event('undo-1')}"
    )
    grants = {(g.action, g.resource) for g in build_stack().grants("AgentRole")}
    assert ("dynamodb:Query", "AuditTable/index/ByChange") in set(recorded_calls)
    assert sorted(set(recorded_calls) - grants) == []


def test_a_resource_changed_since_is_refused_by_the_real_scan(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNDO_ENABLED", "true")
    original = applied_ebs_change(world)
    # Someone turned EBS encryption by default off again: restoring "off" would hide that the state moved on.
    world.session.client("ec2", region_name=REGION).disable_ebs_encryption_by_default()

    outcome = load_app("agent").scan_handler(undo_event(original.change_id, "undo-2"), LambdaContext())

    assert (outcome["status"], outcome["reason"]) == ("failed", "undo-resource-moved-on")
    mission = MissionStore(world.tables["Missions"]).get(outcome["mission_id"])
    assert (mission["trigger"], mission["undo_refused"], mission["error"]) == (
        "undo",
        "undo-resource-moved-on",
        "Agent.UndoRefused",
    )
    assert "execution_arn" not in mission


def test_the_completed_scan_named_the_latest_findings_of_every_check(world: World) -> None:
    started = load_app("agent").scan_handler(scheduled_event(), LambdaContext())
    results = [
        {"change_id": c["change_id"], "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"}
        for c in json.loads(world.sfn.describe_execution(executionArn=started["execution_arn"])["input"])["changes"]
    ]
    load_app("agent").resume_handler({"mission_id": started["mission_id"], "results": results}, LambdaContext())
    for check_id in CHECKS:
        item = world.tables["Missions"].get_item(Key={"mission_id": missions_keys.latest_findings_key(check_id)})
        assert item["Item"]["latest_mission_id"] == started["mission_id"], check_id
