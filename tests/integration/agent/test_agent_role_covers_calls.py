"""Every DynamoDB and Step Functions call a whole mission makes (scan, plan, interrupt, execution start, resume,
re-scan, report, audit) is granted to AgentRole in template.yaml on that very table: the agent works with its own
role and needs nothing broader."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.integration.agent.conftest import World
from tests.support.agent_world import LambdaContext, scheduled_event
from tests.support.lambda_app import load_app
from tests.support.stack import build_stack

TABLE_LOGICAL_IDS = {
    "aegis-Checkpoints": "CheckpointsTable",
    "aegis-Missions": "MissionsTable",
    "aegis-Audit": "AuditTable",
    "aegis-Control": "ControlTable",
}


@pytest.fixture
def recorded_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    calls: list[tuple[str, str, str]] = []
    original = BaseClient._make_api_call

    def record(client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = {"stepfunctions": "states"}.get(client.meta.service_model.service_name, "")
        service = service or client.meta.service_model.service_name
        if service in {"dynamodb", "states"}:
            tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
            for table in tables or [""]:
                calls.append((service, operation, table))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return calls


def test_a_whole_mission_uses_only_what_agent_role_grants(world: World, recorded_calls: list[Any]) -> None:
    started = load_app("agent").scan_handler(scheduled_event(), LambdaContext())
    payload = json.loads(world.sfn.describe_execution(executionArn=started["execution_arn"])["input"])
    results = [
        {"change_id": c["change_id"], "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"}
        for c in payload["changes"]
    ]
    resumed = load_app("agent").resume_handler(
        {"mission_id": started["mission_id"], "results": results}, LambdaContext()
    )
    assert resumed["status"] == "completed"
    agent_calls = {
        (service, operation, table)
        for service, operation, table in recorded_calls
        if not (service == "states" and operation == "DescribeExecution")  # the test's own read
    }

    grants = {(g.action, g.resource) for g in build_stack().grants("AgentRole")}
    missing = []
    for service, operation, table in sorted(agent_calls):
        if service == "dynamodb":
            needed = (f"dynamodb:{operation}", TABLE_LOGICAL_IDS[table])
        else:
            needed = (f"states:{operation}", "MissionStateMachine")
        if needed not in grants and not (needed[0] == "states:StartExecution" and _start_granted(grants)):
            missing.append(needed)
    assert missing == []
    assert ("dynamodb", "PutItem", "aegis-Missions") in agent_calls
    assert ("states", "StartExecution", "") in agent_calls


def _start_granted(grants: set[tuple[str, str]]) -> bool:
    # The role names the state machine by its predicted ARN (a Sub), which resolves to an external ARN here.
    return any(action == "states:StartExecution" and "stateMachine" in resource for action, resource in grants)
