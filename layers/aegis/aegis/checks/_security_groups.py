"""Shared by the security-group checks: which ingress rules expose SSH or RDP to the whole internet (the two
admin-port checks, IPv4 and IPv6), and the finding on a group and the revocation of exactly the rules it lists (all
three)."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import JsonValue

from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.checks.base import CheckMetadata, change_for, evidence_withheld, security_group_arn
from aegis.collectors import Inventory
from aegis.collectors.ec2 import GroupRule, SecurityGroup
from aegis.models import Finding, Risk

SSH = 22
RDP = 3389
ADMIN_PORTS = (SSH, RDP)
# "-1" is every protocol; "6" is TCP by number.
_TCP_OR_ALL = {"tcp", "6", "-1"}


def exposed_ports(rule: GroupRule) -> list[int]:
    """The admin ports an ingress rule opens (protocol tcp or all, port range covering them)."""
    if rule.is_egress or rule.ip_protocol.lower() not in _TCP_OR_ALL:
        return []
    if rule.ip_protocol == "-1" or rule.from_port is None or rule.to_port is None or rule.from_port == -1:
        return list(ADMIN_PORTS)
    return [port for port in ADMIN_PORTS if rule.from_port <= port <= rule.to_port]


def evaluate_world_open(
    metadata: CheckMetadata, inventory: Inventory, family: Literal["ipv4", "ipv6"]
) -> list[Finding]:
    world = "0.0.0.0/0" if family == "ipv4" else "::/0"
    offending: dict[str, list[GroupRule]] = defaultdict(list)
    rules = inventory.ec2.security_group_rules()
    for rule in rules:
        peer = rule.cidr_ipv4 if family == "ipv4" else rule.cidr_ipv6
        if peer == world and exposed_ports(rule):
            offending[rule.group_id].append(rule)
    if not offending:
        # Groups without rules are not in the rule listing; the default-group check counts every group.
        inventory.count(metadata.resource_type, len({rule.group_id for rule in rules}))
        return []
    groups = inventory.ec2.security_groups()
    inventory.count(metadata.resource_type, len(groups))
    findings = []
    for group_id, group_rules in sorted(offending.items()):
        group_rules.sort(key=lambda r: r.rule_id)
        ports: list[JsonValue] = [*sorted({p for r in group_rules for p in exposed_ports(r)})]
        findings.append(
            group_finding(
                metadata, inventory, group_id, groups.get(group_id), group_rules, source=world, exposed_ports=ports
            )
        )
    return findings


def group_finding(
    metadata: CheckMetadata,
    inventory: Inventory,
    group_id: str,
    group: SecurityGroup | None,
    rules: list[GroupRule],
    **evidence: JsonValue,
) -> Finding:
    """A finding on one security group: the group and its VPC, the check's own evidence, then the rules a revocation
    removes (in the order given)."""
    return metadata.finding(
        resource_arn=security_group_arn(inventory.region, inventory.account_id, group_id),
        account_id=inventory.account_id,
        region=inventory.region,
        evidence={
            "group_id": group_id,
            "vpc_id": group.vpc_id if group else None,
            **evidence,
            "rules": [r.to_catalogue().model_dump(mode="json") for r in rules],
        },
        tags=group.tags if group else None,
    )


def propose_revoke(finding: Finding, risk: Risk) -> RevokeSecurityGroupRules | None:
    """Revoke exactly the rules the finding lists, by rule id; every other rule of the group stays."""
    if evidence_withheld(finding):
        return None
    group_id = str(finding.evidence["group_id"])
    rules = tuple(SecurityGroupRule.model_validate(r) for r in finding.evidence["rules"])  # type: ignore[union-attr]
    return change_for(
        finding,
        RevokeSecurityGroupRules,
        risk=risk,
        before=SecurityGroupRules(group_id=group_id, rules=rules),
        after=SecurityGroupRules(group_id=group_id, rules=()),
    )
