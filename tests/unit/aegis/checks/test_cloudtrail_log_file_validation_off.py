"""CloudTrail log file validation off: CIS v3.0.0 3.2 / v5.0.0 3.2."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_trail_log_file_validation import EnableTrailLogFileValidation
from aegis.checks import PlanConfig, cloudtrail_log_file_validation_off
from aegis.models import Risk

CHECK = cloudtrail_log_file_validation_off
TRAIL_ARN = "arn:aws:cloudtrail:us-east-1:123456789012:trail/{}"


@pytest.fixture
def cloudtrail(aws):
    aws.client("s3", region_name="us-east-1").create_bucket(Bucket="trail-logs")
    return aws.client("cloudtrail", region_name="us-east-1")


def test_trails_without_validation_are_flagged_and_validating_ones_are_not(cloudtrail, inventory):
    cloudtrail.create_trail(Name="unvalidated", S3BucketName="trail-logs", IsMultiRegionTrail=True)
    cloudtrail.create_trail(Name="validated", S3BucketName="trail-logs", EnableLogFileValidation=True)

    [finding] = CHECK.evaluate(inventory())

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("cloudtrail-log-file-validation-off", "3.2", "3.2")
    assert (finding.resource_arn, finding.region) == (TRAIL_ARN.format("unvalidated"), "us-east-1")
    assert finding.evidence == {"is_multi_region": True, "log_file_validation": False}


def test_a_multi_region_trail_is_flagged_in_its_home_region_only(cloudtrail, inventory):
    cloudtrail.create_trail(Name="everywhere", S3BucketName="trail-logs", IsMultiRegionTrail=True)

    assert CHECK.evaluate(inventory("eu-west-1")) == []
    assert [f.region for f in CHECK.evaluate(inventory("us-east-1"))] == ["us-east-1"]


def test_the_proposal_turns_validation_on_for_that_trail(cloudtrail, inventory):
    cloudtrail.create_trail(Name="unvalidated", S3BucketName="trail-logs")
    [finding] = CHECK.evaluate(inventory())

    change = CHECK.propose(finding, PlanConfig())

    assert isinstance(change, EnableTrailLogFileValidation)
    assert (change.resource_arn, change.trail_name, change.risk) == (finding.resource_arn, "unvalidated", Risk.LOW)
    assert (change.before.enabled, change.after.enabled) == (False, True)


def test_cis_numbers_and_remediation_kind():
    meta = cloudtrail_log_file_validation_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("3.2", "3.2", "enable-trail-log-file-validation")
