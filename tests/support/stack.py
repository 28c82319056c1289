"""`template.yaml` read as a deployed stack would be: intrinsics resolved, policies flattened into grants.

Tests use this to reason about what each role can do on which resource, by logical id.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from aegis_local.aws.template import Resolver, load_template, parameter_values, predicted_deployment

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
STATE_MACHINE_PATH = ROOT / "statemachine" / "mission.asl.json"

# Values for the parameters that have no default (a tenant's own values), shaped like real ones.
EXAMPLE_PARAMETERS: dict[str, str] = {
    "Auth0Issuer": "https://aegis-demo.eu.auth0.com/",
    "ApprovalAuth0ClientId": "aegis-approval-app",
    "ApprovalAuth0ClientSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aegis/approval-AbCdEf",
    "ExecutorAuth0ClientId": "aegis-executor-app",
    "ExecutorAuth0ClientSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aegis/executor-MnOpQr",
    "KillSwitchAuth0ClientId": "aegis-killswitch-m2m",
    "KillSwitchAuth0ClientSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aegis/killswitch-GhIjKl",
    "Auth0Audience": "https://aegis.example.com/api",
    "TokenVaultConnection": "aws-remediation",
    "ApproverSubs": "auth0|approver-1,auth0|approver-2",
    "OpsApiAudience": "https://aegis.example.com/killswitch",
    "RemediationOidcProviderUrl": "https://aegis-demo.eu.auth0.com/",
    "RemediationOidcAudience": "aegis-remediation",
    "RemediationOidcSubjects": "auth0|approver-1,auth0|approver-2",
    "UndoTokenVaultConnection": "aws-remediation-undo",
    "UndoOidcAudience": "aegis-undo",
}
EVENTS_DIR = ROOT / "events"
# Every entry point and the sample events (events/*.json) that exercise it, for `sam local invoke -e`.
EVENTS_BY_FUNCTION: dict[str, tuple[str, ...]] = {
    "AgentScanFunction": (
        "scan-scheduled.json",
        "scan-requested.json",
        "agent-undo-requested.json",
        "agent-account-scan.json",
    ),
    "AgentResumeFunction": ("resume.json",),
    "ValidatorFunction": ("validator-plan.json",),
    "OrgScanFunction": ("orgscan-list.json", "orgscan-summarize.json"),
    "AuditChainFunction": ("audit-stream.json",),
    "NotifierFunction": ("notifier-audit-stream.json",),
    "ApprovalFunction": ("approval-task.json", "approval-continuation.json"),
    "ExecutorFunction": ("executor-task.json",),
    "KillSwitchFunction": (
        "killswitch-trigger.json",
        "killswitch-rearm.json",
        "killswitch-url-kill.json",
        "killswitch-url-rearm.json",
        "killswitch-execution-ended.json",
    ),
    "OpsFunction": ("ops-list-missions.json",),
}
# Executions of the mission state machine are named "<state machine ARN with :execution:>:<name>".
EXECUTIONS = "MissionStateMachine/executions"
UNSCOPED = "*"


@dataclass(frozen=True)
class Grant:
    """One (action, resource) pair an Allow statement of a role's policy grants."""

    role: str
    sid: str
    action: str
    resource: str  # a logical id of this stack, EXECUTIONS, UNSCOPED, or "external:<arn>"
    condition: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def service(self) -> str:
        return self.action.split(":", 1)[0].lower()

    @property
    def verb(self) -> str:
        return self.action.split(":", 1)[1]


@dataclass
class Stack:
    template: dict[str, Any]
    parameters: dict[str, str]
    resolver: Resolver

    def resource(self, logical_id: str) -> dict[str, Any]:
        return self.template["Resources"][logical_id]

    def resources_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for name, body in self.template["Resources"].items() if body.get("Type") == kind}

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's properties with every intrinsic resolved."""
        return self.resolver.resolve(self.resource(logical_id).get("Properties") or {})

    def arn(self, logical_id: str) -> str:
        return self.resolver.attributes[(logical_id, "Arn")]

    def ref(self, logical_id: str) -> str:
        return self.resolver.refs[logical_id]

    def owner(self, resource: str) -> str:
        """The logical id a policy resource designates (or UNSCOPED / EXECUTIONS / external:<arn>)."""
        if resource == "*":
            return UNSCOPED
        for (logical_id, attribute), value in self.resolver.attributes.items():
            if attribute == "Arn" and value == resource:
                return logical_id
            if attribute == "Arn" and resource.startswith(f"{value}/index/"):
                # A DynamoDB table's secondary index: "<TableLogicalId>/index/<IndexName>".
                return f"{logical_id}/index/{resource.removeprefix(f'{value}/index/')}"
            if (
                attribute == "Arn"
                and value.startswith("arn:")
                and ":s3:::" in value
                and resource.startswith(f"{value}/")
            ):
                # Objects of a bucket: "<BucketLogicalId>/<key pattern>".
                return f"{logical_id}/{resource.removeprefix(f'{value}/')}"
            if attribute != "Arn" and value == resource:
                # Another ARN-valued attribute, such as a table's StreamArn: "<LogicalId>.<Attribute>".
                return f"{logical_id}.{attribute}"
        for logical_id, value in self.resolver.refs.items():
            if value == resource and value.startswith("arn:"):
                return logical_id
        state_machine = self.arn("MissionStateMachine")
        if resource == state_machine.replace(":stateMachine:", ":execution:") + ":*":
            return EXECUTIONS
        return f"external:{resource}"

    def policy_documents(self, role: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for policy in self.properties(role).get("Policies", []):
            document = policy["PolicyDocument"]
            yield policy["PolicyName"], json.loads(document) if isinstance(document, str) else document

    def statements(self, role: str) -> Iterator[dict[str, Any]]:
        for _, document in self.policy_documents(role):
            yield from _as_list(document.get("Statement"))

    def grants(self, role: str) -> list[Grant]:
        """Every (action, resource) an Allow statement of `role` grants. Deny statements only narrow."""
        found: list[Grant] = []
        for statement in self.statements(role):
            if statement.get("Effect") != "Allow":
                continue
            sid = statement.get("Sid", "<no Sid>")
            for action in _as_list(statement.get("Action")):
                for resource in _as_list(statement.get("Resource")):
                    found.append(Grant(role, sid, action, self.owner(resource), statement.get("Condition") or {}))
        return found

    def trust_policy(self, role: str) -> dict[str, Any]:
        document = self.properties(role)["AssumeRolePolicyDocument"]
        return json.loads(document) if isinstance(document, str) else document

    def key_policy(self, key: str = "HandoffKey") -> dict[str, Any]:
        return self.properties(key)["KeyPolicy"]

    def function_environment(self, function: str) -> dict[str, str]:
        """The environment a function runs with: the Globals' variables, then its own."""
        shared = self.resolver.resolve(self.template["Globals"]["Function"]["Environment"]["Variables"])
        return {**shared, **self.properties(function)["Environment"]["Variables"]}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@cache
def _template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def pristine_template() -> dict[str, Any]:
    """A fresh deep copy of template.yaml, safe to modify in a test."""
    return copy.deepcopy(_template())


def build_stack(template: dict[str, Any] | None = None, /, **overrides: str) -> Stack:
    """Resolve `template` (default: template.yaml) with EXAMPLE_PARAMETERS plus `overrides`."""
    source = template if template is not None else pristine_template()
    parameters = parameter_values(source, {**EXAMPLE_PARAMETERS, **overrides})
    return Stack(source, parameters, predicted_deployment(source, parameters))


@cache
def _declared() -> Stack:
    return build_stack()


def create_declared_table(dynamodb: Any, logical_id: str, table_name: str) -> Any:
    """Create, through the boto3 DynamoDB resource `dynamodb`, the table template.yaml declares as `logical_id` (its
    keys, secondary indexes and stream) under `table_name`: a test's table is the deployed one, not a copy that can
    drift."""
    properties = _declared().properties(logical_id)
    optional: dict[str, Any] = {
        key: properties[key] for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes") if key in properties
    }
    if "StreamSpecification" in properties:
        optional["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    return dynamodb.create_table(
        TableName=table_name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
        **optional,
    )


def create_declared_tables(dynamodb: Any, tables: Mapping[str, str]) -> dict[str, Any]:
    """`create_declared_table` for each table name -> logical id of `tables` (the mapping RoleEnforcer takes); the
    tables by name."""
    return {name: create_declared_table(dynamodb, logical_id, name) for name, logical_id in tables.items()}
