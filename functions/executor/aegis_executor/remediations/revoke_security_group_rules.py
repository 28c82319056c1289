"""Revoke security-group rules by SecurityGroupRuleId; undo re-authorises exactly the revoked rules."""

from __future__ import annotations

from typing import Any

from boto3.session import Session

from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis_executor.remediations.base import Remediation, RemediationFailed, remediation


def _port(value: int | None) -> int | None:
    # "All ports" is -1 in the API and may be absent in a model built elsewhere: one spelling for comparison.
    return None if value in (None, -1) else value


def _meaning(rule: SecurityGroupRule) -> tuple[Any, ...]:
    """What a rule allows, without its id (which AWS re-issues when a rule is authorised again)."""
    return (
        rule.is_egress,
        rule.ip_protocol,
        _port(rule.from_port),
        _port(rule.to_port),
        rule.cidr_ipv4,
        rule.cidr_ipv6,
        rule.prefix_list_id,
        rule.referenced_group_id,
    )


def _identity(rule: SecurityGroupRule) -> tuple[Any, ...]:
    return (rule.rule_id, *_meaning(rule))


@remediation("revoke-security-group-rules")
class RevokeSecurityGroupRulesRemediation(Remediation[RevokeSecurityGroupRules, SecurityGroupRules]):
    def read_current(self, session: Session, change: RevokeSecurityGroupRules) -> SecurityGroupRules:
        ec2 = self.client(session, "ec2", change)
        rules: list[SecurityGroupRule] = []
        for page in ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": [change.group_id]}]
        ):
            rules.extend(
                SecurityGroupRule.from_aws(r) for r in page["SecurityGroupRules"] if r["GroupId"] == change.group_id
            )
        rules.sort(key=lambda r: r.rule_id)
        return SecurityGroupRules(group_id=change.group_id, rules=tuple(rules))

    def is_before(self, current: SecurityGroupRules, change: RevokeSecurityGroupRules) -> bool:
        present = {_identity(r) for r in current.rules}
        return all(_identity(r) in present for r in change.before.rules)

    def is_after(self, current: SecurityGroupRules, change: RevokeSecurityGroupRules) -> bool:
        present = {_identity(r) for r in current.rules}
        present_ids = {r.rule_id for r in current.rules}
        kept = all(_identity(r) in present for r in change.after.rules)
        return kept and not any(r.rule_id in present_ids for r in change.revoked)

    def is_undone(self, current: SecurityGroupRules, change: RevokeSecurityGroupRules) -> bool:
        present = {_identity(r) for r in current.rules}
        meanings = {_meaning(r) for r in current.rules}
        kept = all(_identity(r) in present for r in change.after.rules)
        return kept and all(_meaning(r) in meanings for r in change.revoked)

    def apply(self, session: Session, change: RevokeSecurityGroupRules) -> None:
        ec2 = self.client(session, "ec2", change)
        ingress = [r.rule_id for r in change.revoked if not r.is_egress]
        egress = [r.rule_id for r in change.revoked if r.is_egress]
        if ingress:
            _expect_return(ec2.revoke_security_group_ingress(GroupId=change.group_id, SecurityGroupRuleIds=ingress))
        if egress:
            _expect_return(ec2.revoke_security_group_egress(GroupId=change.group_id, SecurityGroupRuleIds=egress))

    def undo(self, session: Session, change: RevokeSecurityGroupRules) -> None:
        ec2 = self.client(session, "ec2", change)
        ingress = [r.ip_permission() for r in change.revoked if not r.is_egress]
        egress = [r.ip_permission() for r in change.revoked if r.is_egress]
        if ingress:
            _expect_return(ec2.authorize_security_group_ingress(GroupId=change.group_id, IpPermissions=ingress))
        if egress:
            _expect_return(ec2.authorize_security_group_egress(GroupId=change.group_id, IpPermissions=egress))


def _expect_return(response: dict[str, Any]) -> None:
    # EC2 answers `Return: false` (not an error) when only part of a revoke or authorise took effect.
    if response.get("Return") is False or response.get("UnknownIpPermissions"):
        raise RemediationFailed("EC2 reported that not every listed rule was changed")
