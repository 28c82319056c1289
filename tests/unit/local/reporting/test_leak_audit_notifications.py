"""The leak audit searches every notification the stack published (`notification_places`, over the file
aegis_local.aws.notifications writes): a secret in one of them is found and named by its number."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import boto3

from aegis_local.aws.notifications import NotificationCapture
from aegis_local.reporting.leak_audit import audit, fingerprint, notification_places, place_kind


def test_a_secret_in_a_published_notification_is_found_and_named(aws: boto3.Session, tmp_path: Path) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(40)
    sns = aws.client("sns")
    topic = sns.create_topic(Name="aegis-notifications")["TopicArn"]
    path = tmp_path / "notifications.jsonl"
    with NotificationCapture(path):
        sns.publish(TopicArn=topic, Subject="clean", Message=json.dumps({"notification": "mission-completed"}))
        sns.publish(TopicArn=topic, Subject="leaky", Message=json.dumps({"reason": f"Bearer {token}"}))
        sns.publish(TopicArn=topic, Subject="also clean", Message="nothing here")

    places = list(notification_places(path))
    assert [place for place, _ in places] == ["notification:1", "notification:2", "notification:3"]
    assert {place_kind(place) for place, _ in places} == {"notification"}
    result = audit([token], places)
    assert [(hit.place, hit.fingerprint) for hit in result.hits] == [("notification:2", fingerprint(token))]
    assert result.places == {"notification": 3}


def test_no_notification_file_is_nothing_to_search(tmp_path: Path) -> None:
    assert list(notification_places(tmp_path / "notifications.jsonl")) == []
