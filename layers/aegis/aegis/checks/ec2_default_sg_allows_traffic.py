"""The default security group of a VPC allows traffic: CIS v3.0.0 5.4 / v5.0.0 5.5.

The control flags any rule at all, in or out: AWS creates every default group with an all-traffic ingress rule
from itself and an all-traffic egress rule, so every untouched VPC fails it. Resources should use groups made for
them; an empty default group means anything launched without one cannot talk to anything.
"""

from __future__ import annotations

from collections import defaultdict

from aegis.catalogue import ChangeBase
from aegis.checks._security_groups import group_finding, propose_revoke
from aegis.checks.base import CheckMetadata, PlanConfig
from aegis.collectors import Inventory
from aegis.collectors.ec2 import GroupRule
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="ec2-default-sg-allows-traffic",
    title="Default security group allows traffic",
    cis_v3="5.4",
    cis_v5="5.5",
    cis_v7="6.5",
    severity=Severity.MEDIUM,
    rationale=(
        "Instances launched without an explicit security group land in the VPC's default group; if it allows "
        "traffic, they are reachable (and can reach out) without anyone having decided so."
    ),
    remediation_kind="revoke-security-group-rules",
    resource_type="AWS::EC2::SecurityGroup",
    services=("ec2",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    """One finding per default group with any rule. Whether the group is attached to network interfaces (which
    makes revoking its rules risky) comes from one interface listing for all groups."""
    groups = inventory.ec2.security_groups()
    inventory.count(METADATA.resource_type, len(groups))
    defaults = {gid for gid, group in groups.items() if group.is_default}
    if not defaults:
        return []
    rules_by_group: dict[str, list[GroupRule]] = defaultdict(list)
    for rule in inventory.ec2.security_group_rules():
        if rule.group_id in defaults:
            rules_by_group[rule.group_id].append(rule)
    if not rules_by_group:
        return []
    in_use = inventory.ec2.groups_in_use(rules_by_group)
    findings = []
    for group_id, rules in sorted(rules_by_group.items()):
        rules.sort(key=lambda r: (r.is_egress, r.rule_id))
        findings.append(
            group_finding(
                METADATA,
                inventory,
                group_id,
                groups[group_id],
                rules,
                is_default=True,
                attached_to_interfaces=group_id in in_use,
                ingress_rules=sum(not r.is_egress for r in rules),
                egress_rules=sum(r.is_egress for r in rules),
            )
        )
    return findings


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    """Revoke every ingress and egress rule of the default group; high risk while interfaces still use it."""
    return propose_revoke(finding, Risk.HIGH if finding.evidence.get("attached_to_interfaces") else Risk.LOW)
