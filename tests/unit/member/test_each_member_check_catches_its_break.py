"""Each check of member_matrix.py catches the break it exists for: the check runs on a copy of member/template.yaml
broken in one way, and must report it. A check that could not fail would show up here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.member.member_matrix import (
    credential_reach,
    kill_switch_role_problems,
    mirrored_remediation_problems,
    resource_problems,
    scan_role_problems,
    security_caller_trust_problems,
)
from tests.unit.member.member_stack import MemberStack, build_member_stack, pristine_member_template, security_stack

# Breaks a copy of member/template.yaml in place.
Mutation = Callable[[dict[str, Any]], None]


def _role(template: dict[str, Any], role: str) -> dict[str, Any]:
    return template["Resources"][role]["Properties"]


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return _role(template, role)["Policies"][0]["PolicyDocument"]["Statement"]


def _statement(template: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    return next(s for s in _statements(template, role) if s.get("Sid") == sid)


def _trust(template: dict[str, Any], role: str) -> dict[str, Any]:
    return _role(template, role)["AssumeRolePolicyDocument"]["Statement"][0]


def _allow(role: str, action: str, resource: Any = "*") -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _statements(template, role).append({"Effect": "Allow", "Action": action, "Resource": resource})

    return mutate


def _drop_action(role: str, sid: str, action: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _statement(template, role, sid)["Action"].remove(action)

    return mutate


def _drop_trust_condition(role: str, operator: str, key: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _trust(template, role)["Condition"][operator].pop(key)

    return mutate


def _trust_principal(role: str, principal: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _trust(template, role)["Principal"] = principal

    return mutate


def _web_identity_trust(role: str, old: str, new: str) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        sub = _role(template, role)["AssumeRolePolicyDocument"]["Fn::Sub"]
        sub[0] = sub[0].replace(old, new)

    return mutate


def _set(role: str, **properties: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _role(template, role).update(properties)

    return mutate


def _kill_switch_resources(*resources: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        _statement(template, "AegisKillSwitchRole", "HaltRemediationRoles")["Resource"] = list(resources)

    return mutate


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


_SECURITY = security_stack()
_CAUGHT_BY: list[tuple[Callable[[MemberStack], list[str]], dict[str, Mutation]]] = [
    (
        lambda m: scan_role_problems(m, _SECURITY),
        {
            "the scan role writes": _allow("AegisScanRole", "ec2:RevokeSecurityGroupIngress"),
            "the scan role reads beyond the agent's inventory": _allow(
                "AegisScanRole", "secretsmanager:GetSecretValue"
            ),
            "the scan role reads with a wildcard": _allow("AegisScanRole", "ec2:Describe*"),
            "the scan role lacks a read the collectors make": _drop_action(
                "AegisScanRole", "ReadOnlyInventory", "ec2:DescribeVpcs"
            ),
        },
    ),
    (
        lambda m: security_caller_trust_problems(m, "AegisScanRole"),
        {
            "any role of the security account scans": _drop_trust_condition(
                "AegisScanRole", "ArnEquals", "aws:PrincipalArn"
            ),
            "the scan role without the external id": _drop_trust_condition(
                "AegisScanRole", "StringEquals", "sts:ExternalId"
            ),
            "the scan role from outside the organization": _drop_trust_condition(
                "AegisScanRole", "StringEquals", "aws:PrincipalOrgID"
            ),
            "anyone may assume the scan role": _trust_principal("AegisScanRole", {"AWS": "*"}),
            "the scan role trusts the kill switch": lambda t: _trust(t, "AegisScanRole")["Condition"][
                "ArnEquals"
            ].update({"aws:PrincipalArn": {"Ref": "SecurityKillSwitchRoleArn"}}),
        },
    ),
    (
        lambda m: security_caller_trust_problems(m, "AegisKillSwitchRole"),
        {
            "any role of the security account halts": _drop_trust_condition(
                "AegisKillSwitchRole", "ArnEquals", "aws:PrincipalArn"
            ),
            "the kill switch role without the external id": _drop_trust_condition(
                "AegisKillSwitchRole", "StringEquals", "sts:ExternalId"
            ),
            "the kill switch role trusts the agent": lambda t: _trust(t, "AegisKillSwitchRole")["Condition"][
                "ArnEquals"
            ].update({"aws:PrincipalArn": {"Ref": "SecurityAgentRoleArn"}}),
        },
    ),
    (
        lambda m: mirrored_remediation_problems(m, _SECURITY, "AegisRemediationRole"),
        {
            "a member forward token could widen access": _allow(
                "AegisRemediationRole", "ec2:AuthorizeSecurityGroupIngress"
            ),
            "member remediation role lacks a catalogue action": _drop_action(
                "AegisRemediationRole", "ApplyDeclaredByTheCatalogue", "ec2:RevokeSecurityGroupIngress"
            ),
            "member remediation role detaches AWS-managed policies": lambda t: _statement(
                t, "AegisRemediationRole", "DetachCustomerManagedPoliciesOnly"
            ).pop("Condition"),
            "member remediation role trusts any subject": _web_identity_trust(
                "AegisRemediationRole", ', "${ProviderHost}:sub": ${Subjects}', ""
            ),
            "member remediation role trusts the undo audience": _web_identity_trust(
                "AegisRemediationRole", "${RemediationOidcAudience}", "${UndoOidcAudience}"
            ),
            "member remediation role sessions last longer": _set("AegisRemediationRole", MaxSessionDuration=43200),
            "member remediation role may remove the kill switch's policy": _drop_action(
                "AegisRemediationRole", "NeverAegisCloudItself", "iam:DeleteRolePolicy"
            ),
            "member remediation role's deny spares the Aegis roles": lambda t: _statement(
                t, "AegisRemediationRole", "NeverAegisCloudItself"
            ).update(Resource="arn:aws:iam::111122223333:role/Other*"),
            "member remediation role renamed": _set("AegisRemediationRole", RoleName="Remediation"),
        },
    ),
    (
        lambda m: mirrored_remediation_problems(m, _SECURITY, "AegisUndoRole"),
        {
            "member undo role stops any trail": lambda t: _statement(
                t, "AegisUndoRole", "StopCatalogueTrailsOnly"
            ).update(Resource="*"),
            "member undo role trusts the forward audience": _web_identity_trust(
                "AegisUndoRole", "${UndoOidcAudience}", "${RemediationOidcAudience}"
            ),
        },
    ),
    (
        kill_switch_role_problems,
        {
            "the kill switch role rewrites its own policy": _kill_switch_resources(
                _arn("AegisRemediationRole"), _arn("AegisUndoRole"), _arn("AegisKillSwitchRole")
            ),
            "the kill switch role cannot halt undo": _kill_switch_resources(_arn("AegisRemediationRole")),
            "the kill switch role attaches policies": lambda t: _statement(
                t, "AegisKillSwitchRole", "HaltRemediationRoles"
            )["Action"].append("iam:AttachRolePolicy"),
            "the kill switch role reaches any role": _kill_switch_resources("*"),
        },
    ),
    (
        credential_reach,
        {
            "the kill switch role assumes a role": _allow("AegisKillSwitchRole", "sts:AssumeRole"),
            "the scan role reads a parameter": _allow("AegisScanRole", "ssm:GetParameter"),
            "a remediation role does anything": _allow("AegisRemediationRole", "*"),
        },
    ),
    (
        resource_problems,
        {
            "a resource other than a role": lambda t: t["Resources"].update(
                Extra={"Type": "AWS::SQS::Queue", "Properties": {}}
            ),
            "a fifth role": lambda t: t["Resources"].update(
                AegisAdminRole={
                    **t["Resources"]["AegisScanRole"],
                    "Properties": {**_role(t, "AegisScanRole"), "RoleName": "AegisAdminRole"},
                }
            ),
            "a role named by CloudFormation": lambda t: _role(t, "AegisScanRole").pop("RoleName"),
            "a managed policy on a role": _set(
                "AegisScanRole", ManagedPolicyArns=["arn:aws:iam::aws:policy/ReadOnlyAccess"]
            ),
        },
    ),
]
_MUTATIONS = {name: (mutate, check) for check, breaks in _CAUGHT_BY for name, mutate in breaks.items()}


@pytest.mark.parametrize("break_it", list(_MUTATIONS))
def test_the_member_matrix_catches(break_it: str) -> None:
    mutate, check = _MUTATIONS[break_it]
    template = pristine_member_template()
    mutate(template)
    assert check(build_member_stack(template)) != [], f"the check did not notice: {break_it}"
