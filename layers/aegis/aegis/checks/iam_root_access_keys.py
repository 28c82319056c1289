"""The root user has access keys: CIS v3.0.0 1.4 / v5.0.0 1.3. Notify-only: no IAM role can delete the root user's
keys (only root itself, or Organizations' centralized root access), so the agent never proposes a change.

The resource is the root user itself, `arn:<partition>:iam::<account>:root`, in IAM's home region (us-east-1 in the
commercial partition).
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.checks.base import CheckMetadata, PlanConfig, account_root_arn, setting_findings
from aegis.collectors import Inventory
from aegis.models import Finding, Severity

METADATA = CheckMetadata(
    check_id="iam-root-access-keys",
    title="Root user has access keys",
    cis_v3="1.4",
    cis_v5="1.3",
    cis_v7="2.4",
    cis_v6="2.3",
    severity=Severity.CRITICAL,
    rationale=(
        "Root access keys cannot be restricted by any policy; whoever obtains one owns the account. Use roles and "
        "temporary credentials instead."
    ),
    remediation_kind=None,
    manual_fix=(
        "Sign in as the root user, open Security credentials and delete every access key (no IAM role can: "
        "iam:DeleteAccessKey on the root user needs root, or sts:AssumeRoot from the organization's management "
        "account)."
    ),
    resource_type="AWS::IAM::RootUser",
    services=("iam",),
    scope="account",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    present = int(inventory.iam.account_summary().get("AccountAccessKeysPresent", 0))
    return setting_findings(
        METADATA,
        inventory,
        compliant=present <= 0,
        resource_arn=account_root_arn(inventory.partition, inventory.account_id),
        region=inventory.home_region,
        evidence={"account_access_keys_present": present},
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    return None
