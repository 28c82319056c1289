"""SSH (22) or RDP (3389) open to ::/0: CIS v3.0.0 5.3 / v5.0.0 5.4."""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.checks._security_groups import evaluate_world_open, propose_revoke
from aegis.checks.base import CheckMetadata, PlanConfig
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="ec2-admin-port-open-ipv6",
    title="Security group allows SSH or RDP from ::/0",
    cis_v3="5.3",
    cis_v5="5.4",
    cis_v7="6.4",
    severity=Severity.HIGH,
    rationale=(
        "Remote administration ports reachable from any IPv6 address are as exposed as from any IPv4 address, and "
        "are easily forgotten when only IPv4 rules are reviewed."
    ),
    remediation_kind="revoke-security-group-rules",
    resource_type="AWS::EC2::SecurityGroup",
    services=("ec2",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    """One finding per group with at least one ingress rule from ::/0, protocol tcp or all, whose port range covers
    22 or 3389; the evidence lists exactly those rules."""
    return evaluate_world_open(METADATA, inventory, "ipv6")


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    # Someone may be reaching the group's instances this way; narrower rules keep working.
    return propose_revoke(finding, Risk.MEDIUM)
