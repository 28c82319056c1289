"""The trail remediation creates, reads and removes the approved trail only."""

from __future__ import annotations

import boto3
import pytest

from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def test_other_trails_are_not_the_state_and_survive_undo() -> None:
    case = CASES["create-multi-region-trail"]()
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.create_trail(Name="organization-trail", S3BucketName="aegis-trail-logs", IsMultiRegionTrail=True)
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    assert fix.is_before(fix.read_current(session, case.change), case.change)

    fix.apply(session, case.change)
    fix.undo(session, case.change)

    assert fix.verify_undone(session, case.change).ok
    assert [t["Name"] for t in cloudtrail.describe_trails()["trailList"]] == ["organization-trail"]
