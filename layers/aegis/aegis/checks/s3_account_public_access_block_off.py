"""Account-level S3 Block Public Access not fully on: CIS v3.0.0 2.1.4 / v5.0.0 2.1.4.

The finding is about the account, so its resource is the account's root principal ARN, in IAM's home region (see
`aegis.checks.base`). When all four settings are on there is no finding, and `s3-bucket-public` makes no per-bucket
calls at all; it says so in the scan's notes.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.checks._public_access_block import propose_all_on
from aegis.checks.base import CheckMetadata, PlanConfig, account_root_arn, setting_findings
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="s3-account-public-access-block-off",
    title="S3 Block Public Access is not fully on for the account",
    cis_v3="2.1.4",
    cis_v5="2.1.4",
    cis_v7="3.1.4",
    severity=Severity.HIGH,
    rationale=(
        "With all four account-level settings on, no ACL or bucket policy anywhere in the account can make data "
        "public, whatever a single bucket's configuration says."
    ),
    remediation_kind="enable-account-public-access-block",
    resource_type="AWS::S3::AccountPublicAccessBlock",
    services=("s3control",),
    scope="account",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    block = inventory.s3.account_public_access_block()
    return setting_findings(
        METADATA,
        inventory,
        compliant=block.fully_on,
        resource_arn=account_root_arn(inventory.partition, inventory.account_id),
        region=inventory.home_region,
        evidence={"public_access_block": block.model_dump(mode="json")},
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    # Every bucket of the account is affected at once, public websites included.
    return propose_all_on(finding, EnableAccountPublicAccessBlock, Risk.HIGH)
