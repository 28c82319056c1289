"""The flow-logs remediation sees only CloudWatch Logs flow logs, and its undo deletes only the ones it created."""

from __future__ import annotations

import boto3
import pytest

from aegis_executor.remediations import RemediationFailed, remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def test_flow_logs_to_other_destinations_are_not_part_of_the_state_and_survive_undo() -> None:
    case = CASES["create-vpc-flow-logs"]()
    vpc = case.change.before.vpc_id  # type: ignore[attr-defined]
    s3 = boto3.client("s3", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    s3.create_bucket(Bucket="aegis-flow-archive")
    ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination="arn:aws:s3:::aegis-flow-archive",
    )
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    assert fix.read_current(session, case.change).flow_logs == ()

    fix.apply(session, case.change)
    fix.undo(session, case.change)

    remaining = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    assert [f["LogDestinationType"] for f in remaining] == ["s3"]


def test_undo_of_flow_logs_deleted_meanwhile_fails_by_name() -> None:
    case = CASES["create-vpc-flow-logs"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    fix.apply(session, case.change)
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.delete_flow_logs(FlowLogIds=[f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]])

    with pytest.raises(RemediationFailed, match="none of the flow logs this change created exists"):
        fix.undo(session, case.change)
