"""create-vpc-flow-logs: adds flow logs to one VPC, delivered by the configured role only."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, VpcFlowLogs
from tests.support.changes import ACCOUNT, COMMON, FLOW_LOG, REGION, vpc_flow_logs_change


def test_a_change_that_removes_or_moves_flow_logs_is_refused() -> None:
    for before, after, message in (
        (
            VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=(FLOW_LOG,)),
            VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=()),
            "add one",
        ),
        (VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=()), VpcFlowLogs(vpc_id="vpc-0def", flow_logs=(FLOW_LOG,)), "VPCs"),
    ):
        with pytest.raises(ValueError, match=message):
            CreateVpcFlowLogs.propose(
                check_id="ec2-vpc-flow-logs-off",
                resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0abc",
                before=before,
                after=after,
                **COMMON,
            )


def test_apply_may_pass_only_the_delivery_role_and_only_to_flow_logs() -> None:
    statements = {s["Sid"]: s for s in vpc_flow_logs_change().session_policy_statements("apply")}
    assert statements["PassTheDeliveryRole"]["Resource"] == [FLOW_LOG.deliver_logs_role_arn]
    assert statements["PassTheDeliveryRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}
    }
    assert statements["CreateOnThisVpc"]["Resource"] == [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0abc",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-flow-log/*",
    ]


def test_undo_may_only_delete_flow_logs() -> None:
    statements = vpc_flow_logs_change().session_policy_statements("undo")
    assert [s["Action"] for s in statements] == [["ec2:DeleteFlowLogs"], ["ec2:DescribeFlowLogs"]]
    assert all("iam:PassRole" not in s["Action"] for s in statements)
