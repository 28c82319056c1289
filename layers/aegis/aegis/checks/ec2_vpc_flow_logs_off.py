"""A VPC has no flow logs: CIS v3.0.0 3.7 / v5.0.0 3.7 (numbers from the reference's v3.0/v5.0 mappings).

One `DescribeVpcs` and one `DescribeFlowLogs` listing per region, whatever the number of VPCs. Notify-only unless a
CloudWatch Logs group and a delivery role are configured.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld, vpc_arn
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="ec2-vpc-flow-logs-off",
    title="VPC flow logging is off",
    cis_v3="3.7",
    cis_v5="3.7",
    cis_v7="4.7",
    severity=Severity.MEDIUM,
    rationale="Flow logs show which traffic was rejected or accepted: the evidence for detecting and investigating "
    "scans, exfiltration and misrouted traffic.",
    remediation_kind="create-vpc-flow-logs",
    manual_fix=(
        "Set the deployment's FlowLogsLogGroup and FlowLogsRoleArn for AegisCloud to propose flow logs, or create "
        "them yourself: CreateFlowLogs on the VPC, to a CloudWatch Logs group or an S3 bucket."
    ),
    resource_type="AWS::EC2::VPC",
    services=("ec2",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    vpcs = inventory.ec2.vpcs()
    inventory.count(METADATA.resource_type, len(vpcs))
    if not vpcs:
        return []
    logged = inventory.ec2.flow_log_resource_ids()
    return [
        METADATA.finding(
            resource_arn=vpc_arn(inventory.region, inventory.account_id, vpc.vpc_id),
            account_id=inventory.account_id,
            region=inventory.region,
            evidence={"vpc_id": vpc.vpc_id, "is_default": vpc.is_default, "flow_logs": 0},
            tags=vpc.tags,
        )
        for vpc in sorted(vpcs, key=lambda v: v.vpc_id)
        if vpc.vpc_id not in logged
    ]


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    if config.flow_logs_log_group is None or config.flow_logs_role_arn is None or evidence_withheld(finding):
        return None
    vpc_id = str(finding.evidence["vpc_id"])
    destination = FlowLogDestination(
        log_group_name=config.flow_logs_log_group,
        deliver_logs_role_arn=config.flow_logs_role_arn,
        traffic_type=config.flow_logs_traffic_type,
    )
    return change_for(
        finding,
        CreateVpcFlowLogs,
        # Logging changes no traffic; it costs CloudWatch Logs ingestion.
        risk=Risk.LOW,
        before=VpcFlowLogs(vpc_id=vpc_id, flow_logs=()),
        after=VpcFlowLogs(vpc_id=vpc_id, flow_logs=(destination,)),
    )
