"""EBS encryption by default is off in a region: CIS v3.0.0 2.2.1 / v5.0.0 5.1.1.

A per-region setting; the resource is every new volume of the region, `arn:<partition>:ec2:<region>:<account>:volume/*`.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.checks.base import (
    CheckMetadata,
    PlanConfig,
    change_for,
    ebs_default_encryption_arn,
    evidence_withheld,
    setting_findings,
)
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="ec2-ebs-default-encryption-off",
    title="EBS encryption by default is off",
    cis_v3="2.2.1",
    cis_v5="5.1.1",
    cis_v7="6.1.1",
    severity=Severity.MEDIUM,
    rationale="With encryption by default, no new volume or snapshot copy can be created unencrypted by mistake.",
    remediation_kind="enable-ebs-default-encryption",
    resource_type="AWS::EC2::EbsEncryptionByDefault",
    services=("ec2",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    return setting_findings(
        METADATA,
        inventory,
        compliant=inventory.ec2.ebs_encryption_by_default(),
        resource_arn=ebs_default_encryption_arn(inventory.region, inventory.account_id),
        evidence={"ebs_encryption_by_default": False},
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    if evidence_withheld(finding):
        return None
    return change_for(
        finding,
        EnableEbsDefaultEncryption,
        # Existing volumes are untouched; only new volumes are encrypted (with the account's default key).
        risk=Risk.LOW,
        before=EbsDefaultEncryption(enabled=False),
        after=EbsDefaultEncryption(enabled=True),
    )
