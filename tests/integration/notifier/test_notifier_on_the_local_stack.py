"""Notifications on the local stack, end to end: template.yaml's NotificationsTopic (encrypted with NotificationsKey,
an email subscription from the parameter), the Audit table's stream delivered to the real NotifierFunction
(aegis_local.aws.streams), and every message published captured to notifications.jsonl
(aegis_local.aws.notifications) — from audit records written by the real writers: the kill switch, triggered and
re-armed with who and why, and records written as the agent writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis.audit import AuditLog
from aegis_local.aws.notifications import NotificationCapture, read_notifications
from aegis_local.aws.stack import LocalStack
from aegis_local.reporting.leak_audit import audit, notification_places
from tests.support.notifier_world import NOT_NOTIFIABLE, NOTIFIABLE

OPERATOR_EMAIL = "oncall@example.com"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(parameters={"NotificationEmail": OPERATOR_EMAIL}) as running:
        yield running


@pytest.fixture
def captured(stack: LocalStack, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "reports" / "notifications.jsonl"
    stack.drain_streams()  # what earlier tests wrote is told before this capture starts
    with NotificationCapture(path):
        yield path


def kinds(path: Path) -> list[str]:
    return [notification.attributes["kind"] for notification in read_notifications(path)]


def invoke_kill_switch(stack: LocalStack, action: str, reason: str, requested_by: str) -> dict[str, Any]:
    answer = stack.client("lambda").invoke(
        FunctionName=stack.physical_id("KillSwitchFunction"),
        Payload=json.dumps({"action": action, "reason": reason, "requested_by": requested_by}),
    )
    assert "FunctionError" not in answer, answer["Payload"].read()
    return dict(json.loads(answer["Payload"].read()))


def test_the_topic_is_the_templates_encrypted_and_subscribed_as_the_parameters_say(stack: LocalStack) -> None:
    sns = stack.client("sns")
    topic = stack.physical_id("NotificationsTopic")
    assert topic.endswith(f":{stack.identity.stack_name}-notifications")
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"] == stack.physical_id("NotificationsKey")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    # The email address given; no HTTPS endpoint was given, so there is no such subscription.
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", OPERATOR_EMAIL)]
    assert stack.function("NotifierFunction").environment["NOTIFICATIONS_TOPIC_ARN"] == topic


def test_the_kill_switch_is_told_with_who_and_why_as_it_is_triggered_and_rearmed(
    stack: LocalStack, captured: Path
) -> None:
    triggered = invoke_kill_switch(stack, "trigger", "suspicious IAM change in prod", "ops:alice")
    assert triggered["ok"], triggered
    rearmed = invoke_kill_switch(stack, "rearm", "incident 4711 closed", "ops:bob")
    assert rearmed["ok"], rearmed
    assert stack.drain_streams()

    told = read_notifications(captured)
    assert [n.attributes["kind"] for n in told] == ["killswitch-triggered", "killswitch-rearmed"]
    assert (
        told[0].subject
        == f"[{stack.identity.stack_name}] kill switch triggered by ops:alice: suspicious IAM change in prod"
    )
    assert told[1].subject == f"[{stack.identity.stack_name}] kill switch re-armed by ops:bob: incident 4711 closed"
    document = json.loads(told[0].message)
    assert (document["requested_by"], document["reason"]) == ("ops:alice", "suspicious IAM change in prod")
    assert document["operation_id"] == triggered["operation_id"]
    assert {n.topic for n in told} == {stack.physical_id("NotificationsTopic")}


def test_the_audit_trail_becomes_notifications_in_order_and_other_records_become_none(
    stack: LocalStack, captured: Path
) -> None:
    table = stack.session().resource("dynamodb").Table(stack.physical_id("AuditTable"))
    for sample in (
        NOT_NOTIFIABLE["mission created"],
        NOTIFIABLE["approval-waiting"],
        NOT_NOTIFIABLE["change applied"],
        NOTIFIABLE["drift-detected"],
        NOTIFIABLE["change-outcome-unknown"],
        NOTIFIABLE["mission-completed"],
    ):
        AuditLog(table, sample.actor).append(sample.mission_id, sample.action, sample.outcome, **sample.details)
    assert stack.drain_streams()

    assert kinds(captured) == ["approval-waiting", "drift-detected", "change-outcome-unknown", "mission-completed"]
    # The file the leak audit searches holds them, one place each.
    assert [place for place, _ in notification_places(captured)] == [f"notification:{n}" for n in range(1, 5)]
    assert audit(["oncall-secret-value"], notification_places(captured)).clean
