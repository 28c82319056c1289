"""Read-only AWS Config inventory of one region: its configuration recorder (what it records, whether it is
recording) and its delivery channel.

A region holds at most one customer-managed recorder and one delivery channel, so three unpaginated calls describe it
whatever the account's size. Service-linked recorders (created by another AWS service for its own use, with a
`servicePrincipal`) record only what that service asks for and are not the account's recorder: they are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from aegis.collectors.base import ServiceCollector


@dataclass(frozen=True, slots=True)
class Recorder:
    name: str
    role_arn: str
    # Every resource type Config supports (recordingGroup.allSupported), rather than a list or an exclusion list.
    all_supported: bool
    include_global_resource_types: bool
    recording: bool


@dataclass(frozen=True, slots=True)
class DeliveryChannel:
    name: str
    s3_bucket: str


class ConfigCollector(ServiceCollector):
    def recorders(self) -> list[Recorder]:
        """The region's customer-managed configuration recorders (AWS allows one), with their recording status."""
        return self._once.get("recorders", self._describe_recorders)

    def _describe_recorders(self) -> list[Recorder]:
        listed = self._client.describe_configuration_recorders().get("ConfigurationRecorders", [])
        own = [r for r in listed if not r.get("servicePrincipal")]
        if not own:
            return []
        statuses = self._client.describe_configuration_recorder_status().get("ConfigurationRecordersStatus", [])
        recording = {s.get("name"): bool(s.get("recording")) for s in statuses}
        recorders = []
        for raw in own:
            group = raw.get("recordingGroup") or {}
            strategy = (group.get("recordingStrategy") or {}).get("useOnly", "ALL_SUPPORTED_RESOURCE_TYPES")
            recorders.append(
                Recorder(
                    name=raw.get("name", ""),
                    role_arn=raw.get("roleARN", ""),
                    # No recording group at all records every supported type (the API's default).
                    all_supported=not group
                    or (bool(group.get("allSupported")) and strategy == "ALL_SUPPORTED_RESOURCE_TYPES"),
                    include_global_resource_types=bool(group.get("includeGlobalResourceTypes")),
                    recording=recording.get(raw.get("name"), False),
                )
            )
        return sorted(recorders, key=lambda r: r.name)

    def delivery_channels(self) -> list[DeliveryChannel]:
        return self._once.get("channels", self._describe_delivery_channels)

    def _describe_delivery_channels(self) -> list[DeliveryChannel]:
        listed = self._client.describe_delivery_channels().get("DeliveryChannels", [])
        channels = [DeliveryChannel(name=c.get("name", ""), s3_bucket=c.get("s3BucketName", "")) for c in listed]
        return sorted(channels, key=lambda c: c.name)
