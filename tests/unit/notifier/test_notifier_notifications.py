"""Each notification kind from the audit record that calls for it, read from the Audit table's stream and published to
the topic (what a subscriber receives); every other record, and every modification, publishes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from aegis_notifier.notifications import NOTIFICATION_KINDS, NOTIFICATIONS
from tests.support.notifier_world import (
    CHANGE,
    DEPLOYMENT,
    DIGEST,
    EXECUTION,
    MISSION,
    NOT_NOTIFIABLE,
    NOTIFIABLE,
    OPERATION,
    NotifierWorld,
    Sample,
)


def notify_all(world: NotifierWorld) -> list[Any]:
    notifier = world.notifier()
    return [notifier.notify(DynamoDBRecord(record)) for record in world.stream.records()]


def published_after(world: NotifierWorld, sample: Sample) -> list[dict[str, Any]]:
    sample.write(world)
    notify_all(world)
    return world.subscriber.messages()


@pytest.mark.parametrize("name", sorted(NOTIFIABLE))
def test_each_notifiable_record_publishes_one_message_of_its_kind(world: NotifierWorld, name: str) -> None:
    sample = NOTIFIABLE[name]
    written = sample.write(world)
    (notification,) = [n for n in notify_all(world) if n is not None]
    (message,) = world.subscriber.messages()

    document = message["Document"]
    assert document["notification"] == sample.kind == notification.kind
    assert message["Subject"] == f"[{DEPLOYMENT}] {document['summary']}"[:99]
    assert message["MessageAttributes"]["kind"]["Value"] == sample.kind
    assert message["MessageAttributes"]["deployment"]["Value"] == DEPLOYMENT
    assert document["deployment"] == DEPLOYMENT
    assert document["mission_id"] == sample.mission_id
    # Where the operator finds the whole story: the record itself.
    assert document["audit_record"] == {"mission_id": sample.mission_id, "seq": written["seq"]}
    assert document["at"] == written["at"]


def test_the_waiting_notification_says_how_long_and_which_mission(world: NotifierWorld) -> None:
    (message,) = published_after(world, NOTIFIABLE["approval-waiting"])
    document = message["Document"]
    assert message["Subject"] == f"[aegis] mission {MISSION}: changes waiting for approval for 16 min"
    assert (document["execution_arn"], document["change_id"]) == (EXECUTION, CHANGE)
    assert (document["waited_minutes"], document["threshold_minutes"]) == (16, 15)
    assert document["waiting_since"] == "2027-01-15T03:00:00Z"


def test_a_completed_mission_is_told_with_its_counts(world: NotifierWorld) -> None:
    (message,) = published_after(world, NOTIFIABLE["mission-completed"])
    assert message["Subject"] == (f"[aegis] mission {MISSION} completed: 12 findings, 5 changes, 2 scan errors")
    assert "2 checks could not run" in message["Document"]["meaning"]
    assert message["Document"]["counts"] == {
        "findings": 12,
        "changes": 5,
        "exemptions": 1,
        "plan_notes": 0,
        "scan_errors": 2,
        "withheld": 0,
        "api_calls": 40,
    }
    assert message["Document"]["plan_status"] == "proposed"


@pytest.mark.parametrize(
    ("name", "kind", "told"),
    [
        ("change-failed (executor)", "change-failed", f"change {CHANGE} failed (approved/failed)"),
        ("change-failed (approval)", "change-failed", f"change {CHANGE} failed (failed/skipped)"),
        ("change-outcome-unknown", "change-outcome-unknown", f"change {CHANGE} outcome unknown (States.Timeout)"),
        ("drift-detected", "drift-detected", f"change {CHANGE} drift detected"),
    ],
)
def test_a_change_that_failed_drifted_or_whose_outcome_is_unknown_is_told_by_its_id(
    world: NotifierWorld, name: str, kind: str, told: str
) -> None:
    (message,) = published_after(world, NOTIFIABLE[name])
    document = message["Document"]
    assert document["notification"] == kind
    assert message["Subject"] == f"[aegis] {told}"
    assert document["mission_id"] == MISSION
    assert (document["change_id"], document["digest"]) == (CHANGE, DIGEST)
    assert document["reason"] == NOTIFIABLE[name].details["reason"]


def test_the_kill_switch_is_told_with_who_and_why(world: NotifierWorld) -> None:
    (triggered,) = published_after(world, NOTIFIABLE["killswitch-triggered"])
    assert triggered["Subject"] == "[aegis] kill switch triggered by auth0|operator-1: unexpected IAM change in prod"
    assert (triggered["Document"]["requested_by"], triggered["Document"]["reason"]) == (
        "auth0|operator-1",
        "unexpected IAM change in prod",
    )
    assert triggered["Document"]["operation_id"] == OPERATION
    _, rearmed = published_after(world, NOTIFIABLE["killswitch-rearmed"])
    assert rearmed["Subject"] == "[aegis] kill switch re-armed by ops:alice: incident 4711 closed"
    assert rearmed["Document"]["notification"] == "killswitch-rearmed"
    *_, failed = published_after(world, NOTIFIABLE["killswitch-partly-failed"])
    assert failed["Document"]["failed_steps"] == ["revoke_auth0_sessions"]
    assert "halt flag engaged" in failed["Subject"]


def test_a_refused_plan_is_told_once_with_its_rules_and_its_changes_are_not_told_again(world: NotifierWorld) -> None:
    (message,) = published_after(world, NOTIFIABLE["plan-refused"])
    assert message["Document"]["rules"] == ["region-out-of-scope", "too-many-changes"]
    assert message["Document"]["change_count"] == 2
    assert published_after(world, NOT_NOTIFIABLE["change of a refused plan"]) == [message]


def test_a_mission_that_failed_or_a_scan_that_could_not_run_is_told_by_name(world: NotifierWorld) -> None:
    (failed,) = published_after(world, NOTIFIABLE["mission-failed"])
    assert failed["Subject"] == f"[aegis] mission {MISSION} failed: Agent.ScanFailed"
    assert (failed["Document"]["error"], failed["Document"]["error_type"]) == ("Agent.ScanFailed", "ScanFailed")
    _, refused = published_after(world, NOTIFIABLE["scan-not-run"])
    assert refused["Subject"] == f"[aegis] scan not run: the kill switch is engaged (mission {MISSION})"


@pytest.mark.parametrize("name", sorted(NOT_NOTIFIABLE))
def test_any_other_record_publishes_nothing(world: NotifierWorld, name: str) -> None:
    sample = NOT_NOTIFIABLE[name]
    sample.write(world)
    assert notify_all(world) == [None]
    assert world.subscriber.messages() == []


def test_a_modification_publishes_nothing(world: NotifierWorld) -> None:
    """The audit chain's links come back on the stream as modifications of records already told."""
    written = NOTIFIABLE["mission-completed"].write(world)
    notify_all(world)
    world.audit_table.update_item(
        Key={"mission_id": written["mission_id"], "seq": written["seq"]},
        UpdateExpression="SET chain_link = :link",
        ExpressionAttributeValues={":link": "f" * 64},
    )
    assert notify_all(world) == [None]
    assert len(world.subscriber.messages()) == 1


def test_every_notification_kind_comes_from_the_table_and_is_exercised() -> None:
    assert {sample.kind for sample in NOTIFIABLE.values()} == set(NOTIFICATION_KINDS)
    assert {sample.action for sample in NOTIFIABLE.values()} == set(NOTIFICATIONS) - {"killswitch.rearm.completed"}
    assert all(re.fullmatch(r"[a-z]+(?:-[a-z]+)+", kind) for kind in NOTIFICATION_KINDS)
