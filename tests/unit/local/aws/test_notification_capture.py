"""What the local stack published to its SNS topics (`aegis_local.aws.notifications`): while a capture is installed,
every message a topic accepts is written to its JSON Lines file and handed to its callback, and moto publishes it to
the topic's subscriptions exactly as before; uninstalled, moto is as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.sns.models import Topic

from aegis_local.aws.notifications import NotificationCapture, PublishedNotification, read_notifications


@pytest.fixture
def topic(aws: boto3.Session) -> str:
    return str(aws.client("sns").create_topic(Name="aegis-notifications")["TopicArn"])


def subscribed_queue(aws: boto3.Session, topic: str) -> str:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return str(url)


def publish(aws: boto3.Session, topic: str, subject: str, kind: str) -> str:
    return str(
        aws.client("sns").publish(
            TopicArn=topic,
            Subject=subject,
            Message=json.dumps({"notification": kind}),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}},
        )["MessageId"]
    )


def test_every_published_message_is_written_and_handed_over_and_still_delivered(
    aws: boto3.Session, topic: str, tmp_path: Path
) -> None:
    queue = subscribed_queue(aws, topic)
    seen: list[PublishedNotification] = []
    path = tmp_path / "reports" / "notifications.jsonl"
    with NotificationCapture(path, on_notification=seen.append) as capture:
        first = publish(aws, topic, "[aegis] mission m-1 completed", "mission-completed")
        aws.client("sns").publish_batch(
            TopicArn=topic, PublishBatchRequestEntries=[{"Id": "1", "Subject": "batched", "Message": "plain text"}]
        )
        assert capture.wait_for(2, timeout=1)

    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [set(line) for line in lines] == [{"topic", "subject", "message", "attributes", "time", "message_id"}] * 2
    assert lines[0]["topic"] == topic
    assert lines[0]["subject"] == "[aegis] mission m-1 completed"
    assert json.loads(lines[0]["message"]) == {"notification": "mission-completed"}
    assert lines[0]["attributes"] == {"kind": "mission-completed"}
    assert lines[0]["message_id"] == first
    assert (lines[1]["subject"], lines[1]["message"], lines[1]["attributes"]) == ("batched", "plain text", {})
    assert seen == read_notifications(path) == capture.published
    assert [n.line() for n in seen] == ["mission-completed: [aegis] mission m-1 completed", "batched"]
    # The subscription got both, as without a capture.
    received = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["Subject"] for m in received) == ["[aegis] mission m-1 completed", "batched"]


def test_uninstalled_moto_publishes_as_it_did_and_nothing_more_is_written(
    aws: boto3.Session, topic: str, tmp_path: Path
) -> None:
    original = Topic.publish
    path = tmp_path / "notifications.jsonl"
    with NotificationCapture(path):
        assert Topic.publish is not original
    assert Topic.publish is original
    publish(aws, topic, "after", "mission-failed")
    assert read_notifications(path) == []


def test_each_install_starts_the_file_afresh_and_one_capture_runs_at_a_time(
    aws: boto3.Session, topic: str, tmp_path: Path
) -> None:
    path = tmp_path / "notifications.jsonl"
    with NotificationCapture(path):
        publish(aws, topic, "first run", "mission-completed")
        with pytest.raises(RuntimeError, match="already installed"):
            NotificationCapture(tmp_path / "other.jsonl").install()
    with NotificationCapture(path):
        publish(aws, topic, "second run", "mission-completed")
    assert [n.subject for n in read_notifications(path)] == ["second run"]


def test_a_callback_that_fails_never_fails_the_publish(aws: boto3.Session, topic: str, tmp_path: Path) -> None:
    def console_gone(_: Any) -> None:
        raise OSError("the terminal went away")

    path = tmp_path / "notifications.jsonl"
    with NotificationCapture(path, on_notification=console_gone):
        assert publish(aws, topic, "still published", "killswitch-triggered")
    assert [n.subject for n in read_notifications(path)] == ["still published"]
