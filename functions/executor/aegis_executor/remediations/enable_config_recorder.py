"""Turn AWS Config recording on in the change's region; undo stops it and deletes what apply created.

The state is the region's whole recording (its one customer-managed recorder and one delivery channel), so a recorder
or channel someone created or changed since the scan is drift: apply would otherwise fail half-way (one recorder per
region) or start a recorder nobody approved.
"""

from __future__ import annotations

from typing import Any

from boto3.session import Session
from botocore.exceptions import ClientError

from aegis.catalogue.kinds.enable_config_recorder import (
    CONFIG_SERVICE,
    ConfigRecording,
    DeliveryChannel,
    EnableConfigRecorder,
    Recorder,
)
from aegis_executor.remediations.base import Remediation, remediation


def _role_exists(exc: ClientError) -> bool:
    """What IAM answers when the service-linked role exists already: InvalidInput "... has been taken in this
    account" (moto answers EntityAlreadyExists)."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code"), str(error.get("Message", ""))
    return code == "EntityAlreadyExists" or (code == "InvalidInput" and "has been taken" in message)


def _recorder(raw: dict[str, Any], recording: bool) -> Recorder:
    group = raw.get("recordingGroup") or {}
    strategy = (group.get("recordingStrategy") or {}).get("useOnly", "ALL_SUPPORTED_RESOURCE_TYPES")
    return Recorder(
        name=raw["name"],
        role_arn=raw["roleARN"],
        all_supported=not group or (bool(group.get("allSupported")) and strategy == "ALL_SUPPORTED_RESOURCE_TYPES"),
        include_global_resource_types=bool(group.get("includeGlobalResourceTypes")),
        recording=recording,
    )


@remediation("enable-config-recorder")
class EnableConfigRecorderRemediation(Remediation[EnableConfigRecorder, ConfigRecording]):
    def read_current(self, session: Session, change: EnableConfigRecorder) -> ConfigRecording:
        config = self.client(session, "config", change)
        listed = config.describe_configuration_recorders().get("ConfigurationRecorders", [])
        own = [r for r in listed if not r.get("servicePrincipal")]
        recorder = None
        if own:
            statuses = config.describe_configuration_recorder_status().get("ConfigurationRecordersStatus", [])
            recording = {s.get("name"): bool(s.get("recording")) for s in statuses}
            first = min(own, key=lambda r: str(r.get("name")))
            recorder = _recorder(first, recording.get(first.get("name"), False))
        channels = config.describe_delivery_channels().get("DeliveryChannels", [])
        channel = None
        if channels:
            first_channel = min(channels, key=lambda c: str(c.get("name")))
            channel = DeliveryChannel(name=first_channel["name"], s3_bucket=first_channel["s3BucketName"])
        return ConfigRecording(recorder=recorder, delivery_channel=channel)

    def apply(self, session: Session, change: EnableConfigRecorder) -> None:
        config = self.client(session, "config", change)
        recorder = change.recorder
        if change.creates_recorder:
            self._ensure_service_linked_role(session, change)
            config.put_configuration_recorder(
                ConfigurationRecorder={
                    "name": recorder.name,
                    "roleARN": recorder.role_arn,
                    "recordingGroup": {
                        "allSupported": True,
                        "includeGlobalResourceTypes": recorder.include_global_resource_types,
                    },
                }
            )
        if change.creates_channel:
            config.put_delivery_channel(
                DeliveryChannel={"name": change.channel.name, "s3BucketName": change.channel.s3_bucket}
            )
        config.start_configuration_recorder(ConfigurationRecorderName=recorder.name)

    def undo(self, session: Session, change: EnableConfigRecorder) -> None:
        config = self.client(session, "config", change)
        name = change.recorder.name
        # Stopped first: AWS refuses to delete the delivery channel of a recording recorder.
        config.stop_configuration_recorder(ConfigurationRecorderName=name)
        if change.creates_channel:
            config.delete_delivery_channel(DeliveryChannelName=change.channel.name)
        if change.creates_recorder:
            config.delete_configuration_recorder(ConfigurationRecorderName=name)

    def _ensure_service_linked_role(self, session: Session, change: EnableConfigRecorder) -> None:
        """AWS Config's service-linked role, created unless the account has it (IAM answers that it is taken)."""
        iam = self.client(session, "iam", change)
        try:
            iam.create_service_linked_role(AWSServiceName=CONFIG_SERVICE)
        except ClientError as exc:
            if not _role_exists(exc):
                raise
