"""enable-config-recorder's destination rule: recording is turned on only where the deployment set ConfigBucket, and a
delivery channel the change creates goes to that bucket and nowhere else. An existing channel is kept as it is, so a
change that only starts a recorder names no new destination."""

from __future__ import annotations

from aegis.catalogue.kinds.enable_config_recorder import ConfigRecording, DeliveryChannel, EnableConfigRecorder
from aegis_validator.rules import Problem, parse_envelope, plan_problems
from aegis_validator.settings import ValidatorSettings
from tests.support.validator_plans import CONFIG_BUCKET, rebuilt, request, settings, valid_changes

NO_RECORDS = lambda change_id: []  # noqa: E731


def problems(change: EnableConfigRecorder, deployment: ValidatorSettings | None = None) -> list[Problem]:
    return plan_problems(parse_envelope(request([change])), deployment or settings(), NO_RECORDS)


def recorder_change() -> EnableConfigRecorder:
    change = next(c for c in valid_changes() if isinstance(c, EnableConfigRecorder))
    assert change.creates_channel
    assert change.channel.s3_bucket == CONFIG_BUCKET
    return change


def delivering_to(bucket: str, *, existing: bool = False) -> EnableConfigRecorder:
    change = recorder_change()
    channel = DeliveryChannel(name="default", s3_bucket=bucket)
    before = ConfigRecording(recorder=change.before.recorder, delivery_channel=channel if existing else None)
    after = ConfigRecording(recorder=change.recorder, delivery_channel=channel)
    rebuilt_change = rebuilt(change, before=before, after=after)
    assert isinstance(rebuilt_change, EnableConfigRecorder)
    return rebuilt_change


def test_a_channel_created_to_config_bucket_is_accepted() -> None:
    assert problems(recorder_change()) == []


def test_a_channel_created_to_another_bucket_is_refused() -> None:
    [problem] = problems(delivering_to("attacker-collects-config"))
    assert (problem.rule, problem.detail) == (
        "destination-mismatch",
        "the delivery channel does not deliver to ConfigBucket",
    )


def test_starting_a_recorder_keeps_its_existing_channel_whatever_its_bucket() -> None:
    assert problems(delivering_to("team-config-history", existing=True)) == []


def test_without_config_bucket_no_recording_is_turned_on() -> None:
    unconfigured = settings(config_bucket="")
    for change in (recorder_change(), delivering_to("team-config-history", existing=True)):
        [problem] = problems(change, unconfigured)
        assert (problem.rule, problem.detail) == ("destination-not-configured", "ConfigBucket is not set")


def test_config_bucket_is_read_from_the_environment() -> None:
    environment = {
        "AUDIT_TABLE": "Audit",
        "MISSIONS_TABLE": "Missions",
        "ACCOUNT_ID": "123456789012",
        "SCAN_REGIONS": "eu-west-1",
        "MAX_CHANGES_PER_MISSION": "10",
        "APPROVER_SUBS": "auth0|approver-a,auth0|approver-b",
    }
    assert ValidatorSettings.from_env(environment).config_bucket == ""
    assert ValidatorSettings.from_env(environment | {"CONFIG_BUCKET": CONFIG_BUCKET}).config_bucket == CONFIG_BUCKET
