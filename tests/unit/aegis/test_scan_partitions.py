"""A scan in GovCloud and China, on moto: the seeded account's findings are found with ARNs of the scanned region's
partition, account-wide ones in IAM's home region of it, and every finding's change is built in that partition."""

from __future__ import annotations

import boto3
import pytest

from aegis.checks import CHECKS, PlanConfig
from aegis.partitions import arn_partition
from aegis.scan import InvalidScanRequest, run_scan
from aegis_local.scenario.seed import seed_account
from tests.support.moto_account import MotoSetup, moto_account

ACCOUNT = "123456789012"
# (partition, the region scanned, IAM's home region of the partition): a scanned region that is not the home one,
# so that account-wide findings show where they are addressed.
SCANS = [
    ("aws", "eu-west-1", "us-east-1"),
    ("aws-us-gov", "us-gov-east-1", "us-gov-west-1"),
    ("aws-cn", "cn-northwest-1", "cn-north-1"),
]
# moto 5.2.5 answers GovCloud's IAM endpoint (iam.us-gov.amazonaws.com) as the commercial partition, so the IAM
# resources it returns there have `arn:aws:` ARNs; the admin-policy checks report the ARN IAM returns (it builds
# none), so on moto it cannot show GovCloud's. tests/unit/aegis/catalogue covers its change in every partition.
MOTO_COMMERCIAL_IAM = {"aws-us-gov": {"iam-admin-policy-attached", "iam-inline-policy-admin"}}
ACCOUNT_WIDE_SERVICES = {"iam", "s3control"}


@pytest.mark.parametrize(("partition", "region", "home"), SCANS, ids=[p for p, _, _ in SCANS])
def test_a_scan_finds_the_seeded_account_in_its_partition(
    monkeypatch: pytest.MonkeyPatch, partition: str, region: str, home: str
) -> None:
    config = PlanConfig(
        trail_bucket="org-trail-logs",
        flow_logs_log_group="/aegis/flow-logs",
        flow_logs_role_arn=f"arn:{partition}:iam::{ACCOUNT}:role/flow-logs",
        config_bucket="org-config-history",
    )
    checks = sorted(set(CHECKS) - MOTO_COMMERCIAL_IAM.get(partition, set()))
    with moto_account(monkeypatch, MotoSetup(region)) as session:
        account = seed_account(session, region)
        result = run_scan(session, [region], check_ids=checks, plan_config=config)

    assert result.errors == []
    expected = {(check, arn) for check, arn in account.expected_findings if check in checks}
    assert {(f.check_id, f.resource_arn) for f in result.findings} == expected
    assert {arn_partition(f.resource_arn) for f in result.findings} == {partition}
    for finding in result.findings:
        metadata = CHECKS[finding.check_id].METADATA
        # Account-wide settings of IAM and S3 Control are addressed to IAM's home region; the rest (a bucket, the
        # account's trails) to the one region scanned.
        where = home if set(metadata.services) <= ACCOUNT_WIDE_SERVICES else region
        assert finding.region == where, finding.check_id
        change = CHECKS[finding.check_id].propose(finding, config)
        if metadata.remediation_kind is None:  # notify-only whatever the configuration
            assert change is None, finding.check_id
            continue
        assert change is not None
        assert change.kind in metadata.kinds, finding.check_id
        assert (change.partition, change.region) == (partition, finding.region)


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (["us-east-1", "us-gov-west-1"], "regions of one partition only, not of aws, aws-us-gov"),
        (["cn-north-1", "cn-northwest-1", "eu-west-1"], "regions of one partition only, not of aws, aws-cn"),
        (["zz-east-1"], "no AWS partition has region 'zz-east-1'"),
    ],
)
def test_a_scan_of_no_partition_or_of_several_is_refused(aws: boto3.Session, regions: list[str], message: str) -> None:
    with pytest.raises(InvalidScanRequest, match=message):
        run_scan(aws, regions)
