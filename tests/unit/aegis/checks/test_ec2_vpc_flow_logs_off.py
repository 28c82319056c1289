"""VPC without flow logs: CIS v3.0.0 3.7 / v5.0.0 3.7."""

from __future__ import annotations

from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs
from aegis.checks import PlanConfig, ec2_vpc_flow_logs_off
from aegis.checks.base import EXEMPT_TAG

CHECK = ec2_vpc_flow_logs_off
ROLE = "arn:aws:iam::123456789012:role/flow-logs"


def test_vpcs_without_flow_logs_are_flagged_and_those_with_are_not(aws, ec2, inventory):
    aws.client("s3", region_name="us-east-1").create_bucket(Bucket="flow-logs")
    logged = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.create_flow_logs(
        ResourceIds=[logged],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination="arn:aws:s3:::flow-logs",
    )
    unlogged = ec2.create_vpc(
        CidrBlock="10.2.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": EXEMPT_TAG, "Value": "sandbox"}]}],
    )["Vpc"]["VpcId"]
    [default_vpc] = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]]

    inv = inventory()
    findings = {f.evidence["vpc_id"]: f for f in CHECK.evaluate(inv)}

    assert set(findings) == {unlogged, default_vpc}
    finding = findings[unlogged]
    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("ec2-vpc-flow-logs-off", "3.7", "3.7")
    assert finding.resource_arn == f"arn:aws:ec2:us-east-1:123456789012:vpc/{unlogged}"
    assert finding.tags == {EXEMPT_TAG: "sandbox"}
    assert findings[default_vpc].evidence["is_default"] is True
    calls = inv.collectors.clients.api_calls
    assert calls["ec2.DescribeFlowLogs"] == 1
    assert calls["ec2.DescribeVpcs"] == 1


def test_flow_logs_are_proposed_only_with_a_configured_destination(ec2, inventory):
    [finding] = CHECK.evaluate(inventory())

    assert CHECK.propose(finding, PlanConfig()) is None
    assert CHECK.propose(finding, PlanConfig(flow_logs_log_group="/aegis/flow")) is None
    change = CHECK.propose(
        finding,
        PlanConfig(flow_logs_log_group="/aegis/flow", flow_logs_role_arn=ROLE, flow_logs_traffic_type="ALL"),
    )
    assert isinstance(change, CreateVpcFlowLogs)
    assert change.vpc_id == finding.evidence["vpc_id"]
    [added] = change.added
    assert (added.log_group_name, added.deliver_logs_role_arn, added.traffic_type) == ("/aegis/flow", ROLE, "ALL")


def test_cis_numbers_and_remediation_kind():
    meta = ec2_vpc_flow_logs_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("3.7", "3.7", "create-vpc-flow-logs")
