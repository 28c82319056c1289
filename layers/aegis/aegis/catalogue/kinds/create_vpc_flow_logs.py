"""Create VPC flow logs to the configured CloudWatch Logs group (CIS 3.7). Without a configured destination the
finding is notify-only: the agent never invents where logs should go."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from aegis.catalogue.base import ChangeBase, Phase, WideningChange
from aegis.models import Frozen
from aegis.partitions import PARTITION_PATTERN, arn_partition
from aegis.secrets_guard import display_text


class FlowLogDestination(Frozen):
    log_group_name: str = Field(pattern=r"^[A-Za-z0-9_./#-]{1,512}$")
    # A role of any partition here; the change checks that it is its own partition's.
    deliver_logs_role_arn: str = Field(pattern=rf"^arn:{PARTITION_PATTERN}:iam::\d{{12}}:role/[A-Za-z0-9_+=,.@/-]+$")
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = "REJECT"


class VpcFlowLogs(Frozen):
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]+$")
    flow_logs: tuple[FlowLogDestination, ...]


class CreateVpcFlowLogs(ChangeBase):
    kind: Literal["create-vpc-flow-logs"] = "create-vpc-flow-logs"
    before: VpcFlowLogs
    after: VpcFlowLogs

    TITLE = "Log VPC traffic"
    APPLY_ACTIONS = ("ec2:CreateFlowLogs", "iam:PassRole")
    READ_ACTIONS = ("ec2:DescribeFlowLogs",)
    UNDO_ACTIONS = ("ec2:DeleteFlowLogs",)
    UNSCOPED_ACTIONS = READ_ACTIONS
    REGION_SCOPE = "scanned"

    @property
    def vpc_id(self) -> str:
        return self.before.vpc_id

    @property
    def added(self) -> tuple[FlowLogDestination, ...]:
        return tuple(d for d in self.after.flow_logs if d not in self.before.flow_logs)

    def assert_narrows(self) -> None:
        if self.after.vpc_id != self.before.vpc_id:
            raise WideningChange("before and after name different VPCs")
        if not set(self.before.flow_logs) < set(self.after.flow_logs):
            raise WideningChange("after must keep every flow log and add one")
        if any(arn_partition(d.deliver_logs_role_arn) != self.partition for d in self.after.flow_logs):
            raise ValueError("a delivery role must be in the partition of the change's region")

    def summary(self) -> str:
        return f"Create flow logs on {self.vpc_id}"

    def describe_before(self) -> str:
        return f"{len(self.before.flow_logs)} flow logs"

    def describe_after(self) -> str:
        return "; ".join(f"{d.traffic_type} to {display_text(d.log_group_name)}" for d in self.after.flow_logs)

    def session_policy_statements(self, phase: Phase = "apply") -> list[dict[str, Any]]:
        flow_logs = f"arn:{self.partition}:ec2:{self.region}:{self.account_id}:vpc-flow-log/*"
        describe = {
            "Sid": "DescribeInRegion",
            "Effect": "Allow",
            "Action": list(self.READ_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": self.region}},
        }
        if phase == "undo":
            return [
                {
                    "Sid": "DeleteFlowLogs",
                    "Effect": "Allow",
                    "Action": ["ec2:DeleteFlowLogs"],
                    "Resource": flow_logs,
                },
                describe,
            ]
        return [
            {
                "Sid": "CreateOnThisVpc",
                "Effect": "Allow",
                "Action": ["ec2:CreateFlowLogs"],
                "Resource": [self.resource_arn, flow_logs],
            },
            {
                "Sid": "PassTheDeliveryRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": sorted({d.deliver_logs_role_arn for d in self.added}),
                "Condition": {"StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}},
            },
            describe,
        ]
