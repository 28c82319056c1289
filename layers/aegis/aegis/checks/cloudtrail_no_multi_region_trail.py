"""No multi-region CloudTrail trail is logging: CIS v3.0.0 3.1 / v5.0.0 3.1.

Evaluated once per scan, in its home region (the first region scanned): `DescribeTrails` with shadow trails lists the
multi-region trails of every home region. The finding's resource is the account's trails in that region,
`arn:<partition>:cloudtrail:<region>:<account>:trail/*`; the proposed change names the trail it would create.
Notify-only unless a trail bucket is configured: the agent never invents where logs should go.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail, MultiRegionTrails, TrailSpec
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld, trail_arn, trails_arn
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="cloudtrail-no-multi-region-trail",
    title="No multi-region CloudTrail trail is logging",
    cis_v3="3.1",
    cis_v5="3.1",
    cis_v7="4.1",
    severity=Severity.HIGH,
    rationale=(
        "Without a logging multi-region trail, API activity in regions nobody watches goes unrecorded, and an "
        "incident cannot be reconstructed."
    ),
    remediation_kind="create-multi-region-trail",
    manual_fix=(
        "Set the deployment's TrailBucket (a bucket with the CloudTrail bucket policy) for AegisCloud to propose the "
        "trail, or create one yourself: CreateTrail with IsMultiRegionTrail and EnableLogFileValidation, then "
        "StartLogging."
    ),
    resource_type="AWS::CloudTrail::Trail",
    services=("cloudtrail",),
    scope="account",
    evidence_identifiers={
        "multi_region_trails_not_logging[].name": "cloudtrail-trail-name",
        "multi_region_trails_not_logging[].s3_bucket": "s3-bucket-name",
    },
)


def evaluate(inventory: Inventory) -> list[Finding]:
    trails = inventory.cloudtrail.trails()
    inventory.count(METADATA.resource_type, len(trails))
    multi_region = [t for t in trails if t.is_multi_region]
    stopped = []
    for trail in multi_region:
        if inventory.cloudtrail.is_logging(trail.arn):
            return []
        stopped.append(trail)
    return [
        METADATA.finding(
            resource_arn=trails_arn(inventory.region, inventory.account_id),
            account_id=inventory.account_id,
            region=inventory.region,
            evidence={
                "trail_count": len(trails),
                "multi_region_trails_not_logging": [
                    {"name": t.name, "s3_bucket": t.s3_bucket, "log_file_validation": t.log_file_validation}
                    for t in sorted(stopped, key=lambda t: t.name)
                ],
            },
        )
    ]


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    """Create and start one multi-region trail into the configured bucket; the stopped multi-region trails stay as
    they are (`before` lists them)."""
    if config.trail_bucket is None or evidence_withheld(finding, "multi_region_trails_not_logging"):
        return None
    existing = tuple(
        TrailSpec(
            name=t["name"],
            s3_bucket=t["s3_bucket"],
            is_multi_region=True,
            log_file_validation=bool(t["log_file_validation"]),
            is_logging=False,
        )
        for t in finding.evidence["multi_region_trails_not_logging"]  # type: ignore[union-attr]
        if isinstance(t, dict)
    )
    taken = {t.name for t in existing}
    name = config.trail_name
    suffix = 2
    while name in taken:
        name = f"{config.trail_name}-{suffix}"
        suffix += 1
    new = TrailSpec(name=name, s3_bucket=config.trail_bucket)
    return change_for(
        finding,
        CreateMultiRegionTrail,
        resource_arn=trail_arn(finding.region, finding.account_id, name),
        risk=Risk.LOW,
        before=MultiRegionTrails(trails=existing),
        after=MultiRegionTrails(trails=(*existing, new)),
    )
