"""The checks member/template.yaml must pass, each returning what is wrong, so that the same check runs on the
template as it is (test_member_template.py: nothing may be reported) and on a deliberately broken copy
(test_each_member_check_catches_its_break.py: the break must be reported), as tests/unit/template/iam_matrix.py does
for the security account's template.
"""

from __future__ import annotations

import json
from typing import Any

from aegis.catalogue import Direction, declared_actions
from tests.support.stack import UNSCOPED, Stack
from tests.unit.member.member_stack import MemberStack
from tests.unit.template.iam_matrix import (
    CREDENTIAL_SERVICES,
    KILLSWITCH_CODE,
    called_operations,
    is_read_only,
    web_identity_trust_problems,
)
from tests.unit.template.test_inventory_grants import collector_operations, iam_action_for

# Each member role by its fixed name (the security stack's functions name them: MEMBER_*_ROLE_NAME).
SCAN_ROLE = "AegisScanRole"
REMEDIATION_ROLE = "AegisRemediationRole"
UNDO_ROLE = "AegisUndoRole"
KILL_SWITCH_ROLE = "AegisKillSwitchRole"
MEMBER_ROLES = (SCAN_ROLE, REMEDIATION_ROLE, UNDO_ROLE, KILL_SWITCH_ROLE)
# Each member remediation role, the security stack's role it mirrors and its catalogue direction.
MIRRORED: dict[str, tuple[str, Direction]] = {
    REMEDIATION_ROLE: ("RemediationRole", "forward"),
    UNDO_ROLE: ("UndoRole", "undo"),
}
# Who may assume the two roles the security account calls into: the parameter naming that role's ARN.
SECURITY_CALLER: dict[str, str] = {SCAN_ROLE: "SecurityAgentRoleArn", KILL_SWITCH_ROLE: "SecurityKillSwitchRoleArn"}
# The kill switch's reach in a member: the two halt policies (AegisHalted, AegisDenyOlderSessions) on each
# remediation role, put, read back (the cutoff) and deleted (re-arm).
HALT_ACTIONS = frozenset({"iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"})


def exists(member: MemberStack, logical_id: str) -> bool:
    """Whether the resource is created with these parameter values (its Condition, if any, holds)."""
    condition = member.resource(logical_id).get("Condition")
    return condition is None or member.resolver.condition(str(condition))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def inventory_reads(security: Stack) -> set[str]:
    """The actions of the security stack's AgentRole statement ReadOnlyInventory: the source of truth
    (test_inventory_grants.py ties it to the collectors' code)."""
    [statement] = [s for s in security.statements("AgentRole") if s.get("Sid") == "ReadOnlyInventory"]
    return set(_as_list(statement["Action"]))


def scan_role_problems(member: MemberStack, security: Stack) -> list[str]:
    """AegisScanRole grants exactly the agent's inventory reads, on "*", without condition, all read-only, and every
    read the collectors make."""
    found = []
    grants = member.grants(SCAN_ROLE)
    granted = {g.action for g in grants}
    wanted = inventory_reads(security)
    if granted != wanted:
        found.append(
            f"{SCAN_ROLE} grants {sorted(granted - wanted)} beyond AgentRole's ReadOnlyInventory and lacks "
            f"{sorted(wanted - granted)}"
        )
    for grant in grants:
        if "*" in grant.action or "?" in grant.action:
            found.append(f"{SCAN_ROLE}: wildcard action {grant.action}")
        elif not is_read_only(grant.action):
            found.append(f"{SCAN_ROLE}: {grant.action} is not read-only")
        if grant.service in CREDENTIAL_SERVICES:
            found.append(f"{SCAN_ROLE}: {grant.action} reaches a secret or a credential")
        if grant.resource != UNSCOPED or grant.condition:
            found.append(f"{SCAN_ROLE}: {grant.action} on {grant.resource} with {dict(grant.condition)}")
    for statement in member.statements(SCAN_ROLE):
        if statement.get("Effect") != "Allow" or {"NotAction", "NotResource"} & set(statement):
            found.append(f"{SCAN_ROLE}/{statement.get('Sid')}: only plain Allow statements")
    needed = {action for service, operation in collector_operations() if (action := iam_action_for(service, operation))}
    found += [f"the collectors call {action}, which {SCAN_ROLE} does not grant" for action in sorted(needed - granted)]
    return found


def security_caller_trust_problems(member: MemberStack, role: str) -> list[str]:
    """Exactly one statement: sts:AssumeRole by the security account (its root as Principal, so that no role needs
    to exist at deploy time), and by condition only the one role ARN of SECURITY_CALLER, inside the organization,
    with the external id."""
    parameters = member.parameters
    expected = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{parameters['SecurityAccountId']}:root"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "ArnEquals": {"aws:PrincipalArn": parameters[SECURITY_CALLER[role]]},
            "StringEquals": {
                "aws:PrincipalOrgID": parameters["OrganizationId"],
                "sts:ExternalId": parameters["MemberExternalId"],
            },
        },
    }
    statements = _as_list(member.trust_policy(role).get("Statement"))
    if len(statements) != 1:
        return [f"{role} trust has {len(statements)} statements; exactly one is allowed"]
    actual = {key: value for key, value in statements[0].items() if key != "Sid"}
    return [] if actual == expected else [f"{role} trust is {actual}, expected {expected}"]


SELF_DENY = "NeverAegisCloudItself"


def _without_self_deny(document: Any) -> Any:
    statements = [s for s in document.get("Statement", []) if s.get("Sid") != SELF_DENY]
    return {**document, "Statement": statements}


def _account_neutral(document: Any, account: str) -> str:
    return json.dumps(document, sort_keys=True).replace(account, "<account>")


def mirrored_remediation_problems(member: MemberStack, security: Stack, role: str) -> list[str]:
    """A member remediation role is its security counterpart in this account: the same statements (the account id
    aside), exactly the catalogue's actions for its direction, the same session length and the same web identity
    trust, from this account's provider."""
    counterpart, direction = MIRRORED[role]
    found = []
    granted = {g.action for g in member.grants(role)}
    declared = set(declared_actions(direction))
    if granted != declared:
        found.append(
            f"{role} grants {sorted(granted - declared)} beyond the catalogue and lacks {sorted(declared - granted)}"
        )
    mine = [
        _account_neutral(_without_self_deny(document), member.resolver.pseudo["AWS::AccountId"])
        for _, document in member.policy_documents(role)
    ]
    theirs = [
        _account_neutral(_without_self_deny(document), security.resolver.pseudo["AWS::AccountId"])
        for _, document in security.policy_documents(counterpart)
    ]
    if mine != theirs:
        found.append(f"{role}'s policies differ from {counterpart}'s")
    # The deny on AegisCloud itself names each account's own resources: here the Aegis* roles, with every action the
    # security account's deny names.
    [own] = [s for s in security.statements(counterpart) if s.get("Sid") == SELF_DENY] or [{}]
    denies = [s for s in member.statements(role) if s.get("Sid") == SELF_DENY]
    wanted = {
        "Sid": SELF_DENY,
        "Effect": "Deny",
        "Action": own.get("Action"),
        "Resource": f"arn:aws:iam::{member.resolver.pseudo['AWS::AccountId']}:role/Aegis*",
    }
    if denies != [wanted]:
        found.append(f"{role} does not deny {own.get('Action')} on the Aegis* roles exactly: {denies}")
    properties = member.properties(role)
    if properties.get("MaxSessionDuration") != security.properties(counterpart).get("MaxSessionDuration"):
        found.append(f"{role} MaxSessionDuration differs from {counterpart}'s")
    if properties.get("RoleName") != role:
        found.append(f"{role} is named {properties.get('RoleName')!r}: the security stack assumes it by that name")
    for forbidden in ("ManagedPolicyArns", "PermissionsBoundary"):
        if forbidden in properties:
            found.append(f"{role} sets {forbidden}")
    found += web_identity_trust_problems(member, role, direction=direction, provider=member_provider(member))
    return found


def member_provider(member: MemberStack) -> str:
    """The OIDC provider the member's remediation roles must trust: the one it creates, or this account's existing
    provider for the same issuer."""
    if member.parameters["UseExistingRemediationOidcProvider"] == "true":
        host = member.parameters["RemediationOidcProviderUrl"].removeprefix("https://")
        return f"arn:aws:iam::{member.resolver.pseudo['AWS::AccountId']}:oidc-provider/{host}"
    return member.ref("RemediationOidcProvider")


def kill_switch_role_problems(member: MemberStack) -> list[str]:
    """AegisKillSwitchRole may only put, read and delete inline policies of the remediation roles this stack has,
    exactly the IAM calls the kill switch's code makes."""
    found = []
    halted = {role for role in (REMEDIATION_ROLE, UNDO_ROLE) if exists(member, role)}
    granted = {(g.action, g.resource) for g in member.grants(KILL_SWITCH_ROLE)}
    wanted = {(action, role) for action in HALT_ACTIONS for role in halted}
    if granted != wanted:
        found.append(f"{KILL_SWITCH_ROLE} grants {sorted(granted - wanted)} and lacks {sorted(wanted - granted)}")
    for grant in member.grants(KILL_SWITCH_ROLE):
        if grant.condition:
            found.append(f"{KILL_SWITCH_ROLE}: {grant.action} carries a condition {dict(grant.condition)}")
    called = {f"iam:{operation}" for _, operation in called_operations(sorted(KILLSWITCH_CODE.glob("*.py")), ("iam",))}
    if called != HALT_ACTIONS:
        found.append(f"the kill switch's code calls {sorted(called)}, its member role grants {sorted(HALT_ACTIONS)}")
    return found


def credential_reach(member: MemberStack) -> list[str]:
    """No member role grants STS, a secret or a parameter: a session in a member reaches nothing further."""
    return [
        f"{g.role}/{g.sid}: {g.action} on {g.resource}"
        for role in member_roles(member)
        for g in member.grants(role)
        if g.service in CREDENTIAL_SERVICES or g.action == "*" or g.action.endswith(":*")
    ]


def member_roles(member: MemberStack) -> list[str]:
    """The roles this member stack creates (AegisUndoRole only while undo is enabled)."""
    return [role for role in member.resources_of_type("AWS::IAM::Role") if exists(member, role)]


def resource_problems(member: MemberStack) -> list[str]:
    """The member stack holds the four roles (and their provider), nothing else, each under its fixed name, and no
    policy outside the roles (which the checks above would not read)."""
    found = []
    kinds = {body.get("Type") for body in member.template["Resources"].values()}
    if kinds - {"AWS::IAM::Role", "AWS::IAM::OIDCProvider"}:
        found.append(f"member/template.yaml holds {sorted(kinds - {'AWS::IAM::Role', 'AWS::IAM::OIDCProvider'})}")
    roles = member.resources_of_type("AWS::IAM::Role")
    if set(roles) != set(MEMBER_ROLES):
        found.append(f"member roles are {sorted(roles)}, expected {sorted(MEMBER_ROLES)}")
    for name, body in roles.items():
        properties = body.get("Properties") or {}
        if properties.get("RoleName") != name:
            found.append(f"{name} is named {properties.get('RoleName')!r}")
        if "ManagedPolicyArns" in properties:
            found.append(f"{name} has managed policies")
    return found
