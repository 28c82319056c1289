"""The log-file-validation remediation changes that one setting of the approved trail only."""

from __future__ import annotations

import boto3
import pytest

from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def test_other_trails_and_the_trails_other_settings_are_untouched() -> None:
    case = CASES["enable-trail-log-file-validation"]()
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.create_trail(Name="team-trail", S3BucketName="org-trail-logs")
    fix = remediation_for(case.change)

    fix.apply(boto3.Session(region_name=REGION), case.change)

    trails = {t["Name"]: t for t in cloudtrail.describe_trails()["trailList"]}
    assert trails["org-trail"]["LogFileValidationEnabled"] is True
    assert trails["org-trail"]["S3BucketName"] == "org-trail-logs"
    assert trails["team-trail"]["LogFileValidationEnabled"] is False


def test_a_trail_deleted_since_approval_is_not_in_the_before_state() -> None:
    case = CASES["enable-trail-log-file-validation"]()
    boto3.client("cloudtrail", region_name=REGION).delete_trail(Name="org-trail")
    fix = remediation_for(case.change)

    current = fix.read_current(boto3.Session(region_name=REGION), case.change)

    assert not current.exists
    assert not fix.is_before(current, case.change)
