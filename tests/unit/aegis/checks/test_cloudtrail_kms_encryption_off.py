"""CloudTrail logs not encrypted with a KMS key: CIS v5.0.0 3.5 / v7.0.0 4.5 (all unsure), notify-only, from
DescribeTrails alone."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.checks import PlanConfig, cloudtrail_kms_encryption_off
from aegis.models import Severity

CHECK = cloudtrail_kms_encryption_off


@pytest.fixture
def cloudtrail(aws: Any) -> Any:
    aws.client("s3", region_name="us-east-1").create_bucket(Bucket="trail-logs")
    return aws.client("cloudtrail", region_name="us-east-1")


def test_a_trail_without_a_kms_key_is_flagged_and_notify_only(cloudtrail, inventory):
    arn = cloudtrail.create_trail(Name="org", S3BucketName="trail-logs", IsMultiRegionTrail=True)["TrailARN"]

    [finding] = CHECK.evaluate(inventory())

    assert (finding.check_id, finding.resource_arn, finding.region) == (
        "cloudtrail-kms-encryption-off",
        arn,
        "us-east-1",
    )
    assert finding.evidence == {"is_multi_region": True, "kms_key_id": None}
    assert finding.severity is Severity.MEDIUM
    assert finding.remediation is None
    assert CHECK.propose(finding, PlanConfig(trail_bucket="trail-logs", config_bucket="config")) is None


def test_a_trail_encrypted_with_a_kms_key_is_not_flagged(aws, cloudtrail, inventory):
    key = aws.client("kms", region_name="us-east-1").create_key(Description="trail")["KeyMetadata"]["Arn"]
    cloudtrail.create_trail(Name="encrypted", S3BucketName="trail-logs", KmsKeyId=key)
    plain = cloudtrail.create_trail(Name="plain", S3BucketName="trail-logs")["TrailARN"]

    assert [f.resource_arn for f in CHECK.evaluate(inventory())] == [plain]


def test_a_trail_is_checked_in_its_home_region_only_and_no_call_is_added(cloudtrail, inventory):
    cloudtrail.create_trail(Name="org", S3BucketName="trail-logs", IsMultiRegionTrail=True)

    elsewhere = inventory("eu-west-1")
    assert CHECK.evaluate(elsewhere) == []
    assert elsewhere.collectors.clients.api_calls == {"cloudtrail.DescribeTrails": 1, "sts.GetCallerIdentity": 1}


def test_cis_numbers_and_remediation_kind():
    meta = cloudtrail_kms_encryption_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_id("v6"), meta.cis_v7) == ("3.5", "3.5", "4.5", "4.5")
    assert set(meta.cis_unsure) == {"v3", "v5", "v6", "v7"}
    assert meta.remediation_kind is None
    assert "UpdateTrail" in meta.manual_fix
