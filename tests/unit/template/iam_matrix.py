"""The checks each role of template.yaml must pass, and what they share: every check is a function returning what is
wrong, so the same check runs twice, on template.yaml (no violation allowed: test_matrix.py and its neighbours) and
on a deliberately broken copy (the violation must be reported: test_each_check_catches_its_break.py). A check that
could not fail would show up as a failing "catches" test.
"""

from __future__ import annotations

import ast
import importlib.util
import json
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
from tests.support.stack import EXECUTIONS, ROOT, UNSCOPED, Grant, Stack

FUNCTION_ROLES = (
    "AgentRole",
    "ApprovalRole",
    "AuditChainRole",
    "ExecutorRole",
    "KillSwitchRole",
    "NotifierRole",
    "OpsRole",
    "OrgScanRole",
    "ValidatorRole",
)
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
STATE_MACHINE_ROLES = ("StateMachineRole", "OrgScanStateMachineRole")
ALL_ROLES = (*FUNCTION_ROLES, *REMEDIATION_ROLES, *STATE_MACHINE_ROLES)

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
# The tables' keys, and what a role that reads or writes one of their tables holds on its key, only through
# DynamoDB (DynamoDB uses a table's key with its caller's identity): test_table_and_log_keys.py.
TABLE_KEYS = ("TablesKey", "HandoffTablesKey")
TABLE_KEY_ACTIONS = frozenset({"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"})


def is_read_only(action: str) -> bool:
    return action.split(":", 1)[1].startswith(READ_ONLY_VERB_PREFIXES)


def _telemetry(*log_groups: str) -> set[tuple[str, str]]:
    writes = {("xray:PutTraceSegments", UNSCOPED), ("xray:PutTelemetryRecords", UNSCOPED)}
    for group in log_groups:
        writes |= {("logs:CreateLogStream", group), ("logs:PutLogEvents", group)}
    return writes


def _table_keys(*keys: str) -> set[tuple[str, str]]:
    """The non-read-only grants a table user holds on its tables' keys (through DynamoDB only: through_dynamodb)."""
    return {(action, key) for key in keys for action in TABLE_KEY_ACTIONS if not is_read_only(action)}


def through_dynamodb(stack: Stack, grant: Grant) -> bool:
    """`grant` is a table key's, usable only by DynamoDB on the role's behalf in the stack's region."""
    service = f"dynamodb.{stack.resolver.pseudo['AWS::Region']}.{stack.resolver.pseudo['AWS::URLSuffix']}"
    return (
        grant.resource in TABLE_KEYS
        and grant.action in TABLE_KEY_ACTIONS
        and dict(grant.condition) == {"StringEquals": {"kms:ViaService": service}}
    )


# The account's default event bus in the test stack's region (tests.support.stack); the ops API puts its events there.
DEFAULT_EVENT_BUS = "arn:aws:events:us-east-1:123456789012:event-bus/default"
# The organization scan's executions (the kill switch stops them) and its Distributed Map's child executions
# ("<state machine>/<map run label>:<name>", which the state machine itself starts and watches), in the test stack.
ORG_SCAN_EXECUTIONS = "arn:aws:states:us-east-1:123456789012:execution:aegis-org-scan:*"
ORG_SCAN_MAP_EXECUTIONS = "arn:aws:states:us-east-1:123456789012:execution:aegis-org-scan/*"
# The member accounts' roles (member/template.yaml, fixed names) the security account's roles may assume, and only
# inside the organization (aws:ResourceOrgID = OrganizationId). Every other STS grant is a credential reach.
MEMBER_ROLE_ASSUMED_BY: dict[str, str] = {
    "AgentRole": "arn:aws:iam::*:role/AegisScanRole",
    "KillSwitchRole": "arn:aws:iam::*:role/AegisKillSwitchRole",
}

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
        # An organization scan (one per aegis.scan event with "organization": true).
        ("states:StartExecution", "OrgScanStateMachine"),
        # Reading a member account as its read-only AegisScanRole: an STS call, but no write and no secret
        # (member_assume_problems pins the resource and the organization condition; tests/unit/member proves the role
        # it reaches is read-only).
        ("sts:AssumeRole", f"external:{MEMBER_ROLE_ASSUMED_BY['AgentRole']}"),
        # The scan's dead-letter queue: Lambda sends a scan event that failed every attempt with this role.
        ("sqs:SendMessage", "AgentScanDeadLetterQueue"),
        *_table_keys("TablesKey"),
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
        *_table_keys("TablesKey", "HandoffTablesKey"),
        *_telemetry("ApprovalLogGroup"),
    },
    "ExecutorRole": {
        ("dynamodb:DeleteItem", "HandoffTable"),
        *((f"dynamodb:{verb}", "IdempotencyTable") for verb in ("PutItem", "UpdateItem", "DeleteItem")),
        ("dynamodb:PutItem", "AuditTable"),
        *_table_keys("TablesKey", "HandoffTablesKey"),
        *_telemetry("ExecutorLogGroup"),
    },
    "KillSwitchRole": {
        *((f"dynamodb:{verb}", "ControlTable") for verb in ("PutItem", "UpdateItem", "DeleteItem")),
        ("dynamodb:PutItem", "AuditTable"),
        ("events:DisableRule", "ScheduledScanRule"),
        ("events:EnableRule", "ScheduledScanRule"),
        ("events:DisableRule", "ScanRequestRule"),
        ("events:EnableRule", "ScanRequestRule"),
        ("events:DisableRule", "UndoRequestRule"),
        ("events:EnableRule", "UndoRequestRule"),
        ("states:StopExecution", EXECUTIONS),
        ("states:StopExecution", f"external:{ORG_SCAN_EXECUTIONS}"),
        ("states:SendTaskFailure", UNSCOPED),
        # Halting the members: their AegisKillSwitchRole only puts, reads and deletes the two halt policies
        # (tests/unit/member).
        ("sts:AssumeRole", f"external:{MEMBER_ROLE_ASSUMED_BY['KillSwitchRole']}"),
        *((f"iam:{verb}RolePolicy", role) for verb in ("Put", "Delete") for role in ("RemediationRole", "UndoRole")),
        # Deletes unconsumed handoffs (BatchWriteItem returns no item; HANDOFF_ACCESS below is the whole story).
        ("dynamodb:BatchWriteItem", "HandoffTable"),
        # The kill switch's dead-letter queue: Lambda sends an event that failed every attempt with this role.
        ("sqs:SendMessage", "KillSwitchDeadLetterQueue"),
        *_table_keys("TablesKey", "HandoffTablesKey"),
        *_telemetry("KillSwitchLogGroup"),
    },
    # The ops API writes nothing: it puts the two events that start a mission (OPS_ACCESS below is the whole story).
    "OpsRole": {
        ("events:PutEvents", f"external:{DEFAULT_EVENT_BUS}"),
        ("kms:Decrypt", "TablesKey"),
        *_telemetry("OpsLogGroup"),
    },
    # The validator writes only its own verdicts to the audit trail.
    "ValidatorRole": {("dynamodb:PutItem", "AuditTable"), *_table_keys("TablesKey"), *_telemetry("ValidatorLogGroup")},
    # The notifier publishes to the stack's topic, and reads the Audit stream, whose records DynamoDB decrypts with
    # the table's key in its name (NOTIFIER_ACCESS below is the whole story).
    "NotifierRole": {
        ("sns:Publish", "NotificationsTopic.TopicArn"),
        ("kms:Decrypt", "TablesKey"),
        *_telemetry("NotifierLogGroup"),
    },
    # The chainer sets the chain's attributes of audit records and the head of a mission (LINK_ONLY below proves
    # it can touch no other attribute), and adds finished trails to the Object Lock bucket.
    "AuditChainRole": {
        ("dynamodb:UpdateItem", "AuditTable"),
        ("dynamodb:UpdateItem", "MissionsTable"),
        ("s3:PutObject", "AuditExportBucket/audit/*"),
        *_table_keys("TablesKey"),
        *_telemetry("AuditChainLogGroup"),
    },
    # The organization scan's listing: its item lists in the bucket, its own Missions item (org#<id>), its audit.
    "OrgScanRole": {
        ("s3:PutObject", "OrgScanBucket/org-scans/*"),
        ("dynamodb:PutItem", "MissionsTable"),
        ("dynamodb:UpdateItem", "MissionsTable"),
        ("dynamodb:PutItem", "AuditTable"),
        *_table_keys("TablesKey"),
        *_telemetry("OrgScanLogGroup"),
    },
    # The organization scan: its two functions, its own Distributed Map children and their results.
    "OrgScanStateMachineRole": {
        ("lambda:InvokeFunction", "OrgScanFunction"),
        ("lambda:InvokeFunction", "AgentScanFunction"),
        ("states:StartExecution", "OrgScanStateMachine"),
        ("states:StopExecution", f"external:{ORG_SCAN_MAP_EXECUTIONS}"),
        ("s3:PutObject", "OrgScanBucket/org-scan-results/*"),
        ("s3:AbortMultipartUpload", "OrgScanBucket/org-scan-results/*"),
        *(
            (f"logs:{verb}", UNSCOPED)
            for verb in ("CreateLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery", "PutResourcePolicy")
        ),
        ("xray:PutTraceSegments", UNSCOPED),
        ("xray:PutTelemetryRecords", UNSCOPED),
    },
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


# The analyst (AnalystModelId, issue 19): Bedrock's Converse needs bedrock:InvokeModel, which is not a read and so
# counts as mutating like every Invoke. The explicit, narrow allowance: the agent may hold exactly the grants below,
# computed from the deployment's parameters, and none without a model id. Invoking a model changes nothing in the
# account; what it answers only picks among candidates code built (aegis_agent.analyst).
# A model id whose first segment is one of these is a cross-region inference profile (Bedrock's geography prefixes).
INFERENCE_PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "us-gov", "jp", "au", "ca", "global"})
ANALYST_ROLE = "AgentRole"


def analyst_grants(stack: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    """(action, resource) -> condition: exactly what the analyst of this deployment may do, nothing without a model.

    A foundation model: InvokeModel on that model in the stack's region. An inference profile: InvokeModel on the
    profile, and on any region's foundation models only through that profile (bedrock:InferenceProfileArn), as AWS
    documents for cross-region inference. A guardrail (with a model): ApplyGuardrail on that guardrail."""
    model = stack.parameters["AnalystModelId"]
    if not model:
        return {}
    pseudo = stack.resolver.pseudo
    partition, region, account = pseudo["AWS::Partition"], pseudo["AWS::Region"], pseudo["AWS::AccountId"]
    grants: dict[tuple[str, str], dict[str, Any]] = {}
    if model.split(".", 1)[0] in INFERENCE_PROFILE_PREFIXES:
        profile = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model}"
        grants[("bedrock:InvokeModel", f"external:{profile}")] = {}
        grants[("bedrock:InvokeModel", f"external:arn:{partition}:bedrock:*::foundation-model/*")] = {
            "StringEquals": {"bedrock:InferenceProfileArn": profile}
        }
    else:
        grants[("bedrock:InvokeModel", f"external:arn:{partition}:bedrock:{region}::foundation-model/{model}")] = {}
    guardrail = stack.parameters["AnalystGuardrailId"]
    if guardrail:
        arn = f"arn:{partition}:bedrock:{region}:{account}:guardrail/{guardrail}"
        grants[("bedrock:ApplyGuardrail", f"external:{arn}")] = {}
    return grants


def is_analyst_grant(stack: Stack, grant: Grant) -> bool:
    """`grant` is one of the analyst's, on its resource and with exactly its condition."""
    wanted = analyst_grants(stack) if grant.role == ANALYST_ROLE else {}
    return wanted.get((grant.action, grant.resource)) == dict(grant.condition)


def analyst_grant_problems(stack: Stack) -> list[str]:
    """Bedrock, for any role: only the agent's role, and exactly analyst_grants (resources and conditions)."""
    found = []
    for role in ALL_ROLES:
        if role not in stack.template["Resources"]:
            continue
        granted = {(g.action, g.resource): dict(g.condition) for g in stack.grants(role) if g.service == "bedrock"}
        expected = analyst_grants(stack) if role == ANALYST_ROLE else {}
        for key in sorted(set(granted) | set(expected)):
            if key not in expected:
                found.append(f"{role}: {key[0]} on {key[1]} is beyond the analyst's model and guardrail")
            elif key not in granted:
                found.append(f"{role} lacks {key[0]} on {key[1]}")
            elif granted[key] != expected[key]:
                found.append(f"{role}: {key[0]} on {key[1]} has condition {granted[key]}, expected {expected[key]}")
    return found


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
    **{
        (role, "DeliverLogs"): Unscoped(f"CloudWatch Logs vended delivery: {_NO_RESOURCE_LEVEL}", True)
        for role in STATE_MACHINE_ROLES
    },
    ("KillSwitchRole", "ListMemberAccounts"): Unscoped(f"Organizations ListAccounts: {_NO_RESOURCE_LEVEL}", True),
    ("OrgScanRole", "ListOrganizationAccounts"): Unscoped(
        "the OUs beneath the configured ones are found only at run time, and every action is a read (tested)", False
    ),
    **{
        (role, "ListAuditStreams"): Unscoped(
            f"DynamoDB ListStreams (Lambda's stream mapping calls it): {_NO_RESOURCE_LEVEL}; it lists stream ARNs only",
            True,
        )
        for role in ("NotifierRole", "AuditChainRole")
    },
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


# ---------------------------------------------------------------------------------------------------------------------
# The checks (each returns what is wrong)
# ---------------------------------------------------------------------------------------------------------------------


def writes_beyond_domain(stack: Stack, role: str) -> list[str]:
    allowed = MAY_WRITE[role]
    return [
        f"{g.role}/{g.sid}: {g.action} on {g.resource}"
        for g in stack.grants(role)
        if not is_read_only(g.action) and (g.action, g.resource) not in allowed and not is_analyst_grant(stack, g)
    ]


def agent_credential_reach(stack: Stack) -> list[str]:
    found = []
    for grant in stack.grants("AgentRole"):
        if grant.service in CREDENTIAL_SERVICES and not is_member_assume(stack, grant):
            found.append(f"{grant.action}: the agent may not reach a secret or a credential service")
        uses_a_key = grant.action in KMS_CRYPTO_ACTIONS or grant.action.lower() == "kms:*"
        # Its own tables' key, through DynamoDB only; never the hand-off side's key, never HandoffKey.
        if uses_a_key and not (grant.resource == "TablesKey" and through_dynamodb(stack, grant)):
            found.append(f"{grant.action} on {grant.resource}: the agent may use no KMS key but its tables'")
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
# It also reads the mission's item, for the account the agent recorded (a plan may name only that account or this one).
VALIDATOR_DATA_ACCESS = frozenset(
    {
        ("dynamodb:Query", f"AuditTable/index/{CHANGE_INDEX}"),
        ("dynamodb:PutItem", "AuditTable"),
        ("dynamodb:GetItem", "MissionsTable"),
    }
)


def validator_reach(stack: Stack) -> list[str]:
    """The validator holds no secret, key (but the audit table's, through DynamoDB), hand-off, decision or function,
    and no action on the account: its data access is exactly VALIDATOR_DATA_ACCESS."""
    found = []
    for grant in stack.grants("ValidatorRole"):
        if grant.resource == "TablesKey" and through_dynamodb(stack, grant):
            continue
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


# The notifier reads the audit trail's stream (its records decrypted by DynamoDB with the Audit table's key, in the
# notifier's name) and publishes to the stack's topic; nothing else of the stack, and no table at all.
NOTIFIER_ACCESS = frozenset(
    {
        ("dynamodb:DescribeStream", "AuditTable.StreamArn"),
        ("dynamodb:GetRecords", "AuditTable.StreamArn"),
        ("dynamodb:GetShardIterator", "AuditTable.StreamArn"),
        ("dynamodb:ListStreams", UNSCOPED),
        ("kms:Decrypt", "TablesKey"),
        ("sns:Publish", "NotificationsTopic.TopicArn"),
    }
)


def notifier_reach(stack: Stack) -> list[str]:
    """The notifier holds no secret, writes no table, uses no key but the Audit table's (to read, through DynamoDB
    only) and publishes to the stack's topic only; no other role may publish to it, and no hand-off key names it."""
    found = []
    for grant in stack.grants("NotifierRole"):
        if grant.service in CREDENTIAL_SERVICES:
            found.append(f"{grant.action}: the notifier may not reach a secret or a credential")
        elif grant.service in {"logs", "xray"}:
            continue
        elif (grant.action, grant.resource) not in NOTIFIER_ACCESS:
            found.append(f"{grant.action} on {grant.resource}: beyond the audit stream and the notifications topic")
        elif grant.service == "kms" and not through_dynamodb(stack, grant):
            found.append(f"{grant.action} on {grant.resource}: the notifier may use the key through DynamoDB only")
    granted = {(g.action, g.resource) for g in stack.grants("NotifierRole")}
    found += [f"NotifierRole lacks {action} on {resource}" for action, resource in sorted(NOTIFIER_ACCESS - granted)]
    found += [
        f"{g.role}/{g.sid}: {g.action} on {g.resource}: only the notifier publishes notifications"
        for role in ALL_ROLES
        if role != "NotifierRole" and role in stack.template["Resources"]
        for g in stack.grants(role)
        if g.service == "sns"
    ]
    for key in ("HandoffKey", "HandoffTablesKey"):
        if key not in stack.template["Resources"]:
            continue
        for statement in stack.key_policy(key)["Statement"]:
            if _principal_owner(stack, statement) == "NotifierRole":
                found.append(f"{key} statement {statement.get('Sid')} names the notifier")
    return found


# The ops API reads missions (items, pages, the ByCreated list), the audit trail (by mission, change and action) and
# the halt flag, and puts the events that start a scan or an undo: nothing else, and no write to any table.
OPS_ACCESS = frozenset(
    {
        ("dynamodb:GetItem", "MissionsTable"),
        ("dynamodb:BatchGetItem", "MissionsTable"),
        ("dynamodb:Query", "MissionsTable/index/ByCreated"),
        # An organization scan's account missions (GET /missions?org_scan=...).
        ("dynamodb:Query", "MissionsTable/index/ByOrgScan"),
        ("dynamodb:Query", "AuditTable"),
        ("dynamodb:Query", f"AuditTable/index/{CHANGE_INDEX}"),
        ("dynamodb:Query", "AuditTable/index/ByAction"),
        ("dynamodb:GetItem", "ControlTable"),
        ("kms:Decrypt", "TablesKey"),
        ("kms:DescribeKey", "TablesKey"),
        ("events:PutEvents", f"external:{DEFAULT_EVENT_BUS}"),
    }
)
# The events the ops API may put, as the rules that deliver them to the agent match them.
OPS_EVENTS = {
    "events:source": {"aegis.scan", "aegis.undo"},
    "events:detail-type": {"Aegis Scan Requested", "Undo Requested"},
}


def ops_reach(stack: Stack) -> list[str]:
    """The ops API is credential-free like the agent: no secret or credential service, no key but the tables' (to
    read, through DynamoDB only), no hand-off table, no write, no function invoke (a direct invoke of the kill switch
    carries no token), and PutEvents only for the aegis.scan and aegis.undo events: its access is exactly OPS_ACCESS."""
    found = []
    for grant in stack.grants("OpsRole"):
        if grant.service in CREDENTIAL_SERVICES:
            found.append(f"{grant.action}: the ops API may not reach a secret or a credential")
        elif grant.service in {"logs", "xray"}:
            continue
        elif (grant.action, grant.resource) not in OPS_ACCESS:
            found.append(f"{grant.action} on {grant.resource}: beyond reading missions, audit and halt flag")
        elif grant.service == "kms" and not through_dynamodb(stack, grant):
            found.append(f"{grant.action} on {grant.resource}: the ops API may use the key through DynamoDB only")
        elif grant.service == "events":
            condition = (grant.condition or {}).get("StringEquals", {})
            for key, allowed in OPS_EVENTS.items():
                values = condition.get(key)
                values = set(values) if isinstance(values, list) else {values} if values else set()
                if not values or not values <= allowed:
                    found.append(f"events:PutEvents with {key} {sorted(values)}: only {sorted(allowed)}")
    granted = {(g.action, g.resource) for g in stack.grants("OpsRole")}
    found += [f"OpsRole lacks {action} on {resource}" for action, resource in sorted(OPS_ACCESS - granted)]
    for key in ("HandoffKey", "HandoffTablesKey"):
        for statement in stack.key_policy(key)["Statement"]:
            if _principal_owner(stack, statement) == "OpsRole":
                found.append(f"{key} statement {statement.get('Sid')} names the ops API")
    return found


# Who may use NotificationsKey, and for what: the notifier to publish (through SNS only), CloudWatch for this
# account's alarm actions. The account administers it and cannot use it.
NOTIFICATIONS_KEY_USERS: dict[str, frozenset[str]] = {
    "NotifierRole": frozenset({"kms:Decrypt", "kms:GenerateDataKey"}),
    "service:cloudwatch.amazonaws.com": frozenset({"kms:Decrypt", "kms:GenerateDataKey*"}),
}


def notifications_key_problems(stack: Stack) -> list[str]:
    """NotificationsTopic is encrypted with NotificationsKey, whose key policy lets exactly NOTIFICATIONS_KEY_USERS
    use it, each under its condition (the notifier through SNS in the stack's region, CloudWatch for this account)."""
    found = []
    region, suffix = stack.resolver.pseudo["AWS::Region"], stack.resolver.pseudo["AWS::URLSuffix"]
    wanted_conditions = {
        "NotifierRole": {"StringEquals": {"kms:ViaService": f"sns.{region}.{suffix}"}},
        "service:cloudwatch.amazonaws.com": {
            "StringEquals": {"aws:SourceAccount": stack.resolver.pseudo["AWS::AccountId"]}
        },
    }
    used: dict[str, set[str]] = {}
    for statement in stack.key_policy("NotificationsKey")["Statement"]:
        sid = statement.get("Sid", "<no Sid>")
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement or "NotPrincipal" in statement:
            found.append(f"NotificationsKey/{sid}: NotAction/NotPrincipal")
        principal = statement.get("Principal", {})
        service = principal.get("Service") if isinstance(principal, dict) else None
        who = f"service:{service}" if isinstance(service, str) else _principal_owner(stack, statement)
        actions = set(_as_list(statement.get("Action")))
        crypto = {a for a in actions if a in KMS_CRYPTO_ACTIONS or "*" in a}
        if who == "root":
            found += [f"NotificationsKey/{sid}: the account may use the key ({a})" for a in sorted(crypto)]
            continue
        if who not in NOTIFICATIONS_KEY_USERS:
            found.append(f"NotificationsKey/{sid}: {who} may use the key")
            continue
        used.setdefault(who, set()).update(actions)
        if statement.get("Condition") != wanted_conditions[who]:
            found.append(f"NotificationsKey/{sid}: {who} without {wanted_conditions[who]}")
    for who, actions in NOTIFICATIONS_KEY_USERS.items():
        if used.get(who, set()) != actions:
            found.append(f"NotificationsKey lets {who} {sorted(used.get(who, set()))}, expected {sorted(actions)}")
    key = stack.properties("NotificationsKey")
    if key.get("EnableKeyRotation") is not True:
        found.append("NotificationsKey rotation is off")
    if stack.properties("NotificationsTopic").get("KmsMasterKeyId") != stack.ref("NotificationsKey"):
        found.append("NotificationsTopic is not encrypted with NotificationsKey")
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
        if g.service in CREDENTIAL_SERVICES
        and (g.role, g.action, g.resource) not in allowed
        # Assuming a member's role is checked, exactly, by member_assume_problems.
        and not is_member_assume(stack, g)
    ]
    granted = {(g.role, g.action, g.resource) for role in OWN_SECRET for g in stack.grants(role)}
    found += [f"{role} cannot read its own secret {resource}" for role, _, resource in sorted(allowed - granted)]
    return found


def catalogue_actions_outside_remediation(stack: Stack, role: str) -> list[str]:
    """Catalogue actions a function role holds, except on this stack's own resources that MAY_WRITE lists (the kill
    switch puts and deletes its deny policy on the remediation roles: iam:PutRolePolicy, also a catalogue action)."""
    mutating_catalogue = {action for action in declared_actions() if not is_read_only(action)}
    return [
        f"{g.role}: {g.action} is a remediation"
        for g in stack.grants(role)
        if g.action in mutating_catalogue and (g.action, g.resource) not in MAY_WRITE[role]
    ]


def unjustified_wildcards(stack: Stack, role: str) -> list[str]:
    found = []
    secrets = {stack.parameters[parameter] for parameter in SECRET_PARAMETERS}
    # The analyst's model, inference profile and guardrail (Bedrock's, outside the stack), for the agent's role only.
    analyst = (
        {resource.removeprefix("external:") for _, resource in analyst_grants(stack)} if role == ANALYST_ROLE else set()
    )
    for statement in stack.statements(role):
        sid = statement.get("Sid", "<no Sid>")
        denied = statement.get("Effect") == "Deny"
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
        for resource in [] if denied else resources:  # a Deny only narrows, whatever it names
            owner = stack.owner(resource)
            if owner.startswith("external:") and resource not in {
                *secrets,
                _CATALOGUE_TRAILS,
                _CONFIG_SERVICE_LINKED_ROLE,
                _CUSTOMER_MANAGED_POLICIES,
                DEFAULT_EVENT_BUS,
                ORG_SCAN_EXECUTIONS,
                ORG_SCAN_MAP_EXECUTIONS,
                *MEMBER_ROLE_ASSUMED_BY.values(),
                *analyst,
            }:
                found.append(
                    f"{role}/{sid}: {resource} is neither a resource of this stack, an Auth0 secret, a trail the "
                    "catalogue creates, the account's default event bus, an organization scan's execution, a "
                    "member account's role nor the analyst's model or guardrail"
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
_CUSTOMER_MANAGED_POLICIES = "arn:aws:iam::123456789012:policy/*"
_CONFIG_SERVICE_LINKED_ROLE = (
    "arn:aws:iam::123456789012:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
)
# Grants in a statement of their own beside the catalogue's, by (action, resource): the condition each must carry.
REMEDIATION_SCOPED_GRANTS: dict[tuple[str, str], dict[str, Any]] = {
    ("iam:CreateServiceLinkedRole", f"external:{_CONFIG_SERVICE_LINKED_ROLE}"): {
        "StringEquals": {"iam:AWSServiceName": "config.amazonaws.com"}
    },
    ("iam:PassRole", f"external:{_CONFIG_SERVICE_LINKED_ROLE}"): {
        "StringEquals": {"iam:PassedToService": "config.amazonaws.com"}
    },
}
REMEDIATION_CONDITIONS: dict[str, dict[str, Any]] = {
    "iam:PassRole": {"StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}},
    **{
        f"iam:{verb}{entity}Policy": _CUSTOMER_MANAGED
        for verb in ("Attach", "Detach")
        for entity in ("Group", "Role", "User")
    },
}
REMEDIATION_RESOURCES: dict[str, str] = {
    **{
        f"cloudtrail:{verb}": f"external:{_CATALOGUE_TRAILS}"
        for verb in ("CreateTrail", "StartLogging", "StopLogging", "DeleteTrail")
    },
    # replace-admin-policy-version: versions of this account's customer-managed policies only.
    **{
        f"iam:{verb}": f"external:{_CUSTOMER_MANAGED_POLICIES}"
        for verb in ("CreatePolicyVersion", "SetDefaultPolicyVersion")
    },
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
        scoped = REMEDIATION_SCOPED_GRANTS.get((grant.action, grant.resource))
        if scoped is not None:
            if grant.condition != scoped:
                found.append(f"{role}: {grant.action} has condition {dict(grant.condition)}, expected {scoped}")
            continue
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


def web_identity_trust_problems(
    stack: Stack, role: str = "RemediationRole", *, direction: Direction | None = None, provider: str | None = None
) -> list[str]:
    """Exactly one statement: web identity from the OIDC provider, for an approver's subject and the role's own
    audience (a forward token must never assume UndoRole). `direction` and `provider` default to template.yaml's:
    the role's direction by its logical id, the created or existing provider (member/template.yaml passes its own)."""
    trust = stack.trust_policy(role)
    statements = _as_list(trust.get("Statement"))
    host = stack.parameters["RemediationOidcProviderUrl"].removeprefix("https://")
    if provider is None:
        existing = stack.parameters["ExistingRemediationOidcProviderArn"]
        provider = existing or stack.ref("RemediationOidcProvider")
    if direction is None:
        direction = REMEDIATION_ROLES[role]
    audience = stack.parameters["RemediationOidcAudience" if direction == "forward" else "UndoOidcAudience"]
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


# Unscoped DynamoDB actions that return no item and no record: ListStreams answers stream ARNs only (a stream's
# records need GetRecords on that stream), and IAM scopes it to no resource.
STREAM_LISTING = frozenset({"dynamodb:ListStreams"})


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
                grant.resource == UNSCOPED and grant.service in {"dynamodb", "*"} and grant.action not in STREAM_LISTING
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
# Grants that follow the code: what a function's code calls, its role must grant
# ---------------------------------------------------------------------------------------------------------------------

KILLSWITCH_CODE = ROOT / "functions" / "killswitch" / "aegis_killswitch"
# The AWS clients the kill switch's code calls (its DynamoDB access goes through Table resources); Organizations and
# STS to reach the member accounts.
KILLSWITCH_SERVICES = ("iam", "events", "stepfunctions", "organizations", "sts")
# botocore's service name -> the IAM action prefix, where they differ.
IAM_PREFIX = {"stepfunctions": "states"}


def called_operations(paths: list[Path], services: tuple[str, ...]) -> set[tuple[str, str]]:
    """(service, Operation) of every AWS API these files can call, by method name or paginator name.

    A name that several of the services share (s3 and s3control both have get_public_access_block) counts for each
    of them, so the check errs towards requiring a grant.
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


# ---------------------------------------------------------------------------------------------------------------------
# Breaking a copy of template.yaml
# ---------------------------------------------------------------------------------------------------------------------


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The statements of `role`'s inline policy in an unresolved template, to change in place."""
    return template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def role_statement(template: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    return next(s for s in role_statements(template, role) if s.get("Sid") == sid)


# ---------------------------------------------------------------------------------------------------------------------
# The organization: the member roles this account may assume, the organization scan's roles
# ---------------------------------------------------------------------------------------------------------------------


def _member_assume_condition(stack: Stack) -> dict[str, Any]:
    """Only a role of an account of this stack's organization: with OrganizationId empty, no account's role."""
    return {"StringEquals": {"aws:ResourceOrgID": stack.parameters["OrganizationId"]}}


def is_member_assume(stack: Stack, grant: Grant) -> bool:
    """`grant` is exactly the member role assumption MEMBER_ROLE_ASSUMED_BY allows its role, with the condition."""
    wanted = MEMBER_ROLE_ASSUMED_BY.get(grant.role)
    return (
        wanted is not None
        and grant.action == "sts:AssumeRole"
        and grant.resource == f"external:{wanted}"
        and dict(grant.condition) == _member_assume_condition(stack)
    )


def member_assume_problems(stack: Stack) -> list[str]:
    """The only STS grants beyond the credential side's: the agent assumes members' AegisScanRole and the kill switch
    their AegisKillSwitchRole, each sts:AssumeRole only, on that role name only, inside the organization only."""
    found = []
    assumed: set[str] = set()
    for role in ALL_ROLES:
        if role not in stack.template["Resources"]:
            continue
        for grant in stack.grants(role):
            if grant.service != "sts":
                continue
            if is_member_assume(stack, grant):
                assumed.add(role)
            else:
                found.append(
                    f"{role}/{grant.sid}: {grant.action} on {grant.resource} with {dict(grant.condition)} is not a "
                    "member role this role may assume"
                )
    found += [f"{role} cannot assume {arn}" for role, arn in MEMBER_ROLE_ASSUMED_BY.items() if role not in assumed]
    return found


# The organization scan's listing reads the organization and writes only its own records: the item lists
# (org-scans/), the org#<id> item of the Missions table (its key, by condition) and its audit trail. Its reads of the
# Missions table are its own item and the ByOrgScan index.
ORG_ITEMS_ONLY = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": "org#*"}}
ORG_SCAN_ACCESS: dict[tuple[str, str], dict[str, Any]] = {
    **{
        (f"organizations:{verb}", UNSCOPED): {}
        for verb in (
            "DescribeOrganization",
            "ListAccounts",
            "ListAccountsForParent",
            "ListOrganizationalUnitsForParent",
        )
    },
    ("s3:PutObject", "OrgScanBucket/org-scans/*"): {},
    ("dynamodb:GetItem", "MissionsTable"): ORG_ITEMS_ONLY,
    ("dynamodb:PutItem", "MissionsTable"): ORG_ITEMS_ONLY,
    ("dynamodb:UpdateItem", "MissionsTable"): ORG_ITEMS_ONLY,
    ("dynamodb:Query", "MissionsTable/index/ByOrgScan"): {},
    ("dynamodb:PutItem", "AuditTable"): {},
    ("dynamodb:GetItem", "ControlTable"): {},
}


def org_scan_reach(stack: Stack) -> list[str]:
    """OrgScanRole: exactly ORG_SCAN_ACCESS (with its conditions), its tables' key through DynamoDB only, its own
    logs and traces; no secret, no STS, no key, no other bucket or table."""
    found = []
    granted: dict[tuple[str, str], dict[str, Any]] = {}
    for grant in stack.grants("OrgScanRole"):
        if grant.service in {"logs", "xray"}:
            continue
        if grant.resource == "TablesKey" and through_dynamodb(stack, grant):
            continue
        if grant.service in CREDENTIAL_SERVICES or grant.service == "kms":
            found.append(
                f"{grant.action} on {grant.resource}: the organization scan holds no secret, credential or key"
            )
        granted[(grant.action, grant.resource)] = dict(grant.condition)
    for key in sorted(set(granted) | set(ORG_SCAN_ACCESS)):
        if key not in ORG_SCAN_ACCESS:
            found.append(f"OrgScanRole: {key[0]} on {key[1]} is beyond listing accounts and recording the scan")
        elif key not in granted:
            found.append(f"OrgScanRole lacks {key[0]} on {key[1]}")
        elif granted[key] != ORG_SCAN_ACCESS[key]:
            found.append(
                f"OrgScanRole: {key[0]} on {key[1]} has condition {granted[key]}, expected {ORG_SCAN_ACCESS[key]}"
            )
    return found


def org_scan_state_machine_reach(stack: Stack) -> list[str]:
    """OrgScanStateMachineRole invokes exactly OrgScanFunction and AgentScanFunction (never the executor, approval or
    kill switch), reads only the item lists and writes only the Map's results."""
    found = []
    invoked = {g.resource for g in stack.grants("OrgScanStateMachineRole") if g.service == "lambda"}
    if invoked != {"OrgScanFunction", "AgentScanFunction"}:
        found.append(f"OrgScanStateMachineRole invokes {sorted(invoked)}, not exactly the org-scan and scan functions")
    for grant in stack.grants("OrgScanStateMachineRole"):
        if grant.service in CREDENTIAL_SERVICES or grant.service in {"kms", "dynamodb", "iam"}:
            found.append(f"{grant.action} on {grant.resource}: the organization scan's state machine only orchestrates")
        if grant.service == "s3" and not (
            (grant.action == "s3:GetObject" and grant.resource == "OrgScanBucket/org-scans/*")
            or grant.resource == "OrgScanBucket/org-scan-results/*"
        ):
            found.append(f"{grant.action} on {grant.resource}: beyond the item lists and the Map's results")
    found += writes_beyond_domain(stack, "OrgScanStateMachineRole")
    return found
