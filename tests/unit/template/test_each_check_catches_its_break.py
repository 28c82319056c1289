"""Each check of iam_matrix.py catches the break it exists for: the check runs on a copy of template.yaml broken in one
way, and must report it. A check that could not fail would show up here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.stack import Stack, build_stack, pristine_template
from tests.unit.template.iam_matrix import (
    HANDOFF_CONTEXT_KEYS,
    agent_credential_reach,
    audit_index_problems,
    catalogue_actions_outside_remediation,
    credential_readers,
    handoff_access_problems,
    key_policy_problems,
    kill_switch_calls_not_granted,
    member_assume_problems,
    mission_ended_rule_problems,
    ops_reach,
    org_scan_reach,
    org_scan_state_machine_reach,
    remediation_role_problems,
    role_statement,
    role_statements,
    unjustified_wildcards,
    unknown_actions,
    validator_reach,
    writes_beyond_domain,
)

# Breaks a copy of template.yaml in place.
Mutation = Callable[[dict[str, Any]], None]


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _allow(role: str, action: str, resource: Any, **fields: Any) -> Mutation:
    """`role` gains a statement allowing `action` on `resource` (a Sid or a Condition among `fields`)."""

    def mutate(template: dict[str, Any]) -> None:
        role_statements(template, role).append({"Effect": "Allow", "Action": action, "Resource": resource, **fields})

    return mutate


def _drop_statement(role: str, sid: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        statements = role_statements(template, role)
        statements[:] = [s for s in statements if s.get("Sid") != sid]

    return mutate


def _update_statement(role: str, sid: str, **fields: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        role_statement(template, role, sid).update(fields)

    return mutate


def _drop_condition(role: str, sid: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        role_statement(template, role, sid).pop("Condition")

    return mutate


def _add_catalogue_gap(template: dict[str, Any]) -> None:
    catalogue = role_statement(template, "RemediationRole", "ApplyDeclaredByTheCatalogue")
    catalogue["Action"] = [a for a in catalogue["Action"] if a != "ec2:RevokeSecurityGroupIngress"]


def _move_to_remediation_role(action: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        role_statement(template, "RemediationRole", "ApplyDeclaredByTheCatalogue")["Action"].append(action)

    return mutate


def _properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def _first_index(template: dict[str, Any], table: str) -> dict[str, Any]:
    return _properties(template, table)["GlobalSecondaryIndexes"][0]


def _mission_ended_detail(template: dict[str, Any]) -> dict[str, Any]:
    """The `detail` of the pattern by which the purge of ended executions is triggered."""
    return _properties(template, "MissionEndedRule")["EventPattern"]["detail"]


def _key_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return template["Resources"]["HandoffKey"]["Properties"]["KeyPolicy"]["Statement"]


def _key_statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in _key_statements(template) if s["Sid"] == sid)


def _add_key_statement(statement: dict[str, Any]) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _key_statements(template).append(statement)

    return mutate


def _key_grant(role: str, action: str) -> Mutation:
    """The handoff key lets `role` use `action`, under the encryption context the real grants require."""
    return _add_key_statement(
        {
            "Effect": "Allow",
            "Principal": {"AWS": _arn(role)},
            "Action": action,
            "Resource": "*",
            "Condition": {"Null": {f"kms:EncryptionContext:{k}": "false" for k in HANDOFF_CONTEXT_KEYS}},
        }
    )


def _trust_policy_text(template: dict[str, Any], role: str) -> list[Any]:
    """The Fn::Sub [text, variables] of `role`'s trust policy."""
    return template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]


def _set_trust_condition(template: dict[str, Any]) -> None:
    sub = _trust_policy_text(template, "RemediationRole")
    sub[0] = sub[0].replace('"StringEquals"', '"StringLike"')


def _trust_without_subject(role: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        sub = _trust_policy_text(template, role)
        sub[0] = sub[0].replace(', "${ProviderHost}:sub": ${Subjects}', "")

    return mutate


def _undo_trusts_forward_audience(template: dict[str, Any]) -> None:
    sub = _trust_policy_text(template, "UndoRole")
    sub[0] = sub[0].replace("${UndoOidcAudience}", "${RemediationOidcAudience}")


_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


def _member_role(name: str) -> dict[str, Any]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::*:role/{name}"}


# Each check, and the breaks of template.yaml it must catch.
_CAUGHT_BY: list[tuple[Callable[[Stack], list[str]], dict[str, Mutation]]] = [
    (
        handoff_access_problems,
        {
            # --- the hand-off (HANDOFF_ACCESS) ---
            "executor reads a handoff without consuming it": _allow(
                "ExecutorRole", "dynamodb:GetItem", _arn("HandoffTable")
            ),
            "executor deletes a handoff without the ReturnValues condition": _drop_condition(
                "ExecutorRole", "ConsumeHandoffs"
            ),
            "executor's delete condition loosened to any ReturnValues": _update_statement(
                "ExecutorRole", "ConsumeHandoffs", Condition={"StringLike": {"dynamodb:ReturnValues": "*"}}
            ),
            "executor queries the handoff index": _allow(
                "ExecutorRole", "dynamodb:Query", {"Fn::Sub": "${HandoffTable.Arn}/index/by-execution"}
            ),
            "executor reads continuations": _allow("ExecutorRole", "dynamodb:GetItem", _arn("ContinuationsTable")),
            "continuations go back into the handoff table": _update_statement(
                "ApprovalRole", "ContinuationsAndClaims", Resource=_arn("HandoffTable")
            ),
            "approval reads a sealed handoff back": _allow("ApprovalRole", "dynamodb:GetItem", _arn("HandoffTable")),
            "kill switch reads the handoff table itself": _allow(
                "KillSwitchRole", "dynamodb:Scan", _arn("HandoffTable")
            ),
            "kill switch purges with DeleteItem, which can return the item": _allow(
                "KillSwitchRole",
                "dynamodb:DeleteItem",
                _arn("HandoffTable"),
                Condition={"StringEquals": {"dynamodb:ReturnValues": "NONE"}},
            ),
            "kill switch can no longer purge": _drop_statement("KillSwitchRole", "PurgeUnconsumedHandoffs"),
            "agent reads continuations": _allow("AgentRole", "dynamodb:GetItem", _arn("ContinuationsTable")),
            "the handoff index projects the ciphertext": lambda t: _first_index(t, "HandoffTable").update(
                Projection={"ProjectionType": "ALL"}
            ),
            "the handoff index includes the ciphertext": lambda t: _first_index(t, "HandoffTable").update(
                Projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": ["ciphertext", "encrypted_key"]}
            ),
        },
    ),
    (
        mission_ended_rule_problems,
        {
            # --- the purge of ended executions ---
            "an execution stopped by hand is not purged": lambda t: _mission_ended_detail(t)["status"].remove(
                "ABORTED"
            ),
            "the purge listens to every state machine": lambda t: _mission_ended_detail(t).pop("stateMachineArn"),
            "EventBridge may not invoke the purge": lambda t: t["Resources"].pop("MissionEndedPermission"),
        },
    ),
    (
        kill_switch_calls_not_granted,
        {
            # --- the kill switch halts both remediation roles ---
            "kill switch cannot halt UndoRole": _update_statement(
                "KillSwitchRole", "RevokeRemediationSessions", Resource=_arn("RemediationRole")
            ),
            "kill switch cannot list the members": _drop_statement("KillSwitchRole", "ListMemberAccounts"),
        },
    ),
    (
        lambda s: writes_beyond_domain(s, "AgentRole"),
        {
            "agent revokes a security group rule": _allow("AgentRole", "ec2:RevokeSecurityGroupIngress", "*"),
        },
    ),
    (
        agent_credential_reach,
        {
            "agent reads a secret": _allow(
                "AgentRole", "secretsmanager:GetSecretValue", {"Ref": "ApprovalAuth0ClientSecretArn"}
            ),
            "agent decrypts": _allow("AgentRole", "kms:Decrypt", "*"),
            "agent assumes a role": _allow("AgentRole", "sts:AssumeRole", "*"),
            "agent reads the handoff table": _allow("AgentRole", "dynamodb:GetItem", _arn("HandoffTable")),
            "agent sends a task decision": _allow("AgentRole", "states:SendTaskSuccess", "*"),
            "agent invokes the executor": _allow("AgentRole", "lambda:InvokeFunction", _arn("ExecutorFunction")),
        },
    ),
    (
        credential_readers,
        {
            "kill switch reads the approval application's secret": _allow(
                "KillSwitchRole", "secretsmanager:GetSecretValue", {"Ref": "ApprovalAuth0ClientSecretArn"}
            ),
            # The approval role with the executor's application could run the Token Vault exchange and STS itself.
            "approval reads the executor application's secret": _allow(
                "ApprovalRole", "secretsmanager:GetSecretValue", {"Ref": "ExecutorAuth0ClientSecretArn"}
            ),
            # The executor with the approval application's secret could send CIBA requests.
            "executor reads the approval application's secret": _allow(
                "ExecutorRole", "secretsmanager:GetSecretValue", {"Ref": "ApprovalAuth0ClientSecretArn"}
            ),
            "executor reads the kill switch's secret": _allow(
                "ExecutorRole", "secretsmanager:GetSecretValue", {"Ref": "KillSwitchAuth0ClientSecretArn"}
            ),
            "kill switch can no longer read its own secret": _drop_statement(
                "KillSwitchRole", "ReadKillSwitchClientSecret"
            ),
            "executor reads another secret": _allow(
                "ExecutorRole",
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-XyZ123",
            ),
        },
    ),
    (
        remediation_role_problems,
        {
            "a forward token could widen access": _move_to_remediation_role("ec2:AuthorizeSecurityGroupIngress"),
            "remediation role could detach an AWS-managed policy": _drop_condition(
                "RemediationRole", "DetachCustomerManagedPoliciesOnly"
            ),
            "remediation role trusts any subject of the provider": _trust_without_subject("RemediationRole"),
            "remediation role grants more than the catalogue": _allow("RemediationRole", "ec2:TerminateInstances", "*"),
            "remediation role lacks a catalogue action": _add_catalogue_gap,
            "remediation role trust loosened": _set_trust_condition,
            "remediation role sessions last longer": lambda t: _properties(t, "RemediationRole").update(
                MaxSessionDuration=43200
            ),
        },
    ),
    (
        lambda s: remediation_role_problems(s, "UndoRole"),
        {
            "undo role could attach AdministratorAccess": _drop_condition(
                "UndoRole", "AttachCustomerManagedPoliciesOnly"
            ),
            "undo role could stop the organisation's trails": _update_statement(
                "UndoRole", "StopCatalogueTrailsOnly", Resource="*"
            ),
            "undo role trusts any subject of the provider": _trust_without_subject("UndoRole"),
            "undo role trusts the forward audience": _undo_trusts_forward_audience,
        },
    ),
    (
        member_assume_problems,
        {
            # --- the member roles this account may assume ---
            "agent assumes a member's remediation role": _update_statement(
                "AgentRole", "ReadMemberAccounts", Resource=_member_role("AegisRemediationRole")
            ),
            "agent assumes any role of any account": _update_statement(
                "AgentRole", "ReadMemberAccounts", Resource=_member_role("*")
            ),
            "agent assumes scan roles outside the organization": _drop_condition("AgentRole", "ReadMemberAccounts"),
            "agent's organization condition loosened": _update_statement(
                "AgentRole", "ReadMemberAccounts", Condition={"StringLike": {"aws:ResourceOrgID": "*"}}
            ),
            "agent exchanges a web identity token": _allow("AgentRole", "sts:AssumeRoleWithWebIdentity", "*"),
            "agent can no longer read members": _drop_statement("AgentRole", "ReadMemberAccounts"),
            "kill switch assumes a member's scan role": _update_statement(
                "KillSwitchRole", "HaltMemberAccounts", Resource=_member_role("AegisScanRole")
            ),
            "kill switch halts members outside the organization": _drop_condition(
                "KillSwitchRole", "HaltMemberAccounts"
            ),
            "kill switch can no longer halt members": _drop_statement("KillSwitchRole", "HaltMemberAccounts"),
            "the organization scan assumes a role": _allow(
                "OrgScanRole", "sts:AssumeRole", _member_role("AegisScanRole")
            ),
            "the ops API assumes a member's scan role": _allow(
                "OpsRole",
                "sts:AssumeRole",
                _member_role("AegisScanRole"),
                Condition={"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}},
            ),
        },
    ),
    (
        org_scan_reach,
        {
            # --- the organization scan's listing ---
            "org scan reads a secret": _allow(
                "OrgScanRole", "secretsmanager:GetSecretValue", {"Ref": "ExecutorAuth0ClientSecretArn"}
            ),
            "org scan writes anywhere in its bucket": _update_statement(
                "OrgScanRole", "WriteScanItems", Resource={"Fn::Sub": "${OrgScanBucket.Arn}/*"}
            ),
            "org scan writes any mission": _update_statement(
                "OrgScanRole",
                "RecordOrganizationScan",
                Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": "*"}},
            ),
            "org scan deletes a mission": _allow("OrgScanRole", "dynamodb:DeleteItem", _arn("MissionsTable")),
            "org scan writes the halt flag": _allow("OrgScanRole", "dynamodb:PutItem", _arn("ControlTable")),
            "org scan decrypts": _allow("OrgScanRole", "kms:Decrypt", "*"),
            "org scan mutates an account": _allow("OrgScanRole", "organizations:RemoveAccountFromOrganization", "*"),
            "org scan cannot list accounts": _drop_statement("OrgScanRole", "ListOrganizationAccounts"),
        },
    ),
    (
        org_scan_state_machine_reach,
        {
            # --- the organization scan's state machine ---
            "org-scan state machine invokes the executor": _update_statement(
                "OrgScanStateMachineRole",
                "InvokeOrgScanFunctions",
                Resource=[_arn("OrgScanFunction"), _arn("AgentScanFunction"), _arn("ExecutorFunction")],
            ),
            "org-scan state machine reads the whole bucket": _allow(
                "OrgScanStateMachineRole", "s3:GetObject", {"Fn::Sub": "${OrgScanBucket.Arn}/*"}
            ),
            "org-scan state machine writes a mission": _allow(
                "OrgScanStateMachineRole", "dynamodb:PutItem", _arn("MissionsTable")
            ),
            "org-scan state machine starts a mission itself": _allow(
                "OrgScanStateMachineRole", "states:StartExecution", {"Ref": "MissionStateMachine"}
            ),
        },
    ),
    (
        lambda s: writes_beyond_domain(s, "KillSwitchRole"),
        {
            "kill switch stops any execution": _allow("KillSwitchRole", "states:StopExecution", "*"),
        },
    ),
    (
        lambda s: writes_beyond_domain(s, "AgentRole"),
        {
            "agent starts any state machine": _allow(
                "AgentRole",
                "states:StartExecution",
                {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*"},
            ),
        },
    ),
    (
        validator_reach,
        {
            "validator writes a mission": _allow("ValidatorRole", "dynamodb:PutItem", _arn("MissionsTable")),
            "validator cannot read the mission's account": _drop_statement("ValidatorRole", "ReadMissionAccount"),
            "validator reads a secret": _allow(
                "ValidatorRole", "secretsmanager:GetSecretValue", {"Ref": "ExecutorAuth0ClientSecretArn"}
            ),
            "validator scans the audit table": _allow("ValidatorRole", "dynamodb:Scan", _arn("AuditTable")),
            "validator starts a mission": _allow("ValidatorRole", "states:StartExecution", "*"),
            "validator cannot find applied changes": _drop_statement("ValidatorRole", "FindAppliedChanges"),
        },
    ),
    (
        ops_reach,
        {
            "ops reads a secret": _allow(
                "OpsRole", "secretsmanager:GetSecretValue", {"Ref": "KillSwitchAuth0ClientSecretArn"}
            ),
            "ops invokes the kill switch": _allow("OpsRole", "lambda:InvokeFunction", _arn("KillSwitchFunction")),
            "ops scans the missions table": _allow("OpsRole", "dynamodb:Scan", _arn("MissionsTable")),
            "ops writes a mission": _allow("OpsRole", "dynamodb:PutItem", _arn("MissionsTable")),
            "ops reads a handoff": _allow("OpsRole", "dynamodb:GetItem", _arn("HandoffTable")),
            "ops decrypts outside DynamoDB": _allow("OpsRole", "kms:Decrypt", _arn("TablesKey")),
            "ops puts any event": lambda t: role_statement(t, "OpsRole", "RequestMissions").pop("Condition"),
            "ops puts another source": lambda t: role_statement(t, "OpsRole", "RequestMissions")["Condition"][
                "StringEquals"
            ].update({"events:source": ["aegis.scan", "aws.states"]}),
            "ops cannot list missions": _drop_statement("OpsRole", "ListMissions"),
            "ops cannot list an organization scan's accounts": _update_statement(
                "OpsRole", "ListMissions", Resource={"Fn::Sub": "${MissionsTable.Arn}/index/ByCreated"}
            ),
        },
    ),
    (
        audit_index_problems,
        {
            "the audit index is keyed by mission": lambda t: _first_index(t, "AuditTable").update(
                KeySchema=[{"AttributeName": "mission_id", "KeyType": "HASH"}]
            ),
        },
    ),
    (
        lambda s: writes_beyond_domain(s, "ExecutorRole"),
        {
            "executor mutates infrastructure with its own role": _allow(
                "ExecutorRole", "ec2:RevokeSecurityGroupIngress", "*"
            ),
            "executor writes the control table": _allow("ExecutorRole", "dynamodb:PutItem", _arn("ControlTable")),
        },
    ),
    (
        lambda s: catalogue_actions_outside_remediation(s, "KillSwitchRole"),
        {
            "kill switch remediates": _allow("KillSwitchRole", "kms:EnableKeyRotation", "*"),
        },
    ),
    (
        lambda s: unjustified_wildcards(s, "ApprovalRole"),
        {
            "approval role gets a wildcard action": _allow("ApprovalRole", "ec2:Describe*", "*"),
            "a listed no-resource-level statement gains a scopable action": _allow(
                "ApprovalRole", "states:StartExecution", "*", Sid="TaskCallbacks"
            ),
        },
    ),
    (
        lambda s: unjustified_wildcards(s, "ExecutorRole"),
        {
            "executor gets an unlisted Resource '*'": _allow("ExecutorRole", "ec2:DescribeVpcs", "*", Sid="Inventory"),
        },
    ),
    (
        lambda s: unjustified_wildcards(s, "AgentRole"),
        {
            "a role reaches a resource outside the stack": _allow(
                "AgentRole", "dynamodb:GetItem", "arn:aws:dynamodb:*:*:table/*"
            ),
        },
    ),
    (
        lambda s: unknown_actions(s, "AgentRole"),
        {
            "a misspelt action": _allow("AgentRole", "ec2:DescribeSecurityGroupRule", "*"),
        },
    ),
    (
        key_policy_problems,
        {
            "root may decrypt handoffs": _add_key_statement(
                {"Effect": "Allow", "Principal": {"AWS": _ROOT}, "Action": "kms:*", "Resource": "*"}
            ),
            "agent may decrypt handoffs": _key_grant("AgentRole", "kms:Decrypt"),
            "approval may encrypt directly": _key_grant("ApprovalRole", "kms:Encrypt"),
            "approval may decrypt handoffs": _key_grant("ApprovalRole", "kms:Decrypt"),
            "approval seals without the change digest in the context": lambda t: _key_statement(
                t, "ApprovalSealsHandoffs"
            )["Condition"]["Null"].pop("kms:EncryptionContext:change_digest"),
            "executor decrypts without an encryption context": lambda t: _key_statement(t, "ExecutorOpensHandoffs").pop(
                "Condition"
            ),
        },
    ),
]
_MUTATIONS = {name: (mutate, check) for check, breaks in _CAUGHT_BY for name, mutate in breaks.items()}


@pytest.mark.parametrize("break_it", list(_MUTATIONS))
def test_the_matrix_catches(break_it: str) -> None:
    mutate, check = _MUTATIONS[break_it]
    template = pristine_template()
    mutate(template)
    assert check(build_stack(template)) != [], f"the check did not notice: {break_it}"
