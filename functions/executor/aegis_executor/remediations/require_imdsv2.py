"""Require IMDSv2 on one instance (ModifyInstanceMetadataOptions, HttpTokens only); undo makes it optional again.

Only HttpTokens is ever sent: the endpoint and the hop limit keep whatever value they have, and a change of either
since the approval is drift the pipeline refuses on (the state compares all three).
"""

from __future__ import annotations

from boto3.session import Session
from botocore.exceptions import ClientError

from aegis.catalogue.kinds.require_imdsv2 import GONE_STATES, InstanceMetadataOptions, RequireImdsv2
from aegis_executor.remediations.base import SettingRemediation, remediation

# What EC2 answers for an instance id it does not know (any more).
_NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})


@remediation("require-imdsv2")
class RequireImdsv2Remediation(SettingRemediation[RequireImdsv2, InstanceMetadataOptions]):
    def read_current(self, session: Session, change: RequireImdsv2) -> InstanceMetadataOptions:
        ec2 = self.client(session, "ec2", change)
        try:
            reservations = ec2.describe_instances(InstanceIds=[change.instance_id])["Reservations"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return InstanceMetadataOptions(exists=False)
            raise
        for reservation in reservations:
            for instance in reservation.get("Instances", []):
                if instance.get("InstanceId") != change.instance_id:
                    continue
                if (instance.get("State") or {}).get("Name") in GONE_STATES:
                    return InstanceMetadataOptions(exists=False)
                return InstanceMetadataOptions.from_aws(instance.get("MetadataOptions"))
        return InstanceMetadataOptions(exists=False)

    def write(self, session: Session, change: RequireImdsv2, state: InstanceMetadataOptions) -> None:
        self.client(session, "ec2", change).modify_instance_metadata_options(
            InstanceId=change.instance_id, HttpTokens=state.http_tokens
        )
