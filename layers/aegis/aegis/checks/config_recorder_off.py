"""AWS Config is not recording in a region: CIS v5.0.0 3.3 / v6.0.0 and v7.0.0 4.3 (v3.0.0 3.3, not read from the
reference table).

A region passes when its recorder records every supported resource type, is recording, and has a delivery channel;
anything less leaves changes to the region's resources unrecorded. A per-region setting: the resource is the region's
configuration recorders, `arn:<partition>:config:<region>:<account>:configuration-recorder/*`. Three unpaginated
calls per region (the recorder's status only when there is a recorder).

Notify-only unless a Config bucket is configured (CONFIG_BUCKET): the agent never invents where the configuration
history goes. A recorder that records only some types is never rewritten by the agent either: a human chose those.
"""

from __future__ import annotations

from typing import Any

from pydantic import JsonValue

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_config_recorder import (
    DEFAULT_NAME,
    ConfigRecording,
    DeliveryChannel,
    EnableConfigRecorder,
    Recorder,
    config_recorders_arn,
    service_linked_role_arn,
)
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld, setting_findings
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity
from aegis.partitions import home_region_of, partition_of

METADATA = CheckMetadata(
    check_id="config-recorder-off",
    title="AWS Config is not recording in the region",
    cis_v3="3.3",
    cis_v5="3.3",
    cis_v7="4.3",
    cis_unsure=("v3",),
    severity=Severity.MEDIUM,
    rationale=(
        "Without a configuration recorder nobody can tell what a resource looked like before an incident, who "
        "changed it or when, and Config rules cannot evaluate anything."
    ),
    remediation_kind="enable-config-recorder",
    manual_fix=(
        "In the AWS Config console (Settings), record all resource types with the service-linked role and a "
        "delivery channel to an S3 bucket, then start recording: PutConfigurationRecorder, PutDeliveryChannel, "
        "StartConfigurationRecorder."
    ),
    resource_type="AWS::Config::ConfigurationRecorder",
    services=("config",),
    scope="region",
)


def evaluate(inventory: Inventory) -> list[Finding]:
    recorders = inventory.config.recorders()
    channels = inventory.config.delivery_channels()
    recording = any(r.all_supported and r.recording for r in recorders)
    # A region has at most one recorder and one channel of the account's own; the first is what a change would use.
    recorder = recorders[0] if recorders else None
    channel = channels[0] if channels else None
    evidence: dict[str, JsonValue] = {
        "recorder": None
        if recorder is None
        else {
            "name": recorder.name,
            "role_arn": recorder.role_arn,
            "all_supported": recorder.all_supported,
            "include_global_resource_types": recorder.include_global_resource_types,
            "recording": recorder.recording,
        },
        "delivery_channel": None if channel is None else {"name": channel.name, "s3_bucket": channel.s3_bucket},
    }
    return setting_findings(
        METADATA,
        inventory,
        compliant=recording and channel is not None,
        resource_arn=config_recorders_arn(inventory.region, inventory.account_id),
        evidence=evidence,
    )


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    """Create what the region lacks (the recorder, the channel to the configured bucket) and start recording; an
    existing recorder that records only some types is left to a human (notify-only)."""
    if config.config_bucket is None or evidence_withheld(finding, "recorder", "delivery_channel"):
        return None
    try:
        before = _recording(finding.evidence.get("recorder"), finding.evidence.get("delivery_channel"))
    except ValueError:
        return None  # a name or role the catalogue cannot carry: a human sets this region up
    existing = before.recorder
    if existing is not None and (existing.recording or not existing.all_supported):
        return None
    recorder = existing or Recorder(
        name=DEFAULT_NAME,
        role_arn=service_linked_role_arn(partition_of(finding.region), finding.account_id),
        all_supported=True,
        include_global_resource_types=finding.region == home_region_of(finding.region),
        recording=False,
    )
    after = ConfigRecording(
        recorder=recorder.model_copy(update={"recording": True}),
        delivery_channel=before.delivery_channel or DeliveryChannel(name=DEFAULT_NAME, s3_bucket=config.config_bucket),
    )
    # Recording changes no resource; it costs Config's per-item charges and the bucket's storage.
    return change_for(finding, EnableConfigRecorder, risk=Risk.LOW, before=before, after=after)


def _recording(recorder: Any, channel: Any) -> ConfigRecording:
    """The region's recording as the evidence describes it (ValueError for what the change's models refuse)."""
    return ConfigRecording(
        recorder=None if not isinstance(recorder, dict) else Recorder.model_validate(recorder),
        delivery_channel=None if not isinstance(channel, dict) else DeliveryChannel.model_validate(channel),
    )
