"""Create the approved flow logs on one VPC; undo deletes exactly those flow logs (by FlowLogId)."""

from __future__ import annotations

from typing import Any

from boto3.session import Session

from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis_executor.remediations.base import Remediation, RemediationFailed, remediation


def _destination(flow_log: dict[str, Any]) -> FlowLogDestination | None:
    """A CloudWatch Logs flow log as the catalogue's destination model; other destinations are not in the model."""
    if flow_log.get("LogDestinationType", "cloud-watch-logs") != "cloud-watch-logs" or not flow_log.get("LogGroupName"):
        return None
    return FlowLogDestination(
        log_group_name=flow_log["LogGroupName"],
        deliver_logs_role_arn=flow_log["DeliverLogsPermissionArn"],
        traffic_type=flow_log["TrafficType"],
    )


@remediation("create-vpc-flow-logs")
class CreateVpcFlowLogsRemediation(Remediation[CreateVpcFlowLogs, VpcFlowLogs]):
    def _flow_logs(self, session: Session, change: CreateVpcFlowLogs) -> list[dict[str, Any]]:
        ec2 = self.client(session, "ec2", change)
        found: list[dict[str, Any]] = []
        for page in ec2.get_paginator("describe_flow_logs").paginate(
            Filters=[{"Name": "resource-id", "Values": [change.vpc_id]}]
        ):
            found += [f for f in page["FlowLogs"] if f.get("ResourceId") == change.vpc_id]
        return found

    def read_current(self, session: Session, change: CreateVpcFlowLogs) -> VpcFlowLogs:
        destinations = {d for d in map(_destination, self._flow_logs(session, change)) if d is not None}
        ordered = sorted(destinations, key=lambda d: (d.log_group_name, d.deliver_logs_role_arn, d.traffic_type))
        return VpcFlowLogs(vpc_id=change.vpc_id, flow_logs=tuple(ordered))

    def is_before(self, current: VpcFlowLogs, change: CreateVpcFlowLogs) -> bool:
        present = set(current.flow_logs)
        return set(change.before.flow_logs) <= present and not (set(change.added) & present)

    def is_after(self, current: VpcFlowLogs, change: CreateVpcFlowLogs) -> bool:
        return set(change.after.flow_logs) <= set(current.flow_logs)

    def apply(self, session: Session, change: CreateVpcFlowLogs) -> None:
        ec2 = self.client(session, "ec2", change)
        for destination in change.added:
            answer = ec2.create_flow_logs(
                ResourceIds=[change.vpc_id],
                ResourceType="VPC",
                TrafficType=destination.traffic_type,
                LogDestinationType="cloud-watch-logs",
                LogGroupName=destination.log_group_name,
                DeliverLogsPermissionArn=destination.deliver_logs_role_arn,
            )
            if answer.get("Unsuccessful"):
                codes = sorted({u.get("Error", {}).get("Code", "?") for u in answer["Unsuccessful"]})
                raise RemediationFailed(f"CreateFlowLogs was unsuccessful: {', '.join(codes)}")

    def undo(self, session: Session, change: CreateVpcFlowLogs) -> None:
        added = set(change.added)
        ids = sorted(f["FlowLogId"] for f in self._flow_logs(session, change) if _destination(f) in added)
        if not ids:
            raise RemediationFailed("none of the flow logs this change created exists any more")
        answer = self.client(session, "ec2", change).delete_flow_logs(FlowLogIds=ids)
        if answer.get("Unsuccessful"):
            raise RemediationFailed("DeleteFlowLogs was unsuccessful")
