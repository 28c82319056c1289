"""The account password policy is missing or weak (minimum length < 14, or reuse prevention < 24):
CIS v3.0.0 1.8 and 1.9 / v5.0.0 1.7 and 1.8.

An account-level setting: the resource is the account's root principal ARN, in IAM's home region (see
`aegis.checks.base`).
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.strengthen_password_policy import (
    MIN_LENGTH,
    MIN_REUSE,
    PasswordPolicy,
    StrengthenPasswordPolicy,
)
from aegis.checks.base import (
    CheckMetadata,
    PlanConfig,
    account_root_arn,
    change_for,
    evidence_withheld,
    setting_findings,
)
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="iam-password-policy-weak",
    title="IAM password policy requires fewer than 14 characters or prevents reuse of fewer than 24 passwords",
    cis_v3="1.8, 1.9",
    cis_v5="1.7, 1.8",
    cis_v7="2.8, 2.9",
    cis_v6="2.7, 2.8",
    severity=Severity.MEDIUM,
    rationale="Short or recycled console passwords are guessed and reused after leaks.",
    remediation_kind="strengthen-password-policy",
    resource_type="AWS::IAM::AccountPasswordPolicy",
    services=("iam",),
    scope="account",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    policy = PasswordPolicy.from_aws(inventory.iam.password_policy())
    return setting_findings(
        METADATA,
        inventory,
        compliant=policy.exists and not policy.weak,
        resource_arn=account_root_arn(inventory.partition, inventory.account_id),
        region=inventory.home_region,
        evidence={
            "password_policy": policy.model_dump(mode="json"),
            "length_ok": (policy.minimum_password_length or 0) >= MIN_LENGTH,
            "reuse_ok": (policy.password_reuse_prevention or 0) >= MIN_REUSE,
        },
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    """UpdateAccountPasswordPolicy replaces the whole policy, so `after` keeps every current value and raises only
    the two that are too weak."""
    if evidence_withheld(finding):
        return None
    before = PasswordPolicy.model_validate(finding.evidence["password_policy"])
    return change_for(
        finding,
        StrengthenPasswordPolicy,
        # Existing passwords keep working until they are next changed.
        risk=Risk.LOW,
        before=before,
        after=before.strengthened(),
    )
