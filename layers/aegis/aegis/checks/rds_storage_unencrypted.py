"""An RDS DB instance's storage is not encrypted at rest: CIS v5.0.0 2.2.1 / v6.0.0 and v7.0.0 3.2.1 (v3.0.0's 2.3.1
is not from the reference's table: unsure).

Notify-only: RDS cannot encrypt an existing instance's storage in place. Encrypting means a new instance restored
from an encrypted copy of a snapshot, and moving its clients over: a migration for a human to plan, not a change to
approve. Read from the same DescribeDBInstances listing as the public-access check: no call of its own.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.checks.base import CheckMetadata, PlanConfig
from aegis.collectors import Inventory
from aegis.models import Finding, Severity

METADATA = CheckMetadata(
    check_id="rds-storage-unencrypted",
    title="RDS DB instance storage is not encrypted",
    cis_v3="2.3.1",
    cis_v5="2.2.1",
    cis_v7="3.2.1",
    cis_unsure=("v3",),
    severity=Severity.MEDIUM,
    rationale=(
        "Unencrypted storage leaves the data, its automated backups and its snapshots readable to whoever obtains "
        "the underlying volumes or a shared snapshot, with no key policy or key audit trail in the way."
    ),
    remediation_kind=None,
    manual_fix=(
        "Snapshot the instance (CreateDBSnapshot), copy the snapshot encrypted with a KMS key (CopyDBSnapshot with "
        "KmsKeyId), restore a new instance from the copy (RestoreDBInstanceFromDBSnapshot), then switch the clients "
        "over to it and retire the old instance."
    ),
    resource_type="AWS::RDS::DBInstance",
    services=("rds",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    instances = inventory.rds.db_instances()
    inventory.count(METADATA.resource_type, len(instances))
    return [
        METADATA.finding(
            resource_arn=instance.arn,
            account_id=inventory.account_id,
            region=inventory.region,
            evidence={"db_instance_id": instance.identifier, "engine": instance.engine, "storage_encrypted": False},
            tags=instance.tags,
        )
        for instance in instances
        if not instance.storage_encrypted
    ]


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    return None
