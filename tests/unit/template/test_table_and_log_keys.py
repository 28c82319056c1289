"""Who can open what the stack stores: the tables' customer-managed keys, the logs key, and the hand-off kept out
of the agent's reach.

DynamoDB uses a table's key with its caller's identity, so a role that reads or writes a table needs the key in its
own IAM policy (the key policies cannot name the roles: key -> role -> table -> key would be a dependency cycle).
Each key policy therefore lets the account grant the key only through DynamoDB, and these checks prove that the
roles holding each key are exactly the roles using its tables. As in iam_matrix.py, every check returns what is
wrong; each runs on template.yaml (nothing may be wrong) and on copies broken one way (the break must be reported).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.stack import UNSCOPED, Stack, build_stack, pristine_template
from tests.unit.template.iam_matrix import (
    KMS_CRYPTO_ACTIONS,
    TABLE_KEYS,
    role_statement,
    role_statements,
    through_dynamodb,
)

# The approval side's tables (sealed handoffs; continuations holding task tokens) have a key of their own, which
# the agent never holds; every other table uses TablesKey.
HANDOFF_SIDE_TABLES = frozenset({"HandoffTable", "ContinuationsTable"})
# What DynamoDB's own service principal may do with a table's key: read its metadata, never use it.
DYNAMODB_METADATA_ACTIONS = frozenset({"kms:Describe*", "kms:Get*", "kms:List*"})
# The log groups the logs key is for, as CloudWatch Logs names them in the encryption context.
LOG_GROUP_PREFIXES = ("/aws/lambda/{stack}-", "/aws/vendedlogs/states/{stack}-", "/aws/vendedlogs/apigateway/{stack}-")


def _roles(stack: Stack) -> list[str]:
    return sorted(stack.resources_of_type("AWS::IAM::Role"))


def _crypto(actions: Any) -> set[str]:
    """The cryptographic KMS actions that `actions` (wildcards allowed) grant."""
    patterns = [a.lower() for a in (actions if isinstance(actions, list) else [actions])]
    return {a for a in KMS_CRYPTO_ACTIONS for p in patterns if fnmatch.fnmatchcase(a.lower(), p)}


def _root(stack: Stack) -> str:
    pseudo = stack.resolver.pseudo
    return f"arn:{pseudo['AWS::Partition']}:iam::{pseudo['AWS::AccountId']}:root"


def _service(stack: Stack, name: str) -> str:
    return f"{name}.{stack.resolver.pseudo['AWS::Region']}.{stack.resolver.pseudo['AWS::URLSuffix']}"


def table_key(stack: Stack, table: str) -> str | None:
    """The logical id of the key `table` is encrypted with (None: not a key of this stack, or none)."""
    sse = stack.properties(table).get("SSESpecification") or {}
    keys = {stack.ref(key): key for key in stack.resources_of_type("AWS::KMS::Key")}
    keys |= {stack.arn(key): key for key in stack.resources_of_type("AWS::KMS::Key")}
    return keys.get(sse.get("KMSMasterKeyId", ""))


# ---------------------------------------------------------------------------------------------------------------------
# The checks (each returns what is wrong)
# ---------------------------------------------------------------------------------------------------------------------


def table_encryption_problems(stack: Stack) -> list[str]:
    """Every table is encrypted with a customer-managed key of its own kind: the hand-off side's tables with
    HandoffTablesKey, every other table with TablesKey; never with HandoffKey, which only seals handoffs."""
    found = []
    for table in sorted(stack.resources_of_type("AWS::DynamoDB::Table")):
        sse = stack.properties(table).get("SSESpecification") or {}
        expected = "HandoffTablesKey" if table in HANDOFF_SIDE_TABLES else "TablesKey"
        if sse.get("SSEEnabled") is not True or sse.get("SSEType") != "KMS":
            found.append(f"{table} is not encrypted with a KMS key: {sse}")
        elif (key := table_key(stack, table)) != expected:
            found.append(f"{table} is encrypted with {key or sse.get('KMSMasterKeyId')}, expected {expected}")
    return found


def table_users(stack: Stack, key: str) -> set[str]:
    """The roles with a DynamoDB grant on a table encrypted with `key` (its indexes and stream included)."""
    tables = {t for t in stack.resources_of_type("AWS::DynamoDB::Table") if table_key(stack, t) == key}
    return {
        g.role
        for role in _roles(stack)
        for g in stack.grants(role)
        if g.service == "dynamodb" and g.resource.split("/")[0].split(".")[0] in tables
    }


def table_key_holder_problems(stack: Stack, key: str) -> list[str]:
    """The roles holding `key` are exactly the roles using its tables, each only through DynamoDB and at least
    able to decrypt; no role holds a KMS action on every key."""
    found = []
    holders: dict[str, set[str]] = {}
    for role in _roles(stack):
        for grant in stack.grants(role):
            if grant.resource == UNSCOPED and _crypto(grant.action):
                found.append(f"{role}/{grant.sid}: {grant.action} on every key")
            if grant.resource != key:
                continue
            holders.setdefault(role, set()).add(grant.action)
            if not through_dynamodb(stack, grant):
                found.append(f"{role}/{grant.sid}: {grant.action} on {key} is not limited to DynamoDB")
    users = table_users(stack, key)
    found += [
        f"{role} uses a table encrypted with {key} but cannot use the key" for role in sorted(users - set(holders))
    ]
    found += [f"{role} holds {key} but uses none of its tables" for role in sorted(set(holders) - users)]
    found += [
        f"{role} holds {sorted(actions)} on {key} but not kms:Decrypt"
        for role, actions in sorted(holders.items())
        if "kms:Decrypt" not in actions
    ]
    return found


def table_key_policy_problems(stack: Stack, key: str) -> list[str]:
    """The key policy names no role and no other account: the account administers the key, grants its use only
    through DynamoDB (and lets DynamoDB grant itself the key for a table), and DynamoDB reads its metadata."""
    found = []
    dynamodb = {
        "kms:ViaService": _service(stack, "dynamodb"),
        "kms:CallerAccount": stack.resolver.pseudo["AWS::AccountId"],
    }
    for statement in stack.key_policy(key)["Statement"]:
        sid = statement.get("Sid", "<no Sid>")
        if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotPrincipal" in statement:
            found.append(f"{key}/{sid}: only plain Allow statements are expected")
            continue
        principal = statement.get("Principal")
        crypto = _crypto(statement.get("Action"))
        if principal == {"Service": "dynamodb.amazonaws.com"}:
            actions = statement.get("Action")
            if set(actions if isinstance(actions, list) else [actions]) - DYNAMODB_METADATA_ACTIONS:
                found.append(f"{key}/{sid}: DynamoDB's service principal may only read the key's metadata")
        elif principal != {"AWS": _root(stack)}:
            found.append(f"{key}/{sid}: names {principal}; only the account (through IAM) may be granted the key")
        elif crypto:
            condition = statement.get("Condition") or {}
            wanted: dict[str, Any] = {"StringEquals": dynamodb}
            if crypto == {"kms:CreateGrant"}:
                wanted["Bool"] = {"kms:GrantIsForAWSResource": "true"}
            elif "kms:CreateGrant" in crypto:
                found.append(f"{key}/{sid}: CreateGrant belongs in a statement of its own (for AWS resources)")
            if condition != wanted:
                found.append(f"{key}/{sid}: {sorted(crypto)} under {condition}, expected {wanted}")
    if stack.properties(key).get("EnableKeyRotation") is not True:
        found.append(f"{key} rotation is off")
    return found


def logs_key_problems(stack: Stack) -> list[str]:
    """Every log group is encrypted with LogsKey; only CloudWatch Logs may use that key, and only for this stack's
    log groups (by the aws:logs:arn encryption context); no role holds any grant on it."""
    found = []
    pseudo = stack.resolver.pseudo
    logs_arn = f"arn:{pseudo['AWS::Partition']}:logs:{pseudo['AWS::Region']}:{pseudo['AWS::AccountId']}:log-group:"
    expected_patterns = {
        logs_arn + prefix.format(stack=pseudo["AWS::StackName"]) + "*" for prefix in LOG_GROUP_PREFIXES
    }
    patterns: set[str] = set()
    for statement in stack.key_policy("LogsKey")["Statement"]:
        sid = statement.get("Sid", "<no Sid>")
        crypto = _crypto(statement.get("Action"))
        if not crypto:
            if statement.get("Principal") != {"AWS": _root(stack)}:
                found.append(f"LogsKey/{sid}: only the account administers the key")
            continue
        if statement.get("Principal") != {"Service": _service(stack, "logs")}:
            found.append(f"LogsKey/{sid}: {sorted(crypto)} for {statement.get('Principal')}, not CloudWatch Logs")
        context = (statement.get("Condition") or {}).get("ArnLike", {}).get("kms:EncryptionContext:aws:logs:arn")
        statement_patterns = set(context if isinstance(context, list) else [context] if context else [])
        if statement_patterns != expected_patterns:
            found.append(
                f"LogsKey/{sid}: log groups {sorted(statement_patterns)}, expected {sorted(expected_patterns)}"
            )
        patterns |= statement_patterns
    for group in sorted(stack.resources_of_type("AWS::Logs::LogGroup")):
        properties = stack.properties(group)
        if properties.get("KmsKeyId") != stack.arn("LogsKey"):
            found.append(f"{group} is encrypted with {properties.get('KmsKeyId')}, not LogsKey")
        arn = logs_arn + str(properties.get("LogGroupName"))
        if not any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns):
            found.append(f"{group} ({properties.get('LogGroupName')}) is outside what LogsKey may encrypt")
    found += [
        f"{g.role}/{g.sid}: {g.action} on LogsKey"
        for role in _roles(stack)
        for g in stack.grants(role)
        if g.resource == "LogsKey"
    ]
    if stack.properties("LogsKey").get("EnableKeyRotation") is not True:
        found.append("LogsKey rotation is off")
    return found


def agent_hand_off_paths(stack: Stack) -> list[str]:
    """Every way the agent could decrypt a hand-off: HandoffKey naming it or encrypting something it reads, a grant
    on HandoffKey or on the hand-off tables' key, or a KMS action on every key."""
    found = []
    for statement in stack.key_policy("HandoffKey")["Statement"]:
        principal = statement.get("Principal")
        aws = principal.get("AWS") if isinstance(principal, dict) else principal
        if aws == stack.arn("AgentRole") or aws == "*":
            found.append(f"HandoffKey/{statement.get('Sid')} names {aws}")
    handoff_key = {stack.ref("HandoffKey"), stack.arn("HandoffKey")}
    for table in stack.resources_of_type("AWS::DynamoDB::Table"):
        if (stack.properties(table).get("SSESpecification") or {}).get("KMSMasterKeyId") in handoff_key:
            found.append(f"HandoffKey encrypts {table}")
    for group in stack.resources_of_type("AWS::Logs::LogGroup"):
        if stack.properties(group).get("KmsKeyId") in handoff_key:
            found.append(f"HandoffKey encrypts {group}")
    for grant in stack.grants("AgentRole"):
        if grant.resource in {"HandoffKey", "HandoffTablesKey"} or (
            grant.resource == UNSCOPED and _crypto(grant.action)
        ):
            found.append(f"AgentRole/{grant.sid}: {grant.action} on {grant.resource}")
    if "AgentRole" in table_users(stack, "HandoffTablesKey"):
        found.append("AgentRole reads or writes a hand-off table")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# On template.yaml
# ---------------------------------------------------------------------------------------------------------------------


def test_every_table_has_the_customer_managed_key_of_its_side(stack: Stack) -> None:
    assert table_encryption_problems(stack) == []


@pytest.mark.parametrize("key", TABLE_KEYS)
def test_each_table_key_is_held_exactly_by_the_roles_using_its_tables(stack: Stack, key: str) -> None:
    assert table_users(stack, key) != set()
    assert table_key_holder_problems(stack, key) == []


def test_the_agent_holds_the_shared_tables_key_and_the_hand_off_side_holds_its_own(stack: Stack) -> None:
    assert {"AgentRole", "ValidatorRole", "ExecutorRole"} <= table_users(stack, "TablesKey")
    assert table_users(stack, "HandoffTablesKey") == {"ApprovalRole", "ExecutorRole", "KillSwitchRole"}


@pytest.mark.parametrize("key", TABLE_KEYS)
def test_each_table_key_policy_grants_only_through_dynamodb(stack: Stack, key: str) -> None:
    assert table_key_policy_problems(stack, key) == []


def test_the_logs_key_serves_cloudwatch_logs_only_for_this_stacks_log_groups(stack: Stack) -> None:
    assert logs_key_problems(stack) == []


def test_the_agent_cannot_decrypt_a_hand_off(stack: Stack) -> None:
    assert agent_hand_off_paths(stack) == []


def test_the_shared_tables_key_outlives_the_stack_with_the_tables_it_opens(stack: Stack) -> None:
    kept = {
        t
        for t, body in stack.resources_of_type("AWS::DynamoDB::Table").items()
        if body.get("DeletionPolicy") == "Retain"
    }
    assert {table_key(stack, table) for table in kept} == {"TablesKey"}
    assert stack.resource("TablesKey")["DeletionPolicy"] == "Retain"
    assert stack.resource("TablesKey")["UpdateReplacePolicy"] == "Retain"


# ---------------------------------------------------------------------------------------------------------------------
# Each check catches the break it exists for
# ---------------------------------------------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]
_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def _key_statements(template: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return _properties(template, key)["KeyPolicy"]["Statement"]


def _key_statement(template: dict[str, Any], key: str, sid: str) -> dict[str, Any]:
    return next(s for s in _key_statements(template, key) if s.get("Sid") == sid)


def _encrypt_table(table: str, key: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _properties(template, table)["SSESpecification"]["KMSMasterKeyId"] = {"Ref": key}

    return mutate


def _add_table_without_key(template: dict[str, Any]) -> None:
    template["Resources"]["ReportsTable"] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "SSESpecification": {"SSEEnabled": True},
        },
    }


def _allow(role: str, action: str, resource: Any, **fields: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        role_statements(template, role).append({"Effect": "Allow", "Action": action, "Resource": resource, **fields})

    return mutate


def _drop_key_grant(role: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        statements = role_statements(template, role)
        statements[:] = [s for s in statements if s.get("Sid") != "TableKeysThroughDynamoDB"]

    return mutate


def _agent_key_grant(**fields: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        role_statement(template, "AgentRole", "TableKeysThroughDynamoDB").update(fields)

    return mutate


def _add_key_statement(key: str, statement: dict[str, Any]) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _key_statements(template, key).append(statement)

    return mutate


def _loosen_dynamodb_statement(key: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _key_statement(template, key, "TableUsersThroughDynamoDBOnly").pop("Condition")

    return mutate


def _log_group(group: str, **fields: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        properties = _properties(template, group)
        for name, value in fields.items():
            if value is None:
                properties.pop(name)
            else:
                properties[name] = value

    return mutate


def _logs_key_without_context(template: dict[str, Any]) -> None:
    _key_statement(template, "LogsKey", "CloudWatchLogsEncryptsTheStacksLogGroups").pop("Condition")


_CAUGHT_BY: list[tuple[Callable[[Stack], list[str]], dict[str, Mutation]]] = [
    (
        table_encryption_problems,
        {
            "a new table under AWS's key": _add_table_without_key,
            "the handoff table under the shared key": _encrypt_table("HandoffTable", "TablesKey"),
            "the audit table under the hand-off side's key": _encrypt_table("AuditTable", "HandoffTablesKey"),
        },
    ),
    (
        lambda s: table_key_holder_problems(s, "TablesKey"),
        {
            "a table user cannot open the key": _drop_key_grant("ValidatorRole"),
            "the key usable outside DynamoDB": _agent_key_grant(Condition={}),
            "the key usable through another service": _agent_key_grant(
                Condition={"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
            ),
            "a role that uses no table holds the key": _allow(
                "StateMachineRole",
                "kms:Decrypt",
                _arn("TablesKey"),
                Condition={
                    "StringEquals": {"kms:ViaService": {"Fn::Sub": "dynamodb.${AWS::Region}.${AWS::URLSuffix}"}}
                },
            ),
            "a role decrypts with every key": _allow("ApprovalRole", "kms:Decrypt", "*"),
        },
    ),
    (
        lambda s: table_key_holder_problems(s, "HandoffTablesKey"),
        {
            "the agent holds the hand-off tables' key": _agent_key_grant(
                Resource=[_arn("TablesKey"), _arn("HandoffTablesKey")]
            ),
            "the kill switch cannot open the handoff table": _drop_key_grant("KillSwitchRole"),
        },
    ),
    (
        lambda s: table_key_policy_problems(s, "TablesKey"),
        {
            "the key policy names a role": _add_key_statement(
                "TablesKey",
                {"Effect": "Allow", "Principal": {"AWS": _arn("AgentRole")}, "Action": "kms:Decrypt", "Resource": "*"},
            ),
            "the account may use the key directly": _loosen_dynamodb_statement("TablesKey"),
            "the account gets every KMS action": _add_key_statement(
                "TablesKey", {"Effect": "Allow", "Principal": {"AWS": _ROOT}, "Action": "kms:*", "Resource": "*"}
            ),
            "DynamoDB's principal may decrypt": lambda t: _key_statement(
                t, "TablesKey", "DynamoDBReadsTheKeysMetadata"
            )["Action"].append("kms:Decrypt"),
            "grants for anything, not only for the table": lambda t: _key_statement(
                t, "TablesKey", "DeployerLetsDynamoDBGrantItself"
            )["Condition"].pop("Bool"),
            "rotation off": lambda t: _properties(t, "TablesKey").update(EnableKeyRotation=False),
        },
    ),
    (
        lambda s: table_key_policy_problems(s, "HandoffTablesKey"),
        {
            "the account may use the hand-off tables' key directly": _loosen_dynamodb_statement("HandoffTablesKey"),
        },
    ),
    (
        logs_key_problems,
        {
            "a log group without the logs key": _log_group("ValidatorLogGroup", KmsKeyId=None),
            "a log group under the handoff key": _log_group("ExecutorLogGroup", KmsKeyId=_arn("HandoffKey")),
            "a log group named outside the stack's prefixes": _log_group(
                "ValidatorLogGroup", LogGroupName="/aegis/validator"
            ),
            "the logs key usable for any log group": _logs_key_without_context,
            "a role holds the logs key": _allow("ExecutorRole", "kms:Decrypt", _arn("LogsKey")),
            "the logs key usable by a role": _add_key_statement(
                "LogsKey",
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": _arn("ExecutorRole")},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                },
            ),
        },
    ),
    (
        agent_hand_off_paths,
        {
            "the handoff key names the agent": _add_key_statement(
                "HandoffKey",
                {"Effect": "Allow", "Principal": {"AWS": _arn("AgentRole")}, "Action": "kms:Decrypt", "Resource": "*"},
            ),
            "the agent holds the hand-off tables' key": _agent_key_grant(
                Resource=[_arn("TablesKey"), _arn("HandoffTablesKey")]
            ),
            "the agent holds the handoff key": _allow("AgentRole", "kms:Decrypt", _arn("HandoffKey")),
            "the agent decrypts with every key": _allow("AgentRole", "kms:Decrypt", "*"),
            "a table the agent reads under the handoff key": _encrypt_table("MissionsTable", "HandoffKey"),
            "the agent reads the continuations": _allow("AgentRole", "dynamodb:GetItem", _arn("ContinuationsTable")),
        },
    ),
]
_MUTATIONS = {name: (mutate, check) for check, breaks in _CAUGHT_BY for name, mutate in breaks.items()}


@pytest.mark.parametrize("break_it", list(_MUTATIONS))
def test_each_key_check_catches(break_it: str) -> None:
    mutate, check = _MUTATIONS[break_it]
    template = pristine_template()
    mutate(template)
    assert check(build_stack(template)) != [], f"the check did not notice: {break_it}"
