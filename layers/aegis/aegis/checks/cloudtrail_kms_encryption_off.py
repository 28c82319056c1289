"""A trail's log files are not encrypted with a KMS key: CIS v5.0.0 3.5 / v6.0.0 and v7.0.0 4.5 (v3.0.0 3.5). None of
these ids is in the reference table, so all are listed as unsure.

With SSE-KMS, reading a log file needs kms:Decrypt on the trail's key as well as s3:GetObject on the bucket: one more
permission an intruder must hold to read (or quietly vet) the record of what they did. Read from `DescribeTrails`'
`KmsKeyId` (no call per trail); each trail is checked in its home region.

Notify-only: a key needs a key policy letting CloudTrail encrypt and the readers decrypt, which only the account's
owners can write; a wrong one stops log delivery.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.checks._trails import trail_findings
from aegis.checks.base import CheckMetadata, PlanConfig
from aegis.collectors import Inventory
from aegis.models import Finding, Severity

METADATA = CheckMetadata(
    check_id="cloudtrail-kms-encryption-off",
    title="CloudTrail logs are not encrypted with a KMS key",
    cis_v3="3.5",
    cis_v5="3.5",
    cis_v7="4.5",
    cis_unsure=("v3", "v5", "v6", "v7"),
    severity=Severity.MEDIUM,
    rationale=(
        "Logs encrypted only by S3 can be read by anyone who can read the bucket; a KMS key adds a second, "
        "separately audited permission between an intruder and the record of their actions."
    ),
    remediation_kind=None,
    manual_fix=(
        "Create a symmetric KMS key whose key policy lets cloudtrail.amazonaws.com encrypt (kms:GenerateDataKey*) "
        "and the log readers decrypt, then set it on the trail (CloudTrail console: Edit, or UpdateTrail KmsKeyId)."
    ),
    resource_type="AWS::CloudTrail::Trail",
    services=("cloudtrail",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    return trail_findings(
        METADATA, inventory, compliant=lambda trail: bool(trail.kms_key_id), evidence={"kms_key_id": None}
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    return None
