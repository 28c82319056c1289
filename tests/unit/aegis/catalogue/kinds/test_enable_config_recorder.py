"""enable-config-recorder: starts recording every supported type, creating only what the region lacks; an existing
recorder is started unchanged, an existing channel kept; what it creates uses Config's service-linked role."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.catalogue.kinds.enable_config_recorder import (
    ConfigRecording,
    DeliveryChannel,
    EnableConfigRecorder,
    Recorder,
    config_recorders_arn,
    service_linked_role_arn,
)
from aegis.models import Risk
from tests.support.changes import ACCOUNT, REGION, config_recorder_change

HOME = "us-east-1"
CHANNEL = DeliveryChannel(name="default", s3_bucket="aegis-config-logs")


def created(region: str = HOME, **fields: Any) -> Recorder:
    values = {
        "name": "default",
        "role_arn": service_linked_role_arn("aws", ACCOUNT),
        "all_supported": True,
        "include_global_resource_types": region == HOME,
        "recording": True,
    }
    return Recorder(**(values | fields))


def propose(before: ConfigRecording, after: ConfigRecording, region: str = HOME, **fields: Any) -> EnableConfigRecorder:
    values: dict[str, Any] = {
        "check_id": "config-recorder-off",
        "resource_arn": config_recorders_arn(region, ACCOUNT),
        "account_id": ACCOUNT,
        "region": region,
        "risk": Risk.LOW,
        "before": before,
        "after": after,
    }
    return EnableConfigRecorder.propose(**(values | fields))


def test_a_new_recorder_of_everything_with_the_service_linked_role_is_accepted() -> None:
    change = propose(ConfigRecording(), ConfigRecording(recorder=created(), delivery_channel=CHANNEL))
    assert (change.creates_recorder, change.creates_channel) == (True, True)
    outside_home = propose(
        ConfigRecording(), ConfigRecording(recorder=created(REGION), delivery_channel=CHANNEL), region=REGION
    )
    assert outside_home.recorder.include_global_resource_types is False


@pytest.mark.parametrize(
    ("recorder", "message"),
    [
        (created(role_arn=f"arn:aws:iam::{ACCOUNT}:role/admin"), "service-linked role"),
        (created(name="aegis"), "named default"),
        (created(include_global_resource_types=False), "home region only"),
        (created(all_supported=False), "every supported resource type"),
        (created(recording=False), "every supported resource type"),
    ],
)
def test_a_created_recorder_must_record_everything_through_configs_own_role(recorder: Recorder, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        propose(ConfigRecording(), ConfigRecording(recorder=recorder, delivery_channel=CHANNEL))


def test_global_types_outside_the_home_region_are_refused() -> None:
    with pytest.raises(ValueError, match="home region only"):
        propose(
            ConfigRecording(),
            ConfigRecording(recorder=created(REGION, include_global_resource_types=True), delivery_channel=CHANNEL),
            region=REGION,
        )


def test_an_existing_recorder_is_started_never_changed() -> None:
    stopped = created(name="team", role_arn=f"arn:aws:iam::{ACCOUNT}:role/team", recording=False)
    before = ConfigRecording(recorder=stopped, delivery_channel=CHANNEL)
    started = propose(
        before, ConfigRecording(recorder=stopped.model_copy(update={"recording": True}), delivery_channel=CHANNEL)
    )
    assert (started.creates_recorder, started.creates_channel) == (False, False)

    with pytest.raises(ValueError, match="only started, never changed"):
        propose(before, ConfigRecording(recorder=created(), delivery_channel=CHANNEL))
    with pytest.raises(ValueError, match="recording already"):
        propose(
            ConfigRecording(recorder=created(), delivery_channel=CHANNEL),
            ConfigRecording(recorder=created(), delivery_channel=CHANNEL),
        )


def test_an_existing_channel_is_kept_and_a_created_one_is_named_default() -> None:
    theirs = DeliveryChannel(name="team", s3_bucket="team-config")
    with pytest.raises(ValueError, match="kept as it is"):
        propose(ConfigRecording(delivery_channel=theirs), ConfigRecording(recorder=created(), delivery_channel=CHANNEL))
    with pytest.raises(ValueError, match="channel the catalogue creates is named default"):
        propose(ConfigRecording(), ConfigRecording(recorder=created(), delivery_channel=theirs))
    with pytest.raises(ValueError, match="every supported resource type and deliver it"):
        propose(ConfigRecording(), ConfigRecording(recorder=created()))


def test_the_resource_is_the_regions_recorders() -> None:
    with pytest.raises(ValueError, match="configuration recorders of the change's region"):
        propose(
            ConfigRecording(),
            ConfigRecording(recorder=created(), delivery_channel=CHANNEL),
            resource_arn=config_recorders_arn(REGION, ACCOUNT),
        )


def test_the_approver_sees_what_is_created_started_and_kept() -> None:
    change = config_recorder_change()
    assert change.summary() == f"Record AWS Config in {REGION}"
    assert change.describe_before() == "recorder default (all supported types, own role) stopped; no delivery channel"
    assert change.describe_after() == (
        "start recorder default (all supported types, own role) recording; "
        "create channel default -> s3 aegis-config-logs"
    )
    new = propose(ConfigRecording(), ConfigRecording(recorder=created(), delivery_channel=CHANNEL))
    assert new.describe_after() == (
        "create recorder default (all supported types, global types, Config's service-linked role) recording; "
        "create channel default -> s3 aegis-config-logs"
    )


def test_the_longest_texts_fit_the_approvers_screen() -> None:
    name = "r" * 32
    stopped = created(
        name=name, role_arn=f"arn:aws:iam::{ACCOUNT}:role/team", include_global_resource_types=True, recording=False
    )
    channel = DeliveryChannel(name="c" * 32, s3_bucket="b" * 63)
    change = propose(
        ConfigRecording(recorder=stopped, delivery_channel=channel),
        ConfigRecording(recorder=stopped.model_copy(update={"recording": True}), delivery_channel=channel),
    )
    assert change.overlong_properties() == ()


def test_the_session_policy_names_the_recorder_and_configs_own_role_only() -> None:
    change = config_recorder_change()
    apply = {s["Sid"]: s for s in change.session_policy_statements("apply")}
    prefix = f"arn:aws:config:{REGION}:{ACCOUNT}:configuration-recorder"
    assert apply["ThisRecorderOnly"]["Resource"] == [f"{prefix}/default", f"{prefix}/default/*"]
    assert apply["UnscopedActionsInRegion"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": REGION}}
    role = service_linked_role_arn("aws", ACCOUNT)
    assert apply["CreateConfigServiceLinkedRoleOnly"]["Resource"] == role
    assert apply["CreateConfigServiceLinkedRoleOnly"]["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "config.amazonaws.com"}
    }
    # The recorder here has a role of its own, which is never passed: only a created recorder is given a role.
    assert apply["PassConfigServiceLinkedRoleToConfigOnly"]["Resource"] == role
    undo = {s["Sid"]: s for s in change.session_policy_statements("undo")}
    assert set(undo) == {"ThisRecorderOnly", "UnscopedActionsInRegion"}
    assert undo["ThisRecorderOnly"]["Action"] == [
        "config:DeleteConfigurationRecorder",
        "config:StopConfigurationRecorder",
    ]
