"""A trail does not validate its log files: CIS v3.0.0 3.2 / v5.0.0 3.2.

With validation on, CloudTrail delivers a signed digest file every hour, so a changed or deleted log file can be
proven. Each trail is checked in its home region (a multi-region trail also lists as a shadow trail elsewhere).
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_trail_log_file_validation import (
    EnableTrailLogFileValidation,
    LogFileValidation,
)
from aegis.checks._trails import trail_findings
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="cloudtrail-log-file-validation-off",
    title="CloudTrail log file validation is off",
    cis_v3="3.2",
    cis_v5="3.2",
    cis_v7="4.2",
    severity=Severity.MEDIUM,
    rationale=(
        "Without digest files nobody can prove that a delivered log file was not changed or deleted afterwards, "
        "which is what an intruder covering their tracks would do."
    ),
    remediation_kind="enable-trail-log-file-validation",
    resource_type="AWS::CloudTrail::Trail",
    services=("cloudtrail",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    return trail_findings(
        METADATA, inventory, compliant=lambda trail: trail.log_file_validation, evidence={"log_file_validation": False}
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    if evidence_withheld(finding):
        return None
    return change_for(
        finding,
        EnableTrailLogFileValidation,
        # Logging goes on unchanged; CloudTrail adds a digest file an hour to the trail's bucket.
        risk=Risk.LOW,
        before=LogFileValidation(enabled=False),
        after=LogFileValidation(enabled=True),
    )
