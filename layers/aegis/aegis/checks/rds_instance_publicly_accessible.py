"""An RDS DB instance is publicly accessible: CIS v5.0.0 2.2.3 / v6.0.0 and v7.0.0 3.2.3 (v3.0.0's 2.3.3 is not
from the reference's table: unsure).

PubliclyAccessible makes the endpoint's DNS name resolve to a public address; only the security groups then stand
between the database and the internet. Every RDS instance of the region is read from one DescribeDBInstances
listing (tags included): no call per instance.

The fix (ModifyDBInstance with ApplyImmediately) is proposed only for an available instance with no modification
pending for its maintenance window, which ApplyImmediately would apply too: any other finding is notify-only, with
the steps in `manual_fix`.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.disable_rds_public_access import DbInstancePublicAccess, DisableRdsPublicAccess
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="rds-instance-publicly-accessible",
    title="RDS DB instance is publicly accessible",
    cis_v3="2.3.3",
    cis_v5="2.2.3",
    cis_v7="3.2.3",
    cis_unsure=("v3",),
    severity=Severity.HIGH,
    rationale=(
        "A publicly accessible database answers connection attempts from the whole internet wherever a security "
        "group lets them through: one permissive rule away from brute force against its login."
    ),
    remediation_kind="disable-rds-public-access",
    manual_fix=(
        "Wait until the instance is available with no pending modification, then in the RDS console choose Modify, "
        "Connectivity, Not publicly accessible, Apply immediately (API: ModifyDBInstance with "
        "PubliclyAccessible=false and ApplyImmediately=true)."
    ),
    resource_type="AWS::RDS::DBInstance",
    services=("rds",),
    scope="region",
)

# The only status in which the fix is proposed: RDS refuses to modify a stopped or changing instance.
MODIFIABLE_STATUS = "available"


def evaluate(inventory: Inventory) -> list[Finding]:
    instances = inventory.rds.db_instances()
    inventory.count(METADATA.resource_type, len(instances))
    return [
        METADATA.finding(
            resource_arn=instance.arn,
            account_id=inventory.account_id,
            region=inventory.region,
            evidence={
                "db_instance_id": instance.identifier,
                "resource_id": instance.resource_id,
                "engine": instance.engine,
                "status": instance.status,
                "publicly_accessible": True,
                "pending_modifications": list(instance.pending_modifications),
            },
            tags=instance.tags,
        )
        for instance in instances
        if instance.publicly_accessible
    ]


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    if evidence_withheld(finding):
        return None
    evidence = finding.evidence
    resource_id = evidence.get("resource_id")
    if evidence.get("status") != MODIFIABLE_STATUS or evidence.get("pending_modifications"):
        return None
    if not isinstance(resource_id, str) or not resource_id:
        return None
    return change_for(
        finding,
        DisableRdsPublicAccess,
        # Clients that reach the database over the internet (not through its VPC) lose it: some may depend on it.
        risk=Risk.MEDIUM,
        before=DbInstancePublicAccess(resource_id=resource_id, publicly_accessible=True),
        after=DbInstancePublicAccess(resource_id=resource_id, publicly_accessible=False),
    )
