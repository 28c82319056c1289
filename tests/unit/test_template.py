"""template.yaml proves the Double-Blind split: what each trust domain's role can and cannot do.

Every check is a function returning violations, so the same check runs twice: on template.yaml (no violation
allowed) and on a deliberately broken copy (the violation must be reported). A check that could not fail would show
up as a failing "catches" test.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from aegis.audit import CHANGE_ATTRIBUTE, CHANGE_INDEX
from aegis.catalogue import Direction, declared_actions
from aegis_auth.handoff_table import EXECUTION_ATTRIBUTE, EXECUTION_INDEX
from aegis_killswitch.requests import STATUS_CHANGE_DETAIL_TYPE, STATUS_CHANGE_SOURCE, TERMINAL_STATUSES
from tests.support.stack import EXECUTIONS, ROOT, UNSCOPED, Stack, build_stack, pristine_template

FUNCTION_ROLES = ("AgentRole", "ApprovalRole", "ExecutorRole", "KillSwitchRole", "ValidatorRole")
# Each role that reads a secret reads exactly its own Auth0 client's: the parameter naming that secret's ARN.
# One Auth0 application per trust domain: the approval function's cannot exchange at Token Vault, the executor's
# cannot start CIBA, and neither can halt.
OWN_SECRET: dict[str, str] = {
    "ApprovalRole": "ApprovalAuth0ClientSecretArn",
    "ExecutorRole": "ExecutorAuth0ClientSecretArn",
    "KillSwitchRole": "KillSwitchAuth0ClientSecretArn",
}
SECRET_PARAMETERS = frozenset(OWN_SECRET.values())
# Each remediation role and the direction of the catalogue it grants (aegis.catalogue.declared_actions).
REMEDIATION_ROLES: dict[str, Direction] = {"RemediationRole": "forward", "UndoRole": "undo"}
ALL_ROLES = (*FUNCTION_ROLES, *REMEDIATION_ROLES, "StateMachineRole")

# Anything not provably read-only counts as mutating, so an unfamiliar verb (Invoke, Pass, Run ...) is caught too.
READ_ONLY_VERB_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Lookup", "Search", "Head")
# Services whose reads hand out a secret or a credential; checked separately from mutation.
CREDENTIAL_SERVICES = frozenset({"secretsmanager", "ssm", "sts"})
# The encryption context every handoff is sealed under (aegis_auth.handoff.encryption_context).
HANDOFF_CONTEXT_KEYS = ("execution_arn", "change_digest")
KMS_CRYPTO_ACTIONS = frozenset(
    {
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DeriveSharedSecret",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateMac",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:Sign",
        "kms:Verify",
        "kms:VerifyMac",
    }
)


def is_read_only(action: str) -> bool:
    return action.split(":", 1)[1].startswith(READ_ONLY_VERB_PREFIXES)


def _telemetry(*log_groups: str) -> set[tuple[str, str]]:
    writes = {("xray:PutTraceSegments", UNSCOPED), ("xray:PutTelemetryRecords", UNSCOPED)}
    for group in log_groups:
        writes |= {("logs:CreateLogStream", group), ("logs:PutLogEvents", group)}
    return writes


# The only non-read-only (action, resource) pairs each role may hold: its own state, nothing of the account.
MAY_WRITE: dict[str, set[tuple[str, str]]] = {
    "AgentRole": {
        *(
            (f"dynamodb:{verb}", "CheckpointsTable")
            for verb in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
        ),
        ("dynamodb:PutItem", "MissionsTable"),
        ("dynamodb:UpdateItem", "MissionsTable"),
        ("dynamodb:PutItem", "AuditTable"),
        ("states:StartExecution", "MissionStateMachine"),
        *_telemetry("AgentScanLogGroup", "AgentResumeLogGroup"),
    },
    "ApprovalRole": {
        ("dynamodb:PutItem", "HandoffTable"),
        ("dynamodb:PutItem", "ContinuationsTable"),
        ("dynamodb:UpdateItem", "ContinuationsTable"),
        ("dynamodb:PutItem", "AuditTable"),
        ("states:SendTaskSuccess", UNSCOPED),
        ("states:SendTaskFailure", UNSCOPED),
        ("states:SendTaskHeartbeat", UNSCOPED),
        ("lambda:InvokeFunction", "ApprovalFunction"),
        *_telemetry("ApprovalLogGroup"),
    },
    "ExecutorRole": {
        ("dynamodb:DeleteItem", "HandoffTable"),
        *((f"dynamodb:{verb}", "IdempotencyTable") for verb in ("PutItem", "UpdateItem", "DeleteItem")),
        ("dynamodb:PutItem", "AuditTable"),
        *_telemetry("ExecutorLogGroup"),
    },
    "KillSwitchRole": {
        *((f"dynamodb:{verb}", "ControlTable") for verb in ("PutItem", "UpdateItem", "DeleteItem")),
        ("dynamodb:PutItem", "AuditTable"),
        ("events:DisableRule", "ScheduledScanRule"),
        ("events:EnableRule", "ScheduledScanRule"),
        ("events:DisableRule", "ScanRequestRule"),
        ("events:EnableRule", "ScanRequestRule"),
        ("states:StopExecution", EXECUTIONS),
        ("states:SendTaskFailure", UNSCOPED),
        *((f"iam:{verb}RolePolicy", role) for verb in ("Put", "Delete") for role in ("RemediationRole", "UndoRole")),
        # Deletes unconsumed handoffs (BatchWriteItem returns no item; HANDOFF_ACCESS below is the whole story).
        ("dynamodb:BatchWriteItem", "HandoffTable"),
        *_telemetry("KillSwitchLogGroup"),
    },
    # The validator writes only its own verdicts to the audit trail.
    "ValidatorRole": {("dynamodb:PutItem", "AuditTable"), *_telemetry("ValidatorLogGroup")},
    "StateMachineRole": {
        ("lambda:InvokeFunction", "ValidatorFunction"),
        ("lambda:InvokeFunction", "ApprovalFunction"),
        ("lambda:InvokeFunction", "ExecutorFunction"),
        ("lambda:InvokeFunction", "AgentResumeFunction"),
        *(
            (f"logs:{verb}", UNSCOPED)
            for verb in ("CreateLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery", "PutResourcePolicy")
        ),
        ("xray:PutTraceSegments", UNSCOPED),
        ("xray:PutTelemetryRecords", UNSCOPED),
    },
}


@dataclass(frozen=True)
class Unscoped:
    """Why a statement may use Resource "*"."""

    reason: str
    # True when AWS offers no resource-level permission for these actions; verified against the IAM reference.
    nothing_narrower_exists: bool


_NO_RESOURCE_LEVEL = "the service accepts no resource-level permissions for these actions"
UNSCOPED_STATEMENTS: dict[tuple[str, str], Unscoped] = {
    ("AgentRole", "ReadOnlyInventory"): Unscoped(
        "the scanner inventories every resource of the account; every action is read-only (tested)", False
    ),
    ("ApprovalRole", "TaskCallbacks"): Unscoped(f"task tokens are not resources: {_NO_RESOURCE_LEVEL}", True),
    ("KillSwitchRole", "FailWaitingApprovals"): Unscoped(f"task tokens are not resources: {_NO_RESOURCE_LEVEL}", True),
    ("StateMachineRole", "DeliverLogs"): Unscoped(f"CloudWatch Logs vended delivery: {_NO_RESOURCE_LEVEL}", True),
    **{
        (role, sid): Unscoped(
            "every session is narrowed to one change's actions and resource by its session policy", False
        )
        for role, sid in (
            ("RemediationRole", "ReadDeclaredByTheCatalogue"),
            ("RemediationRole", "ApplyDeclaredByTheCatalogue"),
            ("UndoRole", "ReadDeclaredByTheCatalogue"),
            ("UndoRole", "UndoDeclaredByTheCatalogue"),
        )
    },
    **{
        (role, sid): Unscoped(
            "only customer-managed policies of this account (iam:PolicyARN condition, tested); the entity is pinned "
            "by the session policy",
            False,
        )
        for role, sid in (
            ("RemediationRole", "DetachCustomerManagedPoliciesOnly"),
            ("UndoRole", "AttachCustomerManagedPoliciesOnly"),
        )
    },
    ("RemediationRole", "PassRoleToFlowLogsOnly"): Unscoped(
        "passable only to vpc-flow-logs.amazonaws.com (iam:PassedToService condition, tested)", False
    ),
    **{(role, "Tracing"): Unscoped(f"X-Ray: {_NO_RESOURCE_LEVEL}", True) for role in ALL_ROLES},
}
# Actions written with a wildcard ("ec2:Describe*") hide what a role can do; none is allowed, and an entry here
# would need a reason.
WILDCARD_ACTIONS: dict[tuple[str, str], str] = {}


@cache
def iam_reference() -> dict[str, Any]:
    """The IAM service authorization reference that cfn-lint ships (actions and their resource types)."""
    spec = importlib.util.find_spec("cfnlint")
    if spec is None or spec.origin is None:
        pytest.fail("cfn-lint (installed with moto[server]) is needed for its IAM action reference")
    path = Path(spec.origin).parent / "data" / "AdditionalSpecs" / "Policies.json"
    return json.loads(path.read_text(encoding="utf-8"))


def resource_types_of(action: str) -> list[str] | None:
    """Resource types `action` can be scoped to ([] = none), or None if IAM knows no such action."""
    service, _, name = action.partition(":")
    actions = iam_reference().get(service.lower(), {}).get("Actions", {})
    entry = actions.get(name.lower())
    return None if entry is None else list(entry.get("Resources", []))


@pytest.fixture(scope="module")
def stack() -> Stack:
    return build_stack()


# ---------------------------------------------------------------------------------------------------------------------
# The checks (each returns what is wrong)
# ---------------------------------------------------------------------------------------------------------------------


def writes_beyond_domain(stack: Stack, role: str) -> list[str]:
    allowed = MAY_WRITE[role]
    return [
        f"{g.role}/{g.sid}: {g.action} on {g.resource}"
        for g in stack.grants(role)
        if not is_read_only(g.action) and (g.action, g.resource) not in allowed
    ]


def agent_credential_reach(stack: Stack) -> list[str]:
    found = []
    for grant in stack.grants("AgentRole"):
        if grant.service in CREDENTIAL_SERVICES:
            found.append(f"{grant.action}: the agent may not reach a secret or a credential service")
        if grant.action in KMS_CRYPTO_ACTIONS or grant.action.lower() == "kms:*":
            found.append(f"{grant.action}: the agent may not use any KMS key")
        if _is_handoff_side(grant.resource) or (grant.service == "dynamodb" and grant.resource == UNSCOPED):
            found.append(f"{grant.action} on {grant.resource}: the agent may not reach the hand-off tables")
        if grant.action in {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}:
            found.append(f"{grant.action}: the agent could forge an approval decision")
        if grant.service == "lambda":
            found.append(f"{grant.action}: the agent may not invoke the approval or executor functions")
    for statement in stack.key_policy()["Statement"]:
        if _principal_owner(stack, statement) == "AgentRole":
            found.append(f"HandoffKey statement {statement.get('Sid')} names the agent")
    return found


# The validator reads the audit records of one change (an undo must name an applied one) and appends its verdicts.
VALIDATOR_DATA_ACCESS = frozenset(
    {("dynamodb:Query", f"AuditTable/index/{CHANGE_INDEX}"), ("dynamodb:PutItem", "AuditTable")}
)


def validator_reach(stack: Stack) -> list[str]:
    """The validator holds no secret, key, hand-off, decision or function, and no action on the account: its data
    access is exactly VALIDATOR_DATA_ACCESS."""
    found = []
    for grant in stack.grants("ValidatorRole"):
        if grant.service in CREDENTIAL_SERVICES or grant.service == "kms":
            found.append(f"{grant.action}: the validator may not reach a secret, a credential or a key")
        elif grant.service == "dynamodb" and (grant.action, grant.resource) not in VALIDATOR_DATA_ACCESS:
            found.append(f"{grant.action} on {grant.resource}: beyond the change records and its own verdicts")
        elif grant.service not in {"dynamodb", "logs", "xray"}:
            found.append(f"{grant.action}: the validator only reads and records")
    granted = {(g.action, g.resource) for g in stack.grants("ValidatorRole")}
    found += [
        f"ValidatorRole lacks {action} on {resource}" for action, resource in sorted(VALIDATOR_DATA_ACCESS - granted)
    ]
    for statement in stack.key_policy()["Statement"]:
        if _principal_owner(stack, statement) == "ValidatorRole":
            found.append(f"HandoffKey statement {statement.get('Sid')} names the validator")
    return found


def audit_index_problems(stack: Stack) -> list[str]:
    """The index the validator queries (aegis.audit.CHANGE_INDEX) exists, keyed by change id then time."""
    indexes = {i["IndexName"]: i for i in stack.properties("AuditTable").get("GlobalSecondaryIndexes", [])}
    index = indexes.get(CHANGE_INDEX)
    if index is None:
        return [f"AuditTable has no {CHANGE_INDEX} index"]
    keys = [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
    found = []
    if keys != [(CHANGE_ATTRIBUTE, "HASH"), ("seq", "RANGE")]:
        found.append(f"{CHANGE_INDEX} is keyed {keys}")
    if index["Projection"] != {"ProjectionType": "ALL"}:
        found.append(f"{CHANGE_INDEX} does not project the records' actor, action, outcome and details")
    return found


def credential_readers(stack: Stack) -> list[str]:
    """Only the approval, executor and kill-switch roles read a secret, each exactly its own Auth0 client's: the
    approval application's for approval and executor, the kill switch's M2M application's for the kill switch."""
    allowed = {
        (role, "secretsmanager:GetSecretValue", f"external:{stack.parameters[parameter]}")
        for role, parameter in OWN_SECRET.items()
    }
    found = [
        f"{g.role}/{g.sid}: {g.action} on {g.resource}"
        for role in ALL_ROLES
        for g in stack.grants(role)
        if g.service in CREDENTIAL_SERVICES and (g.role, g.action, g.resource) not in allowed
    ]
    granted = {(g.role, g.action, g.resource) for role in OWN_SECRET for g in stack.grants(role)}
    found += [f"{role} cannot read its own secret {resource}" for role, _, resource in sorted(allowed - granted)]
    return found


def catalogue_actions_outside_remediation(stack: Stack, role: str) -> list[str]:
    mutating_catalogue = {action for action in declared_actions() if not is_read_only(action)}
    return [f"{g.role}: {g.action} is a remediation" for g in stack.grants(role) if g.action in mutating_catalogue]


def unjustified_wildcards(stack: Stack, role: str) -> list[str]:
    found = []
    secrets = {stack.parameters[parameter] for parameter in SECRET_PARAMETERS}
    for statement in stack.statements(role):
        sid = statement.get("Sid", "<no Sid>")
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{role}/{sid}: NotAction/NotResource grants everything not listed")
        for action in _as_list(statement.get("Action")):
            if ("*" in action or "?" in action) and (role, action) not in WILDCARD_ACTIONS:
                found.append(f"{role}/{sid}: wildcard action {action}")
        resources = _as_list(statement.get("Resource"))
        if "*" in resources:
            unscoped = UNSCOPED_STATEMENTS.get((role, sid))
            if unscoped is None:
                found.append(f"{role}/{sid}: Resource '*' without a listed reason")
            elif unscoped.nothing_narrower_exists:
                scopable = [a for a in _as_list(statement.get("Action")) if resource_types_of(a)]
                if scopable:
                    found.append(f"{role}/{sid}: {scopable} can be scoped to a resource, so '*' is not needed")
        for resource in resources:
            owner = stack.owner(resource)
            if owner.startswith("external:") and resource not in secrets and resource != _CATALOGUE_TRAILS:
                found.append(
                    f"{role}/{sid}: {resource} is neither a resource of this stack, an Auth0 secret nor a trail the "
                    "catalogue creates"
                )
    return found


def unknown_actions(stack: Stack, role: str) -> list[str]:
    return [
        f"{g.role}/{g.sid}: {g.action} is not an IAM action"
        for g in stack.grants(role)
        if "*" not in g.action and resource_types_of(g.action) is None
    ]


# The conditions each remediation action needs beyond its session policy, wherever IAM offers one.
_CUSTOMER_MANAGED = {"ArnLike": {"iam:PolicyARN": "arn:aws:iam::123456789012:policy/*"}}
_CATALOGUE_TRAILS = "arn:aws:cloudtrail:*:123456789012:trail/aegis-*"
REMEDIATION_CONDITIONS: dict[str, dict[str, Any]] = {
    "iam:PassRole": {"StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}},
    **{
        f"iam:{verb}{entity}Policy": _CUSTOMER_MANAGED
        for verb in ("Attach", "Detach")
        for entity in ("Group", "Role", "User")
    },
}
REMEDIATION_RESOURCES: dict[str, str] = {
    f"cloudtrail:{verb}": f"external:{_CATALOGUE_TRAILS}"
    for verb in ("CreateTrail", "StartLogging", "StopLogging", "DeleteTrail")
}


def remediation_role_problems(stack: Stack, role: str = "RemediationRole") -> list[str]:
    found = []
    granted = {g.action for g in stack.grants(role)}
    declared = set(declared_actions(REMEDIATION_ROLES[role]))
    if granted != declared:
        found.append(
            f"{role} grants {sorted(granted - declared)} beyond the catalogue's {REMEDIATION_ROLES[role]} actions "
            f"and lacks {sorted(declared - granted)}"
        )
    for grant in stack.grants(role):
        wanted = REMEDIATION_CONDITIONS.get(grant.action, {})
        if grant.condition != wanted:
            found.append(f"{role}: {grant.action} has condition {dict(grant.condition)}, expected {wanted}")
        resource = REMEDIATION_RESOURCES.get(grant.action, UNSCOPED)
        if grant.resource != resource:
            found.append(f"{role}: {grant.action} on {grant.resource}, expected {resource}")
    properties = stack.properties(role)
    if properties.get("MaxSessionDuration") != 3600:
        found.append(f"{role} MaxSessionDuration is {properties.get('MaxSessionDuration')}, not 3600")
    for forbidden in ("ManagedPolicyArns", "PermissionsBoundary", "RoleName"):
        if forbidden in properties:
            found.append(f"{role} sets {forbidden}")
    found += web_identity_trust_problems(stack, role)
    return found


def web_identity_trust_problems(stack: Stack, role: str = "RemediationRole") -> list[str]:
    """Exactly one statement: web identity from the OIDC provider, for an approver's subject and the role's own
    audience (a forward token must never assume UndoRole)."""
    trust = stack.trust_policy(role)
    statements = _as_list(trust.get("Statement"))
    host = stack.parameters["RemediationOidcProviderUrl"].removeprefix("https://")
    existing = stack.parameters["ExistingRemediationOidcProviderArn"]
    provider = existing or stack.ref("RemediationOidcProvider")
    audience = stack.parameters["RemediationOidcAudience" if role == "RemediationRole" else "UndoOidcAudience"]
    expected = {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {
                f"{host}:aud": audience,
                f"{host}:sub": stack.parameters["RemediationOidcSubjects"].split(","),
            }
        },
    }
    if len(statements) != 1:
        return [f"{role} trust has {len(statements)} statements; exactly one (web identity) is allowed"]
    actual = {key: value for key, value in statements[0].items() if key != "Sid"}
    if isinstance(actual.get("Action"), list) and len(actual["Action"]) == 1:
        actual["Action"] = actual["Action"][0]
    return [] if actual == expected else [f"{role} trust is {actual}, expected {expected}"]


def key_policy_problems(stack: Stack) -> list[str]:
    found = []
    crypto: set[tuple[str, str]] = set()
    for statement in stack.key_policy()["Statement"]:
        sid = statement.get("Sid", "<no Sid>")
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement or "NotPrincipal" in statement:
            found.append(f"HandoffKey/{sid}: NotAction/NotPrincipal")
        principal = _principal_owner(stack, statement)
        for action in _as_list(statement.get("Action")):
            if "*" in action:
                found.append(f"HandoffKey/{sid}: wildcard action {action} (would include Decrypt)")
            elif action in KMS_CRYPTO_ACTIONS:
                crypto.add((principal, action))
                required = statement.get("Condition", {}).get("Null", {})
                for key in HANDOFF_CONTEXT_KEYS:
                    if required.get(f"kms:EncryptionContext:{key}") != "false":
                        found.append(f"HandoffKey/{sid}: {action} without {key} in the encryption context")
    # Envelope encryption (aegis_auth.handoff): the approval side only ever generates data keys.
    expected = {("ApprovalRole", "kms:GenerateDataKey"), ("ExecutorRole", "kms:Decrypt")}
    if crypto != expected:
        found.append(f"HandoffKey cryptographic grants are {sorted(crypto)}, expected exactly {sorted(expected)}")
    if stack.properties("HandoffKey").get("EnableKeyRotation") is not True:
        found.append("HandoffKey rotation is off")
    return found


def _principal_owner(stack: Stack, statement: dict[str, Any]) -> str:
    principal = statement.get("Principal", {})
    aws = principal.get("AWS") if isinstance(principal, dict) else principal
    if aws == f"arn:aws:iam::{stack.resolver.pseudo['AWS::AccountId']}:root":
        return "root"
    return stack.owner(aws) if isinstance(aws, str) else f"unexpected principal {principal}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# The hand-off tables, exactly: role -> {(action, resource): condition}. A role not named has no grant on them at
# all; a grant not listed (a read, another write, a dropped or loosened condition) is a violation.
# - the approval side writes: it seals handoffs (never reads one back) and keeps its continuations, which carry
#   task tokens and auth_req_ids, in a table only it can reach;
# - the executor only consumes: DeleteItem returning the deleted item, and no call that only reads;
# - the kill switch purges what nobody consumed: it finds handoffs through the keys-only index and deletes them
#   with BatchWriteItem, which returns no item (a DeleteItem could read one back through
#   ReturnValuesOnConditionCheckFailure, which no IAM condition key governs), so it never holds a ciphertext.
HANDOFF_INDEX = f"HandoffTable/index/{EXECUTION_INDEX}"
HANDOFF_ACCESS: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
    "ApprovalRole": {
        ("dynamodb:PutItem", "HandoffTable"): {},
        ("dynamodb:PutItem", "ContinuationsTable"): {},
        ("dynamodb:UpdateItem", "ContinuationsTable"): {},
    },
    "ExecutorRole": {
        ("dynamodb:DeleteItem", "HandoffTable"): {"StringEquals": {"dynamodb:ReturnValues": "ALL_OLD"}},
    },
    "KillSwitchRole": {
        ("dynamodb:Query", HANDOFF_INDEX): {},
        ("dynamodb:Scan", HANDOFF_INDEX): {},
        ("dynamodb:BatchWriteItem", "HandoffTable"): {},
    },
}


def _is_handoff_side(resource: str) -> bool:
    return resource in {"HandoffTable", "ContinuationsTable"} or resource.startswith(
        ("HandoffTable/", "ContinuationsTable/")
    )


def handoff_access_problems(stack: Stack) -> list[str]:
    found = []
    for role in ALL_ROLES:
        if role not in stack.template["Resources"]:
            continue
        granted: dict[tuple[str, str], dict[str, Any]] = {}
        for grant in stack.grants(role):
            reaches = _is_handoff_side(grant.resource) or (
                grant.resource == UNSCOPED and grant.service in {"dynamodb", "*"}
            )
            if reaches:
                granted[(grant.action, grant.resource)] = dict(grant.condition)
        expected = HANDOFF_ACCESS.get(role, {})
        for key in sorted(set(granted) | set(expected)):
            if key not in expected:
                found.append(f"{role}: {key[0]} on {key[1]} is not part of the hand-off")
            elif key not in granted:
                found.append(f"{role}: lacks {key[0]} on {key[1]}")
            elif granted[key] != expected[key]:
                found.append(f"{role}: {key[0]} on {key[1]} has condition {granted[key]}, expected {expected[key]}")
    table = stack.properties("HandoffTable")
    indexes = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    wanted_index = {
        "IndexName": EXECUTION_INDEX,
        "KeySchema": [{"AttributeName": EXECUTION_ATTRIBUTE, "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    if indexes != {EXECUTION_INDEX: wanted_index}:
        found.append(f"HandoffTable indexes are {indexes}, expected only {wanted_index}")
    if "LocalSecondaryIndexes" in table:
        # A local index fetches unprojected attributes from the table, keys-only or not.
        found.append("HandoffTable has a local secondary index")
    return found


def mission_ended_rule_problems(stack: Stack) -> list[str]:
    """Every terminal status of the mission state machine, and only that state machine, reaches the kill switch."""
    found = []
    rule = stack.properties("MissionEndedRule")
    expected_pattern = {
        "source": [STATUS_CHANGE_SOURCE],
        "detail-type": [STATUS_CHANGE_DETAIL_TYPE],
        "detail": {"status": list(TERMINAL_STATUSES), "stateMachineArn": [stack.arn("MissionStateMachine")]},
    }
    if rule.get("EventPattern") != expected_pattern:
        found.append(f"MissionEndedRule matches {rule.get('EventPattern')}, expected {expected_pattern}")
    if rule.get("State") != "ENABLED":
        found.append("MissionEndedRule is not enabled")
    if [target["Arn"] for target in rule.get("Targets", [])] != [stack.arn("KillSwitchFunction")]:
        found.append(f"MissionEndedRule targets {rule.get('Targets')}, not the kill switch alone")
    if not any(
        stack.properties(permission).get("SourceArn") == stack.arn("MissionEndedRule")
        and stack.properties(permission).get("FunctionName") == stack.ref("KillSwitchFunction")
        and stack.properties(permission).get("Principal") == "events.amazonaws.com"
        for permission in stack.resources_of_type("AWS::Lambda::Permission")
    ):
        found.append("EventBridge may not invoke the kill switch for MissionEndedRule")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# The matrix on template.yaml
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(MAY_WRITE))
def test_each_role_writes_only_its_own_state(stack: Stack, role: str) -> None:
    assert writes_beyond_domain(stack, role) == []


def test_agent_cannot_reach_a_credential_the_handoff_table_or_a_decision(stack: Stack) -> None:
    assert agent_credential_reach(stack) == []


def test_validator_reads_only_change_records_and_appends_only_its_verdicts(stack: Stack) -> None:
    assert validator_reach(stack) == []
    assert audit_index_problems(stack) == []


def test_the_hand_off_tables_grant_exactly_seal_consume_and_purge(stack: Stack) -> None:
    assert handoff_access_problems(stack) == []


def test_every_ended_mission_execution_reaches_the_purge(stack: Stack) -> None:
    assert mission_ended_rule_problems(stack) == []


def test_the_kill_switch_halts_undo_role_exactly_as_remediation_role(stack: Stack) -> None:
    def iam_grants(on: Stack, role: str) -> set[str]:
        return {g.action for g in on.grants("KillSwitchRole") if g.resource == role}

    assert iam_grants(stack, "UndoRole") == iam_grants(stack, "RemediationRole") != set()
    environment = _environment(stack, "KillSwitchFunction")
    assert environment["REMEDIATION_ROLE_NAME"] == stack.ref("RemediationRole")
    assert environment["UNDO_ROLE_NAME"] == stack.ref("UndoRole")
    # Without an undo connection there is no UndoRole: nothing to halt, and the setting says so.
    without_undo = build_stack(UndoTokenVaultConnection="", UndoOidcAudience="")
    assert without_undo.resolver.condition("UndoEnabled") is False
    assert _environment(without_undo, "KillSwitchFunction")["UNDO_ROLE_NAME"] == ""
    assert iam_grants(without_undo, "RemediationRole") == iam_grants(stack, "RemediationRole")
    assert {g.resource for g in without_undo.grants("KillSwitchRole") if g.service == "iam"} == {"RemediationRole"}


def test_each_credential_side_role_reads_exactly_its_own_auth0_secret(stack: Stack) -> None:
    assert len({stack.parameters[parameter] for parameter in SECRET_PARAMETERS}) == len(SECRET_PARAMETERS)
    assert credential_readers(stack) == []
    readers = {g.role for role in ALL_ROLES for g in stack.grants(role) if g.service == "secretsmanager"}
    assert readers == set(OWN_SECRET)


@pytest.mark.parametrize("role", FUNCTION_ROLES)
def test_only_remediation_role_holds_remediation_actions(stack: Stack, role: str) -> None:
    assert catalogue_actions_outside_remediation(stack, role) == []


@pytest.mark.parametrize("role", ALL_ROLES)
def test_wildcards_only_where_listed_with_a_reason(stack: Stack, role: str) -> None:
    assert unjustified_wildcards(stack, role) == []


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_granted_action_exists_in_iam(stack: Stack, role: str) -> None:
    assert unknown_actions(stack, role) == []


@pytest.mark.parametrize("role", sorted(REMEDIATION_ROLES))
def test_remediation_roles_grant_exactly_their_catalogue_direction_and_trust_only_approvers(
    stack: Stack, role: str
) -> None:
    assert remediation_role_problems(stack, role) == []


def test_remediation_role_trusts_an_existing_provider_when_one_is_given() -> None:
    existing = "arn:aws:iam::123456789012:oidc-provider/aegis-demo.eu.auth0.com/"
    stack = build_stack(ExistingRemediationOidcProviderArn=existing)
    assert web_identity_trust_problems(stack) == []
    assert web_identity_trust_problems(stack, "UndoRole") == []
    assert stack.resolver.condition("CreateRemediationOidcProvider") is False
    assert stack.trust_policy("RemediationRole")["Statement"][0]["Principal"] == {"Federated": existing}


def test_the_created_oidc_provider_accepts_exactly_the_remediation_audience(stack: Stack) -> None:
    provider = stack.properties("RemediationOidcProvider")
    assert provider["Url"] == stack.parameters["RemediationOidcProviderUrl"]
    assert provider["ClientIdList"] == [
        stack.parameters["RemediationOidcAudience"],
        stack.parameters["UndoOidcAudience"],
    ]
    assert "ThumbprintList" not in provider  # empty parameter -> AWS::NoValue
    with_thumbprint = build_stack(RemediationOidcThumbprint="a" * 40)
    assert with_thumbprint.properties("RemediationOidcProvider")["ThumbprintList"] == ["a" * 40]


def test_handoff_key_lets_only_approval_seal_and_only_executor_open(stack: Stack) -> None:
    assert key_policy_problems(stack) == []


def test_no_role_gets_kms_from_iam(stack: Stack) -> None:
    """KMS use of the handoff key comes from its key policy only; an IAM grant would bypass that proof."""
    assert [g for role in ALL_ROLES for g in stack.grants(role) if g.action in KMS_CRYPTO_ACTIONS] == []


def test_function_roles_are_assumable_only_by_lambda_and_the_state_machine_role_only_by_step_functions(
    stack: Stack,
) -> None:
    for role in FUNCTION_ROLES:
        statements = stack.trust_policy(role)["Statement"]
        assert [(s["Effect"], s["Principal"], s["Action"]) for s in statements] == [
            ("Allow", {"Service": "lambda.amazonaws.com"}, "sts:AssumeRole")
        ], role
    (statement,) = stack.trust_policy("StateMachineRole")["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_every_permission_is_in_a_role_the_matrix_reads(stack: Stack) -> None:
    """No managed policies, SAM policy templates or separate policy resources that would escape the matrix."""
    roles = stack.resources_of_type("AWS::IAM::Role")
    assert set(roles) == set(ALL_ROLES)
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"):
        assert stack.resources_of_type(kind) == {}, kind
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], name
    for name, function in stack.resources_of_type("AWS::Serverless::Function").items():
        assert "Policies" not in function["Properties"], name
        assert "Role" in function["Properties"], name


def test_kill_switch_can_do_each_step_of_a_halt(stack: Stack) -> None:
    granted = {(g.action, g.resource) for g in stack.grants("KillSwitchRole")}
    assert {
        ("dynamodb:PutItem", "ControlTable"),
        ("events:DisableRule", "ScheduledScanRule"),
        ("events:DisableRule", "ScanRequestRule"),
        ("states:ListExecutions", "MissionStateMachine"),
        ("states:GetExecutionHistory", EXECUTIONS),
        ("states:StopExecution", EXECUTIONS),
        ("states:SendTaskFailure", UNSCOPED),
        # AegisHalted and AegisDenyOlderSessions on both remediation roles: attached on trigger (the cutoff read
        # back first), AegisHalted deleted on re-arm.
        *(
            (f"iam:{verb}RolePolicy", role)
            for verb in ("Put", "Get", "Delete")
            for role in ("RemediationRole", "UndoRole")
        ),
        # Every unconsumed handoff: found through the keys-only index, deleted without being read.
        ("dynamodb:Scan", HANDOFF_INDEX),
        ("dynamodb:Query", HANDOFF_INDEX),
        ("dynamodb:BatchWriteItem", "HandoffTable"),
        ("secretsmanager:GetSecretValue", f"external:{stack.parameters['KillSwitchAuth0ClientSecretArn']}"),
    } <= granted


def kill_switch_calls_not_granted(stack: Stack) -> list[str]:
    """Every IAM, EventBridge and Step Functions call in the kill switch's code must be granted to its role (IAM
    calls on each remediation role the stack has: the kill switch halts UndoRole exactly as RemediationRole)."""
    operations = called_operations(sorted(KILLSWITCH_CODE.glob("*.py")), KILLSWITCH_SERVICES)
    granted = {(g.action, g.resource) for g in stack.grants("KillSwitchRole")}
    halted_roles = [role for role in REMEDIATION_ROLES if role in stack.template["Resources"]]
    found = []
    for service, operation in sorted(operations):
        action = f"{IAM_PREFIX.get(service, service)}:{operation}"
        if service == "iam":
            found += [
                f"the kill switch calls {action}, which KillSwitchRole does not grant on {role}"
                for role in halted_roles
                if (action, role) not in granted
            ]
        elif action not in {granted_action for granted_action, _ in granted}:
            found.append(f"the kill switch calls {action}, which KillSwitchRole does not grant")
    return found


def test_kill_switch_role_grants_every_call_its_code_makes(stack: Stack) -> None:
    operations = called_operations(sorted(KILLSWITCH_CODE.glob("*.py")), KILLSWITCH_SERVICES)
    assert {("iam", "PutRolePolicy"), ("iam", "DeleteRolePolicy"), ("stepfunctions", "StopExecution")} <= operations
    assert kill_switch_calls_not_granted(stack) == []


def test_a_call_the_kill_switch_makes_but_its_role_lacks_is_caught() -> None:
    template = pristine_template()
    statements = template["Resources"]["KillSwitchRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    revoke = next(s for s in statements if s["Sid"] == "RevokeRemediationSessions")
    revoke["Action"].remove("iam:DeleteRolePolicy")
    assert kill_switch_calls_not_granted(build_stack(template)) == [
        "the kill switch calls iam:DeleteRolePolicy, which KillSwitchRole does not grant on RemediationRole",
        "the kill switch calls iam:DeleteRolePolicy, which KillSwitchRole does not grant on UndoRole",
    ]


def test_each_half_can_do_its_own_job(stack: Stack) -> None:
    approval_secret = f"external:{stack.parameters['ApprovalAuth0ClientSecretArn']}"
    executor_secret = f"external:{stack.parameters['ExecutorAuth0ClientSecretArn']}"

    def can(role: str) -> set[tuple[str, str]]:
        return {(g.action, g.resource) for g in stack.grants(role)}

    assert {
        ("states:StartExecution", "MissionStateMachine"),
        ("dynamodb:PutItem", "CheckpointsTable"),
        ("dynamodb:Query", "CheckpointsTable"),
        ("dynamodb:GetItem", "ControlTable"),
        ("ec2:DescribeSecurityGroupRules", UNSCOPED),
    } <= can("AgentRole")
    assert {
        ("secretsmanager:GetSecretValue", approval_secret),
        ("dynamodb:PutItem", "HandoffTable"),
        ("states:SendTaskSuccess", UNSCOPED),
        ("lambda:InvokeFunction", "ApprovalFunction"),
    } <= can("ApprovalRole")
    assert {
        ("secretsmanager:GetSecretValue", executor_secret),
        ("dynamodb:DeleteItem", "HandoffTable"),
        ("dynamodb:PutItem", "IdempotencyTable"),
    } <= can("ExecutorRole")


# ---------------------------------------------------------------------------------------------------------------------
# Each check catches the break it exists for
# ---------------------------------------------------------------------------------------------------------------------


def _add_statement(role: str, statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(statement)

    return mutate


def _drop_statement(role: str, sid: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        statements[:] = [s for s in statements if s.get("Sid") != sid]

    return mutate


def _handoff_key_statement(statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        template["Resources"]["HandoffKey"]["Properties"]["KeyPolicy"]["Statement"].append(statement)

    return mutate


def _set_trust_condition(template: dict[str, Any]) -> None:
    sub = template["Resources"]["RemediationRole"]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]
    sub[0] = sub[0].replace('"StringEquals"', '"StringLike"')


def _role_statement(template: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return next(s for s in statements if s.get("Sid") == sid)


def _update_statement(role: str, sid: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        _role_statement(template, role, sid).update(fields)

    return mutate


def _add_catalogue_gap(template: dict[str, Any]) -> None:
    catalogue = _role_statement(template, "RemediationRole", "ApplyDeclaredByTheCatalogue")
    catalogue["Action"] = [a for a in catalogue["Action"] if a != "ec2:RevokeSecurityGroupIngress"]


def _move_to_remediation_role(action: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        _role_statement(template, "RemediationRole", "ApplyDeclaredByTheCatalogue")["Action"].append(action)

    return mutate


def _drop_condition(role: str, sid: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        _role_statement(template, role, sid).pop("Condition")

    return mutate


def _trust_without_subject(role: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        sub = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]
        sub[0] = sub[0].replace(', "${ProviderHost}:sub": ${Subjects}', "")

    return mutate


def _undo_trusts_forward_audience(template: dict[str, Any]) -> None:
    sub = template["Resources"]["UndoRole"]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]
    sub[0] = sub[0].replace("${UndoOidcAudience}", "${RemediationOidcAudience}")


_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
_MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], Callable[[Stack], list[str]]]] = {
    # --- the hand-off (HANDOFF_ACCESS) ---
    "executor reads a handoff without consuming it": (
        _add_statement(
            "ExecutorRole",
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["HandoffTable", "Arn"]}},
        ),
        handoff_access_problems,
    ),
    "executor deletes a handoff without the ReturnValues condition": (
        _drop_condition("ExecutorRole", "ConsumeHandoffs"),
        handoff_access_problems,
    ),
    "executor's delete condition loosened to any ReturnValues": (
        _update_statement("ExecutorRole", "ConsumeHandoffs", Condition={"StringLike": {"dynamodb:ReturnValues": "*"}}),
        handoff_access_problems,
    ),
    "executor queries the handoff index": (
        _add_statement(
            "ExecutorRole",
            {
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": {"Fn::Sub": "${HandoffTable.Arn}/index/by-execution"},
            },
        ),
        handoff_access_problems,
    ),
    "executor reads continuations": (
        _add_statement(
            "ExecutorRole",
            {
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": {"Fn::GetAtt": ["ContinuationsTable", "Arn"]},
            },
        ),
        handoff_access_problems,
    ),
    "continuations go back into the handoff table": (
        _update_statement("ApprovalRole", "ContinuationsAndClaims", Resource={"Fn::GetAtt": ["HandoffTable", "Arn"]}),
        handoff_access_problems,
    ),
    "approval reads a sealed handoff back": (
        _add_statement(
            "ApprovalRole",
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["HandoffTable", "Arn"]}},
        ),
        handoff_access_problems,
    ),
    "kill switch reads the handoff table itself": (
        _add_statement(
            "KillSwitchRole",
            {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": {"Fn::GetAtt": ["HandoffTable", "Arn"]}},
        ),
        handoff_access_problems,
    ),
    "kill switch purges with DeleteItem, which can return the item": (
        _add_statement(
            "KillSwitchRole",
            {
                "Effect": "Allow",
                "Action": "dynamodb:DeleteItem",
                "Resource": {"Fn::GetAtt": ["HandoffTable", "Arn"]},
                "Condition": {"StringEquals": {"dynamodb:ReturnValues": "NONE"}},
            },
        ),
        handoff_access_problems,
    ),
    "kill switch can no longer purge": (
        _drop_statement("KillSwitchRole", "PurgeUnconsumedHandoffs"),
        handoff_access_problems,
    ),
    "agent reads continuations": (
        _add_statement(
            "AgentRole",
            {
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": {"Fn::GetAtt": ["ContinuationsTable", "Arn"]},
            },
        ),
        handoff_access_problems,
    ),
    "the handoff index projects the ciphertext": (
        lambda t: t["Resources"]["HandoffTable"]["Properties"]["GlobalSecondaryIndexes"][0].update(
            Projection={"ProjectionType": "ALL"}
        ),
        handoff_access_problems,
    ),
    "the handoff index includes the ciphertext": (
        lambda t: t["Resources"]["HandoffTable"]["Properties"]["GlobalSecondaryIndexes"][0].update(
            Projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": ["ciphertext", "encrypted_key"]}
        ),
        handoff_access_problems,
    ),
    # --- the purge of ended executions ---
    "an execution stopped by hand is not purged": (
        lambda t: t["Resources"]["MissionEndedRule"]["Properties"]["EventPattern"]["detail"]["status"].remove(
            "ABORTED"
        ),
        mission_ended_rule_problems,
    ),
    "the purge listens to every state machine": (
        lambda t: t["Resources"]["MissionEndedRule"]["Properties"]["EventPattern"]["detail"].pop("stateMachineArn"),
        mission_ended_rule_problems,
    ),
    "EventBridge may not invoke the purge": (
        lambda t: t["Resources"].pop("MissionEndedPermission"),
        mission_ended_rule_problems,
    ),
    # --- the kill switch halts both remediation roles ---
    "kill switch cannot halt UndoRole": (
        _update_statement(
            "KillSwitchRole", "RevokeRemediationSessions", Resource={"Fn::GetAtt": ["RemediationRole", "Arn"]}
        ),
        kill_switch_calls_not_granted,
    ),
    "agent revokes a security group rule": (
        _add_statement("AgentRole", {"Effect": "Allow", "Action": "ec2:RevokeSecurityGroupIngress", "Resource": "*"}),
        lambda s: writes_beyond_domain(s, "AgentRole"),
    ),
    "agent reads a secret": (
        _add_statement(
            "AgentRole",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ApprovalAuth0ClientSecretArn"},
            },
        ),
        agent_credential_reach,
    ),
    "kill switch reads the approval application's secret": (
        _add_statement(
            "KillSwitchRole",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ApprovalAuth0ClientSecretArn"},
            },
        ),
        credential_readers,
    ),
    # The approval role with the executor's application could run the Token Vault exchange and STS itself.
    "approval reads the executor application's secret": (
        _add_statement(
            "ApprovalRole",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ExecutorAuth0ClientSecretArn"},
            },
        ),
        credential_readers,
    ),
    # The executor with the approval application's secret could send CIBA requests.
    "executor reads the approval application's secret": (
        _add_statement(
            "ExecutorRole",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ApprovalAuth0ClientSecretArn"},
            },
        ),
        credential_readers,
    ),
    "a forward token could widen access": (
        _move_to_remediation_role("ec2:AuthorizeSecurityGroupIngress"),
        remediation_role_problems,
    ),
    "undo role could attach AdministratorAccess": (
        _drop_condition("UndoRole", "AttachCustomerManagedPoliciesOnly"),
        lambda s: remediation_role_problems(s, "UndoRole"),
    ),
    "remediation role could detach an AWS-managed policy": (
        _drop_condition("RemediationRole", "DetachCustomerManagedPoliciesOnly"),
        remediation_role_problems,
    ),
    "undo role could stop the organisation's trails": (
        _update_statement("UndoRole", "StopCatalogueTrailsOnly", Resource="*"),
        lambda s: remediation_role_problems(s, "UndoRole"),
    ),
    "remediation role trusts any subject of the provider": (
        _trust_without_subject("RemediationRole"),
        remediation_role_problems,
    ),
    "undo role trusts any subject of the provider": (
        _trust_without_subject("UndoRole"),
        lambda s: remediation_role_problems(s, "UndoRole"),
    ),
    "undo role trusts the forward audience": (
        _undo_trusts_forward_audience,
        lambda s: remediation_role_problems(s, "UndoRole"),
    ),
    "executor reads the kill switch's secret": (
        _add_statement(
            "ExecutorRole",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "KillSwitchAuth0ClientSecretArn"},
            },
        ),
        credential_readers,
    ),
    "kill switch can no longer read its own secret": (
        _drop_statement("KillSwitchRole", "ReadKillSwitchClientSecret"),
        credential_readers,
    ),
    "executor reads another secret": (
        _add_statement(
            "ExecutorRole",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-XyZ123",
            },
        ),
        credential_readers,
    ),
    "agent decrypts": (
        _add_statement("AgentRole", {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
        agent_credential_reach,
    ),
    "agent assumes a role": (
        _add_statement("AgentRole", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
        agent_credential_reach,
    ),
    "agent reads the handoff table": (
        _add_statement(
            "AgentRole",
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["HandoffTable", "Arn"]}},
        ),
        agent_credential_reach,
    ),
    "agent sends a task decision": (
        _add_statement("AgentRole", {"Effect": "Allow", "Action": "states:SendTaskSuccess", "Resource": "*"}),
        agent_credential_reach,
    ),
    "validator reads a secret": (
        _add_statement(
            "ValidatorRole",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ExecutorAuth0ClientSecretArn"},
            },
        ),
        validator_reach,
    ),
    "validator scans the audit table": (
        _add_statement(
            "ValidatorRole",
            {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": {"Fn::GetAtt": ["AuditTable", "Arn"]}},
        ),
        validator_reach,
    ),
    "validator starts a mission": (
        _add_statement("ValidatorRole", {"Effect": "Allow", "Action": "states:StartExecution", "Resource": "*"}),
        validator_reach,
    ),
    "validator cannot find applied changes": (_drop_statement("ValidatorRole", "FindAppliedChanges"), validator_reach),
    "the audit index is keyed by mission": (
        lambda t: t["Resources"]["AuditTable"]["Properties"]["GlobalSecondaryIndexes"][0].update(
            KeySchema=[{"AttributeName": "mission_id", "KeyType": "HASH"}]
        ),
        audit_index_problems,
    ),
    "agent invokes the executor": (
        _add_statement(
            "AgentRole",
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": {"Fn::GetAtt": ["ExecutorFunction", "Arn"]},
            },
        ),
        agent_credential_reach,
    ),
    "executor mutates infrastructure with its own role": (
        _add_statement(
            "ExecutorRole", {"Effect": "Allow", "Action": "ec2:RevokeSecurityGroupIngress", "Resource": "*"}
        ),
        lambda s: writes_beyond_domain(s, "ExecutorRole"),
    ),
    "executor writes the control table": (
        _add_statement(
            "ExecutorRole",
            {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["ControlTable", "Arn"]}},
        ),
        lambda s: writes_beyond_domain(s, "ExecutorRole"),
    ),
    "kill switch remediates": (
        _add_statement("KillSwitchRole", {"Effect": "Allow", "Action": "kms:EnableKeyRotation", "Resource": "*"}),
        lambda s: catalogue_actions_outside_remediation(s, "KillSwitchRole"),
    ),
    "approval role gets a wildcard action": (
        _add_statement("ApprovalRole", {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}),
        lambda s: unjustified_wildcards(s, "ApprovalRole"),
    ),
    "executor gets an unlisted Resource '*'": (
        _add_statement(
            "ExecutorRole", {"Sid": "Inventory", "Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}
        ),
        lambda s: unjustified_wildcards(s, "ExecutorRole"),
    ),
    "a listed no-resource-level statement gains a scopable action": (
        _add_statement(
            "ApprovalRole",
            {"Sid": "TaskCallbacks", "Effect": "Allow", "Action": "states:StartExecution", "Resource": "*"},
        ),
        lambda s: unjustified_wildcards(s, "ApprovalRole"),
    ),
    "a role reaches a resource outside the stack": (
        _add_statement(
            "AgentRole",
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:*:*:table/*"},
        ),
        lambda s: unjustified_wildcards(s, "AgentRole"),
    ),
    "a misspelt action": (
        _add_statement("AgentRole", {"Effect": "Allow", "Action": "ec2:DescribeSecurityGroupRule", "Resource": "*"}),
        lambda s: unknown_actions(s, "AgentRole"),
    ),
    "remediation role grants more than the catalogue": (
        _add_statement("RemediationRole", {"Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*"}),
        remediation_role_problems,
    ),
    "remediation role lacks a catalogue action": (_add_catalogue_gap, remediation_role_problems),
    "remediation role trust loosened": (_set_trust_condition, remediation_role_problems),
    "remediation role sessions last longer": (
        lambda t: t["Resources"]["RemediationRole"]["Properties"].update(MaxSessionDuration=43200),
        remediation_role_problems,
    ),
    "root may decrypt handoffs": (
        _handoff_key_statement({"Effect": "Allow", "Principal": {"AWS": _ROOT}, "Action": "kms:*", "Resource": "*"}),
        key_policy_problems,
    ),
    "agent may decrypt handoffs": (
        _handoff_key_statement(
            {
                "Effect": "Allow",
                "Principal": {"AWS": {"Fn::GetAtt": ["AgentRole", "Arn"]}},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"Null": {f"kms:EncryptionContext:{k}": "false" for k in HANDOFF_CONTEXT_KEYS}},
            }
        ),
        key_policy_problems,
    ),
    "approval may encrypt directly": (
        _handoff_key_statement(
            {
                "Effect": "Allow",
                "Principal": {"AWS": {"Fn::GetAtt": ["ApprovalRole", "Arn"]}},
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"Null": {f"kms:EncryptionContext:{k}": "false" for k in HANDOFF_CONTEXT_KEYS}},
            }
        ),
        key_policy_problems,
    ),
    "approval may decrypt handoffs": (
        _handoff_key_statement(
            {
                "Effect": "Allow",
                "Principal": {"AWS": {"Fn::GetAtt": ["ApprovalRole", "Arn"]}},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"Null": {f"kms:EncryptionContext:{k}": "false" for k in HANDOFF_CONTEXT_KEYS}},
            }
        ),
        key_policy_problems,
    ),
    "approval seals without the change digest in the context": (
        lambda t: next(
            s
            for s in t["Resources"]["HandoffKey"]["Properties"]["KeyPolicy"]["Statement"]
            if s["Sid"] == "ApprovalSealsHandoffs"
        )["Condition"]["Null"].pop("kms:EncryptionContext:change_digest"),
        key_policy_problems,
    ),
    "executor decrypts without an encryption context": (
        lambda t: next(
            s
            for s in t["Resources"]["HandoffKey"]["Properties"]["KeyPolicy"]["Statement"]
            if s["Sid"] == "ExecutorOpensHandoffs"
        ).pop("Condition"),
        key_policy_problems,
    ),
}


@pytest.mark.parametrize("break_it", list(_MUTATIONS))
def test_the_matrix_catches(break_it: str) -> None:
    mutate, check = _MUTATIONS[break_it]
    template = pristine_template()
    mutate(template)
    assert check(build_stack(template)) != [], f"the check did not notice: {break_it}"


# ---------------------------------------------------------------------------------------------------------------------
# Functions, tables, triggers
# ---------------------------------------------------------------------------------------------------------------------

COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "CONTROL_TABLE",
    "AUDIT_TABLE",
}
AGENT_ENV = {
    "CHECKPOINTS_TABLE",
    "MISSIONS_TABLE",
    "STATE_MACHINE_ARN",
    "SCAN_REGIONS",
    "DRY_RUN",
    "MAX_CHANGES_PER_MISSION",
    "MAX_SHARE_PER_RESOURCE_TYPE",
    "SUPPRESSIONS",
    "TRUST_EXEMPTION_TAGS",
    "TRAIL_BUCKET",
    "FLOW_LOGS_LOG_GROUP",
    "FLOW_LOGS_ROLE_ARN",
    "UNDO_ENABLED",
    "CHECKPOINT_TTL_DAYS",
}
# The deployment parameters the validator holds a plan to (aegis_validator.settings).
VALIDATOR_ENV = {
    "ACCOUNT_ID",
    "SCAN_REGIONS",
    "MAX_CHANGES_PER_MISSION",
    "TRAIL_BUCKET",
    "FLOW_LOGS_LOG_GROUP",
    "FLOW_LOGS_ROLE_ARN",
    "UNDO_ENABLED",
}
AUTH0_ENV = {"AUTH0_ISSUER", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET_ARN", "AUTH0_AUDIENCE", "CLIENT_AUTH_METHOD"}
# logical id -> (CodeUri, Handler, layers, role, environment) as docs/CONTRACTS.md states them.
CONTRACT: dict[str, tuple[str, str, list[str], str, set[str]]] = {
    "AgentScanFunction": ("functions/agent/", "app.scan_handler", ["AegisLayer"], "AgentRole", AGENT_ENV),
    "AgentResumeFunction": ("functions/agent/", "app.resume_handler", ["AegisLayer"], "AgentRole", AGENT_ENV),
    "ValidatorFunction": ("functions/validator/", "app.handler", ["AegisLayer"], "ValidatorRole", VALIDATOR_ENV),
    "ApprovalFunction": (
        "functions/approval/",
        "app.handler",
        ["AegisLayer", "AuthLayer"],
        "ApprovalRole",
        AUTH0_ENV
        | {"HANDOFF_TABLE", "HANDOFF_KEY_ID", "APPROVER_SUBS", "CIBA_SCOPE", "CIBA_REQUESTED_EXPIRY"}
        | {"APPROVAL_FUNCTION_NAME", "CONTINUATIONS_TABLE"},
    ),
    "ExecutorFunction": (
        "functions/executor/",
        "app.handler",
        ["AegisLayer", "AuthLayer"],
        "ExecutorRole",
        AUTH0_ENV
        | {"HANDOFF_TABLE", "IDEMPOTENCY_TABLE", "TOKEN_VAULT_CONNECTION", "REMEDIATION_ROLE_ARN"}
        | {"APPROVAL_CLIENT_ID", "UNDO_ROLE_ARN", "UNDO_TOKEN_VAULT_CONNECTION"},
    ),
    "KillSwitchFunction": (
        "functions/killswitch/",
        "app.handler",
        ["AegisLayer", "AuthLayer"],
        "KillSwitchRole",
        AUTH0_ENV
        | {"STATE_MACHINE_ARN", "SCHEDULE_RULE_NAME", "SCAN_RULE_NAME", "APPROVER_SUBS", "TOKEN_VAULT_CONNECTION"}
        | {"REMEDIATION_ROLE_NAME", "KILLSWITCH_AUDIENCE", "HANDOFF_TABLE", "UNDO_ROLE_NAME"},
    ),
}


def _environment(stack: Stack, function: str) -> dict[str, str]:
    shared = stack.resolver.resolve(stack.template["Globals"]["Function"]["Environment"]["Variables"])
    return {**shared, **stack.properties(function)["Environment"]["Variables"]}


def test_exemption_tags_are_not_trusted_unless_the_deployment_says_so(stack: Stack) -> None:
    # Anyone allowed to tag a resource could set aegis:exempt: by default only Suppressions confirms an exemption.
    assert stack.template["Parameters"]["TrustExemptionTags"]["Default"] == "false"
    for function in ("AgentScanFunction", "AgentResumeFunction"):
        assert _environment(stack, function)["TRUST_EXEMPTION_TAGS"] == stack.parameters["TrustExemptionTags"]
    assert _environment(build_stack(TrustExemptionTags="true"), "AgentScanFunction")["TRUST_EXEMPTION_TAGS"] == "true"


def test_functions_are_exactly_those_of_the_contract(stack: Stack) -> None:
    assert set(stack.resources_of_type("AWS::Serverless::Function")) == set(CONTRACT)


@pytest.mark.parametrize("function", list(CONTRACT))
def test_function_matches_the_contract(stack: Stack, function: str) -> None:
    code_uri, handler, layers, role, environment = CONTRACT[function]
    raw = stack.resource(function)["Properties"]
    assert raw["CodeUri"] == code_uri
    assert raw["Handler"] == handler
    assert raw["Layers"] == [{"Ref": layer} for layer in layers]
    assert raw["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert set(_environment(stack, function)) == COMMON_ENV | environment


def test_the_validator_holds_plans_to_the_deployments_own_parameters(stack: Stack) -> None:
    validator = _environment(stack, "ValidatorFunction")
    agent = _environment(stack, "AgentScanFunction")
    # The same parameters the agent plans with, so a plan the agent makes is a plan the validator accepts.
    for name in VALIDATOR_ENV - {"ACCOUNT_ID"}:
        assert validator[name] == agent[name], name
    assert validator["ACCOUNT_ID"] == stack.resolver.pseudo["AWS::AccountId"]
    assert validator["AUDIT_TABLE"] == stack.ref("AuditTable")
    # The parameters' own constraints are the validator's: every value the template accepts, it accepts.
    from aegis_validator.settings import MAX_CHANGES_RANGE

    declared = pristine_template()["Parameters"]["MaxChangesPerMission"]
    assert (int(declared["MinValue"]), int(declared["MaxValue"])) == (MAX_CHANGES_RANGE[0], MAX_CHANGES_RANGE[-1])


def test_only_the_credential_side_gets_the_auth_layer(stack: Stack) -> None:
    users = [
        name
        for name, f in stack.resources_of_type("AWS::Serverless::Function").items()
        if {"Ref": "AuthLayer"} in f["Properties"].get("Layers", [])
    ]
    assert sorted(users) == ["ApprovalFunction", "ExecutorFunction", "KillSwitchFunction"]
    assert stack.resource("AegisLayer")["Properties"]["ContentUri"] == "layers/aegis/"
    assert stack.resource("AuthLayer")["Properties"]["ContentUri"] == "layers/auth/"
    for layer in ("AegisLayer", "AuthLayer"):
        assert stack.resource(layer)["Metadata"]["BuildMethod"] == "python3.13"


def test_environment_points_at_the_right_resources(stack: Stack) -> None:
    state_machine = stack.arn("MissionStateMachine")
    agent = _environment(stack, "AgentResumeFunction")
    assert _environment(stack, "AgentScanFunction") == agent
    assert agent["STATE_MACHINE_ARN"] == state_machine
    assert agent["CHECKPOINTS_TABLE"] == stack.ref("CheckpointsTable")
    assert agent["MISSIONS_TABLE"] == stack.ref("MissionsTable")
    assert agent["CONTROL_TABLE"] == stack.ref("ControlTable")
    assert agent["AUDIT_TABLE"] == stack.ref("AuditTable")
    approval = _environment(stack, "ApprovalFunction")
    assert approval["HANDOFF_TABLE"] == stack.ref("HandoffTable")
    assert approval["HANDOFF_KEY_ID"] == stack.arn("HandoffKey")
    assert approval["APPROVAL_FUNCTION_NAME"] == stack.ref("ApprovalFunction")
    assert approval["CONTINUATIONS_TABLE"] == stack.ref("ContinuationsTable")
    executor = _environment(stack, "ExecutorFunction")
    # One application per trust domain, and the executor accepts only tokens issued to the approval application.
    assert approval["AUTH0_CLIENT_ID"] == stack.parameters["ApprovalAuth0ClientId"]
    assert approval["AUTH0_CLIENT_SECRET_ARN"] == stack.parameters["ApprovalAuth0ClientSecretArn"]
    assert executor["AUTH0_CLIENT_ID"] == stack.parameters["ExecutorAuth0ClientId"]
    assert executor["AUTH0_CLIENT_SECRET_ARN"] == stack.parameters["ExecutorAuth0ClientSecretArn"]
    assert executor["APPROVAL_CLIENT_ID"] == stack.parameters["ApprovalAuth0ClientId"]
    assert executor["IDEMPOTENCY_TABLE"] == stack.ref("IdempotencyTable")
    assert executor["REMEDIATION_ROLE_ARN"] == stack.arn("RemediationRole")
    killswitch = _environment(stack, "KillSwitchFunction")
    assert killswitch["STATE_MACHINE_ARN"] == state_machine
    assert killswitch["SCHEDULE_RULE_NAME"] == stack.ref("ScheduledScanRule")
    assert killswitch["SCAN_RULE_NAME"] == stack.ref("ScanRequestRule")
    assert killswitch["REMEDIATION_ROLE_NAME"] == stack.ref("RemediationRole")
    assert killswitch["UNDO_ROLE_NAME"] == stack.ref("UndoRole")
    assert killswitch["HANDOFF_TABLE"] == stack.ref("HandoffTable")
    # The kill switch calls the Management API as its own machine-to-machine client, not as the approval app.
    assert killswitch["AUTH0_CLIENT_ID"] == stack.parameters["KillSwitchAuth0ClientId"]
    assert killswitch["AUTH0_CLIENT_SECRET_ARN"] == stack.parameters["KillSwitchAuth0ClientSecretArn"]
    assert killswitch["KILLSWITCH_AUDIENCE"] == stack.parameters["KillSwitchAudience"]


def test_globals_pin_the_runtime_and_tracing(stack: Stack) -> None:
    function_globals = stack.template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Architectures"] in (["x86_64"], ["arm64"])
    assert function_globals["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "AegisCloud"


@pytest.mark.parametrize("function", list(CONTRACT))
def test_each_function_logs_to_its_own_group_with_retention(stack: Stack, function: str) -> None:
    log_group = stack.resource(function)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    group = stack.resource(log_group)
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert stack.properties(log_group)["LogGroupName"] == f"/aws/lambda/{stack.ref(function)}"
    role = CONTRACT[function][3]
    assert ("logs:PutLogEvents", log_group) in {(g.action, g.resource) for g in stack.grants(role)}


def test_only_the_kill_switch_has_a_url_and_it_authenticates_callers_itself(stack: Stack) -> None:
    with_url = {
        name: f["Properties"]["FunctionUrlConfig"]
        for name, f in stack.resources_of_type("AWS::Serverless::Function").items()
        if "FunctionUrlConfig" in f["Properties"]
    }
    assert with_url == {"KillSwitchFunction": {"AuthType": "NONE", "InvokeMode": "BUFFERED"}}
    assert "KILLSWITCH_AUDIENCE" in _environment(stack, "KillSwitchFunction")
    assert "APPROVER_SUBS" in _environment(stack, "KillSwitchFunction")


# logical id -> (keys, TTL attribute or None)
TABLES: dict[str, tuple[list[tuple[str, str]], str | None]] = {
    "CheckpointsTable": ([("PK", "HASH"), ("SK", "RANGE")], "ttl"),
    "MissionsTable": ([("mission_id", "HASH")], None),
    "AuditTable": ([("mission_id", "HASH"), ("seq", "RANGE")], None),
    "ControlTable": ([("name", "HASH")], None),
    "HandoffTable": ([("handoff_id", "HASH")], "expires_at"),
    # The approval function's continuations and task claims, apart from the handoffs the executor consumes.
    "ContinuationsTable": ([("id", "HASH")], "expires_at"),
    "IdempotencyTable": ([("id", "HASH")], "expiration"),
}


def test_the_seven_tables_of_the_contract(stack: Stack) -> None:
    tables = stack.resources_of_type("AWS::DynamoDB::Table")
    assert set(tables) == set(TABLES)
    for name, (keys, ttl) in TABLES.items():
        properties = tables[name]["Properties"]
        assert [(k["AttributeName"], k["KeyType"]) for k in properties["KeySchema"]] == keys, name
        # Index keys are declared too (HandoffTable's keys-only by-execution index: handoff_access_problems).
        index_keys = {
            k["AttributeName"] for index in properties.get("GlobalSecondaryIndexes", []) for k in index["KeySchema"]
        }
        declared = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
        assert declared == dict.fromkeys({key for key, _ in keys} | index_keys, "S"), name
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        assert properties["SSESpecification"] == {"SSEEnabled": True}, name
        expected_ttl = {"AttributeName": ttl, "Enabled": True} if ttl else None
        assert properties.get("TimeToLiveSpecification") == expected_ttl, name


def test_audit_survives_the_stack_and_handoffs_are_never_backed_up(stack: Stack) -> None:
    assert stack.resource("AuditTable")["DeletionPolicy"] == "Retain"
    assert stack.resource("AuditTable")["UpdateReplacePolicy"] == "Retain"
    assert "PointInTimeRecoverySpecification" not in stack.resource("HandoffTable")["Properties"]
    assert "PointInTimeRecoverySpecification" not in stack.resource("ContinuationsTable")["Properties"]
    for role in ALL_ROLES:
        audit_writes = {
            g.action for g in stack.grants(role) if g.resource == "AuditTable" and not is_read_only(g.action)
        }
        assert audit_writes <= {"dynamodb:PutItem"}, f"{role} may rewrite audit records: {audit_writes}"


def test_scans_are_triggered_by_the_schedule_and_by_aegis_scan_events(stack: Stack) -> None:
    schedule = stack.properties("ScheduledScanRule")
    assert schedule["ScheduleExpression"] == stack.parameters["ScanSchedule"] == "rate(1 day)"
    on_demand = stack.properties("ScanRequestRule")
    assert on_demand["EventPattern"] == {"source": ["aegis.scan"], "detail-type": ["Aegis Scan Requested"]}
    target = stack.arn("AgentScanFunction")
    permissions = stack.resources_of_type("AWS::Lambda::Permission")
    for rule in ("ScheduledScanRule", "ScanRequestRule"):
        properties = stack.properties(rule)
        assert properties["Name"] == stack.ref(rule)
        assert [t["Arn"] for t in properties["Targets"]] == [target]
        assert any(
            stack.properties(p)["SourceArn"] == stack.arn(rule)
            and stack.properties(p)["Principal"] == "events.amazonaws.com"
            and stack.properties(p)["FunctionName"] == stack.ref("AgentScanFunction")
            for p in permissions
        ), rule


def test_parameters_cover_the_tenant_and_the_safety_caps(stack: Stack) -> None:
    declared = set(stack.template["Parameters"])
    assert set(stack.parameters) == declared
    assert {
        "Auth0Issuer",
        "ApprovalAuth0ClientId",
        "ApprovalAuth0ClientSecretArn",
        "ExecutorAuth0ClientId",
        "ExecutorAuth0ClientSecretArn",
        "KillSwitchAuth0ClientId",
        "KillSwitchAuth0ClientSecretArn",
        "KillSwitchAudience",
        "Auth0Audience",
        "RemediationOidcSubjects",
        "UndoTokenVaultConnection",
        "UndoOidcAudience",
        "TokenVaultConnection",
        "ApproverSubs",
        "ScanSchedule",
        "DryRun",
        "MaxChangesPerMission",
        "MaxSharePerResourceType",
        "TrustExemptionTags",
        "LogRetentionDays",
        "MapMaxConcurrency",
    } <= declared
    # A tenant's own values never get a default that would deploy against someone else's tenant.
    for tenant_value in (
        "Auth0Issuer",
        "ApprovalAuth0ClientId",
        "ApprovalAuth0ClientSecretArn",
        "ExecutorAuth0ClientId",
        "ExecutorAuth0ClientSecretArn",
        "KillSwitchAuth0ClientId",
        "KillSwitchAuth0ClientSecretArn",
        "KillSwitchAudience",
        "ApproverSubs",
        "RemediationOidcSubjects",
    ):
        assert "Default" not in stack.template["Parameters"][tenant_value], tenant_value


@pytest.mark.parametrize(
    ("parameter", "bad_value"),
    [
        ("Auth0Issuer", "http://aegis-demo.eu.auth0.com/"),
        ("ApprovalAuth0ClientSecretArn", "aegis/auth0-client"),
        ("ExecutorAuth0ClientSecretArn", "aegis/auth0-client"),
        ("RemediationOidcAudience", "sts.amazonaws.com"),
        ("RemediationOidcSubjects", "auth0|a,,auth0|b"),
        ("KillSwitchAuth0ClientSecretArn", "aegis/killswitch-m2m"),
        ("KillSwitchAuth0ClientId", ""),
        ("CibaRequestedExpirySeconds", "0"),
        ("CibaRequestedExpirySeconds", "301"),
        # A refresh token would outlive the one approved change (issue 12 §2), however the scope is spelled.
        ("CibaScope", "openid offline_access"),
        ("CibaScope", "offline_access openid"),
        ("CibaScope", "openid profile,offline_access"),
        ("MaxSharePerResourceType", "1.5"),
        ("DryRun", "yes"),
        ("TrustExemptionTags", "yes"),
        ("ScanRegions", "us-east-1;eu-west-1"),
    ],
)
def test_bad_parameter_values_are_refused(parameter: str, bad_value: str) -> None:
    from aegis_local.aws.template import TemplateError

    with pytest.raises(TemplateError, match=parameter):
        build_stack(**{parameter: bad_value})


def test_the_approval_function_accepts_every_ciba_expiry_the_template_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aegis_approval.settings import ApprovalSettings

    declared = pristine_template()["Parameters"]["CibaRequestedExpirySeconds"]
    lowest, highest = int(declared["MinValue"]), int(declared["MaxValue"])
    for accepted in (lowest, highest):
        environment = _environment(build_stack(CibaRequestedExpirySeconds=str(accepted)), "ApprovalFunction")
        for name, value in environment.items():
            monkeypatch.setenv(name, str(value))
        assert ApprovalSettings.from_env().requested_expiry == accepted
    # Just outside the template's range, the approval function refuses too: the range is the function's, exactly.
    for refused in (lowest - 1, highest + 1):
        monkeypatch.setenv("CIBA_REQUESTED_EXPIRY", str(refused))
        with pytest.raises(ValueError, match="CIBA_REQUESTED_EXPIRY"):
            ApprovalSettings.from_env()


def test_outputs_name_what_an_operator_needs(stack: Stack) -> None:
    assert {"MissionStateMachineArn", "KillSwitchUrl", "RemediationRoleArn", "HandoffKeyArn"} <= set(
        stack.template["Outputs"]
    )


# ---------------------------------------------------------------------------------------------------------------------
# The agent's inventory grants follow the collectors' code
# ---------------------------------------------------------------------------------------------------------------------

COLLECTORS = ROOT / "layers" / "aegis" / "aegis" / "collectors"
KILLSWITCH_CODE = ROOT / "functions" / "killswitch" / "aegis_killswitch"
# The AWS clients the kill switch's code calls (its DynamoDB access goes through Table resources).
KILLSWITCH_SERVICES = ("iam", "events", "stepfunctions")
# botocore's service name -> the IAM action prefix, where they differ.
IAM_PREFIX = {"stepfunctions": "states"}
INVENTORY_SERVICES = ("ec2", "s3", "s3control", "iam", "kms", "cloudtrail", "sts")
# Where the IAM action is not "<service>:<Operation>". None: the operation needs no permission.
IAM_ACTION_OF_OPERATION: dict[tuple[str, str], str | None] = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("sts", "GetCallerIdentity"): None,
}


def called_operations(paths: list[Path], services: tuple[str, ...] = INVENTORY_SERVICES) -> set[tuple[str, str]]:
    """(service, Operation) of every AWS API these files can call, by method name or paginator name.

    A name that several inventory services share (s3 and s3control both have get_public_access_block) counts for
    each of them, so the check errs towards requiring a grant.
    """
    session = botocore.session.get_session()
    by_method: dict[str, set[tuple[str, str]]] = {}
    for service in services:
        for operation in session.get_service_model(service).operation_names:
            by_method.setdefault(xform_name(operation), set()).add((service, operation))
    found: set[tuple[str, str]] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value)
            found |= by_method.get(name, set())
    return found


def iam_action_for(service: str, operation: str) -> str | None:
    if (service, operation) in IAM_ACTION_OF_OPERATION:
        return IAM_ACTION_OF_OPERATION[(service, operation)]
    return f"{'s3' if service == 's3control' else service}:{operation}"


def collector_reads_missing(stack: Stack) -> list[str]:
    operations = called_operations(sorted(COLLECTORS.glob("*.py")))
    needed = {action for service, operation in operations if (action := iam_action_for(service, operation))}
    unknown = sorted(action for action in needed if resource_types_of(action) is None)
    granted = {g.action for g in stack.grants("AgentRole") if g.resource == UNSCOPED}
    return [f"no IAM action known for {action}: map it in IAM_ACTION_OF_OPERATION" for action in unknown] + [
        f"the collectors call {action}, which AgentRole does not grant" for action in sorted(needed - granted)
    ]


def test_agent_role_grants_every_read_the_collectors_make(stack: Stack) -> None:
    operations = called_operations(sorted(COLLECTORS.glob("*.py")))
    assert ("ec2", "DescribeSecurityGroupRules") in operations, f"no collector calls found under {COLLECTORS}"
    assert collector_reads_missing(stack) == []


def test_a_read_the_collectors_need_but_the_role_lacks_is_caught() -> None:
    template = pristine_template()
    statements = template["Resources"]["AgentRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    inventory = next(s for s in statements if s["Sid"] == "ReadOnlyInventory")
    inventory["Action"].remove("ec2:DescribeVpcs")
    assert collector_reads_missing(build_stack(template)) == [
        "the collectors call ec2:DescribeVpcs, which AgentRole does not grant"
    ]
