"""The root user has no MFA device: CIS v3.0.0 1.5 / v5.0.0 1.4 / v6.0.0 2.4 / v7.0.0 2.5. None of these ids is in
the reference table, so all are listed as unsure.

Read from `GetAccountSummary`'s `AccountMFAEnabled`, which the root access keys check reads already (no new call).
Notify-only: only the root user itself can enable its MFA device. The resource is the root user,
`arn:<partition>:iam::<account>:root`, in IAM's home region.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.checks.base import CheckMetadata, PlanConfig, account_root_arn, setting_findings
from aegis.collectors import Inventory
from aegis.models import Finding, Severity

METADATA = CheckMetadata(
    check_id="iam-root-mfa-off",
    title="Root user has no MFA device",
    cis_v3="1.5",
    cis_v5="1.4",
    cis_v7="2.5",
    cis_v6="2.4",
    cis_unsure=("v3", "v5", "v6", "v7"),
    severity=Severity.CRITICAL,
    rationale=(
        "The root user can do anything, including closing the account and removing every other control; with only "
        "a password, one phished or reused password is enough."
    ),
    remediation_kind=None,
    manual_fix=(
        "Sign in as the root user and assign a hardware or virtual MFA device (IAM console: Security credentials, "
        "Assign MFA device; API: EnableMFADevice, which only the root user can call for itself)."
    ),
    resource_type="AWS::IAM::RootUser",
    services=("iam",),
    scope="account",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    enabled = int(inventory.iam.account_summary().get("AccountMFAEnabled", 0))
    return setting_findings(
        METADATA,
        inventory,
        compliant=enabled > 0,
        resource_arn=account_root_arn(inventory.partition, inventory.account_id),
        region=inventory.home_region,
        evidence={"account_mfa_enabled": enabled},
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    return None
