"""No logging multi-region CloudTrail trail: CIS v3.0.0 3.1 / v5.0.0 3.1."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail
from aegis.checks import PlanConfig, cloudtrail_no_multi_region_trail

CHECK = cloudtrail_no_multi_region_trail
TRAILS_ARN = "arn:aws:cloudtrail:us-east-1:123456789012:trail/*"


@pytest.fixture
def cloudtrail(aws):
    aws.client("s3", region_name="us-east-1").create_bucket(Bucket="trail-logs")
    return aws.client("cloudtrail", region_name="us-east-1")


def test_no_trail_is_flagged_and_notify_only_without_a_bucket(inventory):
    [finding] = CHECK.evaluate(inventory())

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("cloudtrail-no-multi-region-trail", "3.1", "3.1")
    assert (finding.resource_arn, finding.region) == (TRAILS_ARN, "us-east-1")
    assert CHECK.propose(finding, PlanConfig()) is None


def test_with_a_trail_bucket_a_new_logging_trail_is_proposed(cloudtrail, inventory):
    cloudtrail.create_trail(Name="stopped", S3BucketName="trail-logs", IsMultiRegionTrail=True)
    cloudtrail.create_trail(Name="regional", S3BucketName="trail-logs")
    cloudtrail.start_logging(Name="regional")

    [finding] = CHECK.evaluate(inventory())
    assert finding.evidence["trail_count"] == 2
    assert [t["name"] for t in finding.evidence["multi_region_trails_not_logging"]] == ["stopped"]

    change = CHECK.propose(finding, PlanConfig(trail_bucket="org-trail-logs"))

    assert isinstance(change, CreateMultiRegionTrail)
    assert change.resource_arn == "arn:aws:cloudtrail:us-east-1:123456789012:trail/aegis-multi-region-trail"
    assert [t.name for t in change.before.trails] == ["stopped"]
    assert change.new_trail.s3_bucket == "org-trail-logs"
    assert change.new_trail.is_multi_region
    assert change.new_trail.is_logging


def test_the_new_trail_name_does_not_collide_with_a_stopped_one(cloudtrail, inventory):
    cloudtrail.create_trail(Name="aegis-multi-region-trail", S3BucketName="trail-logs", IsMultiRegionTrail=True)
    [finding] = CHECK.evaluate(inventory())

    change = CHECK.propose(finding, PlanConfig(trail_bucket="org-trail-logs"))

    assert change.new_trail.name == "aegis-multi-region-trail-2"


def test_a_logging_multi_region_trail_satisfies_the_control(cloudtrail, inventory):
    cloudtrail.create_trail(Name="org", S3BucketName="trail-logs", IsMultiRegionTrail=True)
    cloudtrail.start_logging(Name="org")

    assert CHECK.evaluate(inventory()) == []


def test_cis_numbers_and_remediation_kind():
    meta = cloudtrail_no_multi_region_trail.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("3.1", "3.1", "create-multi-region-trail")
