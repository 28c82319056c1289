"""The notifier's Lambda handler (app.py, loaded by path) on stream events of real audit records: what it publishes,
what it answers Lambda when SNS refuses (the records to retry, in order, nothing told twice), what it skips, what it
never logs, and what a cold start loads."""

from __future__ import annotations

import json
import uuid
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from aegis.models import canonical_json, sha256_hex
from aegis_notifier.errors import InvalidSettings
from aegis_notifier.settings import NotifierSettings
from tests.support.cold_start import cold_start
from tests.support.lambda_app import load_app
from tests.support.notifier_world import MISSION, NOT_NOTIFIABLE, NOTIFIABLE, NotifierWorld
from tests.support.stack import EVENTS_DIR

FUNCTION = "aegis-notifier"


class LambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name = FUNCTION
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class RefusingSns:
    """The real SNS client, except that the publishes numbered in `refuse` (1-based) are refused."""

    def __init__(self, client: Any, refuse: set[int]) -> None:
        self._client = client
        self._refuse = refuse
        self.calls = 0

    def publish(self, **request: Any) -> Any:
        self.calls += 1
        if self.calls in self._refuse:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "unavailable"}}, "Publish")
        return self._client.publish(**request)


@pytest.fixture
def app(world: NotifierWorld, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in {
        **world.environment(),
        "POWERTOOLS_SERVICE_NAME": FUNCTION,
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    return load_app("notifier")


def kinds(world: NotifierWorld) -> list[str]:
    return [message["Document"]["notification"] for message in world.subscriber.messages()]


def test_a_batch_publishes_each_notifiable_record_in_order_and_nothing_else(
    app: ModuleType, world: NotifierWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("approval-waiting", "change-failed (executor)", "mission-completed"):
        NOTIFIABLE[name].write(world)
        NOT_NOTIFIABLE["change applied (executor)"].write(world)
    event = world.stream.event()
    assert len(event["Records"]) == 6

    assert app.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert kinds(world) == ["approval-waiting", "change-failed", "mission-completed"]
    # The event holds whole audit records: none of it is logged (the executor's before-state least of all).
    printed = capsys.readouterr().out
    assert "block_public_acls" not in printed
    assert "PutPublicAccessBlock" not in printed
    assert "NotificationsPublished" in printed


def test_when_sns_refuses_the_rest_of_the_batch_is_retried_from_there_and_nothing_is_told_twice(
    app: ModuleType, world: NotifierWorld
) -> None:
    names = ("killswitch-triggered", "approval-waiting", "change-outcome-unknown", "mission-completed")
    for name in names:
        NOTIFIABLE[name].write(world)
    event = world.stream.event()
    service = app.notifier()
    service.sns = RefusingSns(service.sns, refuse={2})

    answer = app.handler(event, LambdaContext())
    sequence = [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]
    # The refused record and every one after it, which were not attempted: Lambda resumes at the first.
    assert answer == {"batchItemFailures": [{"itemIdentifier": number} for number in sequence[1:]]}
    assert service.sns.calls == 2
    assert kinds(world) == ["killswitch-triggered"]

    # Lambda's retry: the batch from the first failed record on.
    retry = {"Records": event["Records"][1:]}
    assert app.handler(retry, LambdaContext()) == {"batchItemFailures": []}
    assert kinds(world) == ["killswitch-triggered", "approval-waiting", "change-outcome-unknown", "mission-completed"]


def test_a_batch_whose_every_record_fails_is_a_function_error(app: ModuleType, world: NotifierWorld) -> None:
    NOTIFIABLE["mission-failed"].write(world)
    service = app.notifier()
    service.sns = RefusingSns(service.sns, refuse={1})
    with pytest.raises(BatchProcessingError):
        app.handler(world.stream.event(), LambdaContext())
    assert kinds(world) == []


def test_a_record_that_is_no_audit_record_is_skipped_not_retried(
    app: ModuleType, world: NotifierWorld, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    world.plant({"mission_id": MISSION, "seq": "2027-01-01T00:00:00.000000Z#000000000000", "action": "mission.failed"})
    world.plant(
        {
            "mission_id": MISSION,
            "seq": "2027-01-01T00:00:01.000000Z#000000000001",
            "at": "2027-01-01T00:00:01+00:00",
            "actor": "agent",
            "action": "mission.failed",
            "outcome": "Agent.GraphFailed",
            "details": "not json: secret-marker-4711",
        }
    )
    NOTIFIABLE["mission-failed"].write(world)

    assert app.handler(world.stream.event(), LambdaContext()) == {"batchItemFailures": []}
    assert kinds(world) == ["mission-failed"]
    skipped = [record for record in caplog.records if record.getMessage() == "audit record skipped"]
    assert [getattr(record, "error", None) for record in skipped] == ["Notifier.RecordMalformed"] * 2
    assert "secret-marker-4711" not in caplog.text + capsys.readouterr().out


def test_the_settings_are_the_templates_and_a_wrong_one_is_named_not_echoed(world: NotifierWorld) -> None:
    assert NotifierSettings.from_env(world.environment()) == world.settings
    for name, value in (
        ("NOTIFICATIONS_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:not-a-topic"),
        ("NOTIFICATIONS_TOPIC_ARN", ""),
        ("DEPLOYMENT_NAME", "two words"),
    ):
        with pytest.raises(InvalidSettings) as refused:
            NotifierSettings.from_env({**world.environment(), name: value})
        assert name in str(refused.value)
        assert (value or "\0") not in str(refused.value)


def test_a_cold_start_loads_no_credential_code_and_opens_no_table() -> None:
    environment = {
        "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:aegis-notifications",
        "DEPLOYMENT_NAME": "aegis",
        "POWERTOOLS_SERVICE_NAME": FUNCTION,
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    built = cold_start("notifier", environment, then="module.notifier()")
    assert "aegis_notifier.service" in built["modules"], "the probe built the notifier"
    forbidden = {"aegis_auth", "aegis_agent", "aegis_approval", "aegis_executor", "aegis_killswitch", "httpx", "jose"}
    assert not [m for m in built["modules"] if m.split(".")[0] in forbidden]
    assert built["resources"] == []
    assert built["sessions"] == 1


def test_the_sample_event_is_what_the_stream_delivers_and_tells_what_it_should(
    app: ModuleType, world: NotifierWorld
) -> None:
    """events/notifier-audit-stream.json (for `sam local invoke -e`): real audit records as the stream hands them to
    the function, three of which call for a notification."""
    event = json.loads((EVENTS_DIR / "notifier-audit-stream.json").read_text(encoding="utf-8"))
    for record in event["Records"]:
        image = TypeDeserializer().deserialize({"M": record["dynamodb"]["NewImage"]})
        unchecked = {key: value for key, value in image.items() if key != "checksum"}
        assert image["checksum"] == sha256_hex(canonical_json(unchecked)), "written by AuditLog"
        assert record["dynamodb"]["Keys"] == {k: record["dynamodb"]["NewImage"][k] for k in ("mission_id", "seq")}
    assert app.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert kinds(world) == ["change-failed", "mission-completed", "killswitch-triggered"]
