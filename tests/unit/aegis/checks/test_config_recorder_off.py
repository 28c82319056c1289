"""AWS Config not recording in a region: CIS v5.0.0 3.3 / v7.0.0 4.3, fixed only where a Config bucket is set."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.catalogue.kinds.enable_config_recorder import EnableConfigRecorder
from aegis.checks import PlanConfig, config_recorder_off
from aegis.models import Risk, Severity

CHECK = config_recorder_off
ACCOUNT = "123456789012"
RECORDERS = f"arn:aws:config:us-east-1:{ACCOUNT}:configuration-recorder/*"
SERVICE_LINKED = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
WITH_BUCKET = PlanConfig(config_bucket="org-config-history")


@pytest.fixture
def config(aws: Any) -> Any:
    aws.client("s3", region_name="us-east-1").create_bucket(Bucket="team-config")
    return aws.client("config", region_name="us-east-1")


def _recorder(config: Any, name: str = "team", **group: Any) -> None:
    recording_group = group or {"allSupported": True, "includeGlobalResourceTypes": False}
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": name,
            "roleARN": f"arn:aws:iam::{ACCOUNT}:role/team-config",
            "recordingGroup": recording_group,
        }
    )


def _channel(config: Any, name: str = "team") -> None:
    config.put_delivery_channel(DeliveryChannel={"name": name, "s3BucketName": "team-config"})


def test_a_region_without_a_recorder_is_flagged_and_notify_only_without_a_bucket(config, inventory):
    [finding] = CHECK.evaluate(inventory())

    assert (finding.check_id, finding.resource_arn, finding.region) == ("config-recorder-off", RECORDERS, "us-east-1")
    assert finding.evidence == {"recorder": None, "delivery_channel": None}
    assert finding.severity is Severity.MEDIUM
    assert CHECK.propose(finding, PlanConfig()) is None
    assert CHECK.METADATA.manual_fix


def test_with_a_bucket_a_recorder_of_everything_is_created_and_started(config, inventory):
    [finding] = CHECK.evaluate(inventory())

    change = CHECK.propose(finding, WITH_BUCKET)

    assert isinstance(change, EnableConfigRecorder)
    assert change.risk is Risk.LOW
    assert (change.creates_recorder, change.creates_channel) == (True, True)
    assert change.recorder.model_dump() == {
        "name": "default",
        "role_arn": SERVICE_LINKED,
        "all_supported": True,
        "include_global_resource_types": True,  # us-east-1 is IAM's home region
        "recording": True,
    }
    assert (change.channel.name, change.channel.s3_bucket) == ("default", "org-config-history")


def test_global_types_are_recorded_in_the_home_region_only(aws, inventory):
    [finding] = CHECK.evaluate(inventory("eu-west-1"))

    change = CHECK.propose(finding, WITH_BUCKET)

    assert change.resource_arn == f"arn:aws:config:eu-west-1:{ACCOUNT}:configuration-recorder/*"
    assert change.recorder.include_global_resource_types is False


def test_a_stopped_recorder_of_everything_is_only_started_with_its_own_channel(config, inventory):
    _recorder(config)
    _channel(config)

    [finding] = CHECK.evaluate(inventory())
    change = CHECK.propose(finding, WITH_BUCKET)

    assert finding.evidence["recorder"]["recording"] is False
    assert (change.creates_recorder, change.creates_channel) == (False, False)
    assert change.recorder == change.before.recorder.model_copy(update={"recording": True})
    assert change.recorder.role_arn == f"arn:aws:iam::{ACCOUNT}:role/team-config"
    assert change.channel.s3_bucket == "team-config"


def test_a_stopped_recorder_without_a_channel_gets_one_to_the_bucket(config, inventory):
    _recorder(config)

    [finding] = CHECK.evaluate(inventory())
    change = CHECK.propose(finding, WITH_BUCKET)

    assert (change.creates_recorder, change.creates_channel) == (False, True)
    assert change.channel.s3_bucket == "org-config-history"


def test_a_recorder_of_some_types_is_flagged_but_left_to_a_human(config, inventory):
    _recorder(config, resourceTypes=["AWS::EC2::Instance"], allSupported=False)
    _channel(config)
    config.start_configuration_recorder(ConfigurationRecorderName="team")

    [finding] = CHECK.evaluate(inventory())

    assert finding.evidence["recorder"]["all_supported"] is False
    assert finding.evidence["recorder"]["recording"] is True
    assert CHECK.propose(finding, WITH_BUCKET) is None


def test_a_recording_recorder_of_everything_with_a_channel_satisfies_the_control(config, inventory):
    _recorder(config)
    _channel(config)
    config.start_configuration_recorder(ConfigurationRecorderName="team")

    assert CHECK.evaluate(inventory()) == []


def test_a_name_the_catalogue_cannot_carry_is_left_to_a_human(config, inventory):
    _recorder(config, name="a recorder named in prose")

    [finding] = CHECK.evaluate(inventory())

    assert CHECK.propose(finding, WITH_BUCKET) is None


def test_three_calls_describe_a_region(config, inventory):
    _recorder(config)
    scanned = inventory()

    CHECK.evaluate(scanned)

    calls = scanned.collectors.clients.api_calls
    assert {k: v for k, v in calls.items() if k.startswith("config.")} == {
        "config.DescribeConfigurationRecorderStatus": 1,
        "config.DescribeConfigurationRecorders": 1,
        "config.DescribeDeliveryChannels": 1,
    }


def test_cis_numbers_and_remediation_kind():
    meta = config_recorder_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_id("v6"), meta.cis_v7) == ("3.3", "3.3", "4.3", "4.3")
    assert meta.cis_unsure == ("v3",)
    assert meta.remediation_kind == "enable-config-recorder"
