"""roles.json, generated from template.yaml: every IAM role with what it may do by service, and every scope the ops
API's routes require, with those routes; a template it cannot describe is refused by name, never half-described."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aegis_local.auth0.config import OPS_API_SCOPES
from aegis_local.console.roles import RolesError, api_scopes, roles_document, write_roles
from tests.support.stack import pristine_template


def by_role(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {role["role"]: role for role in document["roles"]}


def actions(role: dict[str, Any], service: str) -> set[str]:
    found: dict[str, Any] = next((s for s in role["services"] if s["service"] == service), {"statements": []})
    return {action for statement in found["statements"] for action in statement["actions"]}


def test_every_iam_role_of_the_template_is_described_with_who_uses_it() -> None:
    template = pristine_template()
    document = roles_document(template)
    declared = {name for name, body in template["Resources"].items() if body["Type"] == "AWS::IAM::Role"}
    roles = by_role(document)
    assert set(roles) == declared
    assert roles["ExecutorRole"]["used_by"] == ["ExecutorFunction"]
    assert roles["UndoRole"]["condition"] == "UndoEnabled"
    assert roles["OpsRole"]["used_by"] == ["OpsFunction"]


def test_a_roles_actions_are_grouped_by_service_as_the_template_grants_them() -> None:
    template = pristine_template()
    roles = by_role(roles_document(template))
    # What the template's AgentRole grants on DynamoDB, read independently of the generator.
    statements = template["Resources"]["AgentRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    granted = {
        action
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if action.startswith("dynamodb:")
    }
    assert actions(roles["AgentRole"], "dynamodb") == granted
    # The agent holds no secret, and its one STS action (reading a member account as its read-only AegisScanRole)
    # shows with its organization condition.
    assert actions(roles["AgentRole"], "secretsmanager") == set()
    assert actions(roles["AgentRole"], "sts") == {"sts:AssumeRole"}
    agent_sts = next(s for s in roles["AgentRole"]["services"] if s["service"] == "sts")
    assert [statement["conditional"] for statement in agent_sts["statements"]] == [True]
    assert all("AegisScanRole" in str(statement["resources"]) for statement in agent_sts["statements"])
    # Resources read as the template names them; a Sub keeps its pattern.
    agent_dynamodb = next(s for s in roles["AgentRole"]["services"] if s["service"] == "dynamodb")
    resources = {resource for statement in agent_dynamodb["statements"] for resource in statement["resources"]}
    assert "MissionsTable" in resources


def test_a_statement_under_a_template_condition_says_which() -> None:
    roles = by_role(roles_document(pristine_template()))
    s3 = next(s for s in roles["AuditChainRole"]["services"] if s["service"] == "s3")
    assert [statement["when"] for statement in s3["statements"]] == ["AuditExportEnabled"]


def test_the_api_scopes_are_exactly_the_ops_scopes_with_their_routes() -> None:
    scopes = {entry["scope"]: entry["routes"] for entry in api_scopes(pristine_template())}
    assert set(scopes) == set(OPS_API_SCOPES)
    assert "POST /kill" in scopes["aegis:killswitch"]
    assert "GET /missions" in scopes["aegis:read"]
    # GET /me needs a valid token and no scope: it opens no axis of the radar.
    assert not any("GET /me" in routes for routes in scopes.values())


def test_an_if_other_than_statement_or_nothing_is_refused_by_name() -> None:
    template = pristine_template()
    statements = template["Resources"]["AgentRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements.append({"Fn::If": ["UndoEnabled", statements[0], statements[1]]})
    with pytest.raises(RolesError, match="only `!If"):
        roles_document(template)


def test_write_roles_writes_the_document(tmp_path: Path) -> None:
    written = write_roles(tmp_path / "dist" / "roles.json")
    document = json.loads(written.read_text(encoding="utf-8"))
    assert document == roles_document(pristine_template())
