"""The leak audit searches SQS queues (the dead-letter queues keep the events of asynchronous invocations that failed
every attempt): every waiting message's body and attributes, read without consuming it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from aegis_local.reporting.leak_audit import audit_stack, fingerprint, place_kind, sqs_places


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def dead_letter_queue(session: boto3.Session, name: str) -> str:
    return str(session.client("sqs").create_queue(QueueName=name)["QueueUrl"])


def test_a_token_in_a_dead_letter_body_or_attribute_is_found_and_the_message_stays(session: boto3.Session) -> None:
    sqs = session.client("sqs")
    url = dead_letter_queue(session, "aegis-killswitch-dlq")
    in_body, in_attribute = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail": {"input": f"x {in_body} y"}}))
    sqs.send_message(
        QueueUrl=url,
        MessageBody="{}",
        MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": f"failed: {in_attribute}"}},
    )

    result = audit_stack(session, {in_body, in_attribute})

    assert sorted(hit.fingerprint for hit in result.hits) == sorted([fingerprint(in_body), fingerprint(in_attribute)])
    assert {hit.place.split("[", 1)[0] for hit in result.hits} == {"sqs:aegis-killswitch-dlq"}
    assert result.places == {"queue aegis-killswitch-dlq": 2}
    # Searched, not consumed: both messages can still be received, at once.
    waiting = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert waiting["Attributes"]["ApproximateNumberOfMessages"] == "2"
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 2


def test_every_message_of_every_queue_is_searched_even_beyond_one_receive(session: boto3.Session) -> None:
    sqs = session.client("sqs")
    first, second = dead_letter_queue(session, "scan-dlq"), dead_letter_queue(session, "other-dlq")
    for index in range(23):  # a receive returns at most 10
        sqs.send_message(QueueUrl=first, MessageBody=json.dumps({"n": index}))
    sqs.send_message(QueueUrl=second, MessageBody="{}")

    places = list(sqs_places(session))

    assert len(places) == 24
    assert sorted(json.loads(json.loads(text)["Body"])["n"] for place, text in places if "scan-dlq" in place) == list(
        range(23)
    )
    assert {place_kind(place) for place, _ in places} == {"queue scan-dlq", "queue other-dlq"}


def test_an_empty_queue_is_no_place(session: boto3.Session) -> None:
    dead_letter_queue(session, "empty-dlq")
    assert list(sqs_places(session)) == []
