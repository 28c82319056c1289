"""Turn the Audit table's new records into notifications on the stack's SNS topic.

    stream record (INSERT, new image) -> audit record -> NOTIFICATIONS (aegis_notifier.notifications) -> Publish

Every event an operator must know about is already an audit record, written by the function that saw it; the
notifier only reads the trail's stream, so no writer needs (or has) sns:Publish, and the notifier needs nothing but
the stream and the topic. Each notifiable record becomes one message; any other record, or a modification (the
audit chain's links come back on the stream as modifications), becomes nothing.

Records are told in the stream's order. A record whose message SNS does not accept fails, and so does every record
after it in the batch without being attempted (`InStreamOrder`): Lambda retries the batch from the first failed
record, so each notification goes out once, in the trail's order. A record that is not an audit record can never
become one: it is logged by its keys and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from botocore.exceptions import BotoCoreError, ClientError

from aegis_notifier.errors import EarlierRecordFailed, PublishFailed, RecordMalformed
from aegis_notifier.notifications import NOTIFICATIONS, AuditRecord, Notification, notification_for
from aegis_notifier.settings import NotifierSettings

logger = Logger(child=True)

# The fields every audit item has (aegis.audit.AuditLog.append); `details` is JSON text.
RECORD_FIELDS = ("mission_id", "seq", "at", "actor", "action", "outcome", "details")


def audit_record(image: Mapping[str, Any]) -> AuditRecord:
    """The audit record an INSERT's new image holds; RecordMalformed names the field that is missing or wrong."""
    for name in RECORD_FIELDS:
        if not isinstance(image.get(name), str):
            raise RecordMalformed(f"the new image has no text field {name!r}")
    try:
        details = json.loads(image["details"])
    except ValueError:
        raise RecordMalformed("the record's details are not JSON") from None
    if not isinstance(details, dict):
        raise RecordMalformed("the record's details are not a JSON object")
    return AuditRecord(
        mission_id=image["mission_id"],
        seq=image["seq"],
        at=image["at"],
        actor=image["actor"],
        action=image["action"],
        outcome=image["outcome"],
        details=details,
    )


@dataclass
class Notifier:
    settings: NotifierSettings
    sns: Any
    published: int = field(default=0, init=False)

    def notify(self, record: DynamoDBRecord) -> Notification | None:
        """Publish the notification `record` calls for; None when it calls for none (or is malformed, and skipped)."""
        if record.event_name != DynamoDBRecordEventName.INSERT or record.dynamodb is None:
            return None
        image = record.dynamodb.new_image
        if image.get("action") not in NOTIFICATIONS:
            return None
        try:
            notification = notification_for(audit_record(image))
        except RecordMalformed as exc:
            # By its keys only: the image is what was written, and nothing of it is logged.
            logger.error(
                "audit record skipped",
                extra={"error": exc.error_name, "why": str(exc), "sequence_number": record.dynamodb.sequence_number},
            )
            return None
        if notification is None:
            return None
        self.publish(notification)
        return notification

    def publish(self, notification: Notification) -> str:
        deployment = self.settings.deployment_name
        try:
            answer = self.sns.publish(
                TopicArn=self.settings.topic_arn,
                Subject=notification.subject(deployment),
                Message=notification.message(deployment),
                MessageAttributes=notification.attributes(deployment),
            )
        except (ClientError, BotoCoreError) as exc:
            raise PublishFailed(
                f"SNS did not accept the {notification.kind} notification ({type(exc).__name__})"
            ) from exc
        self.published += 1
        logger.info(
            "notification published",
            extra={"kind": notification.kind, "mission_id": notification.mission_id, "seq": notification.audit_seq},
        )
        return str(answer["MessageId"])


class InStreamOrder:
    """A batch's record handler that keeps the stream's order through a failure: once a record fails, the records
    after it fail too, unattempted (Lambda retries a batch from the first failed record it is told of)."""

    def __init__(self, notify: Callable[[DynamoDBRecord], Notification | None]) -> None:
        self._notify = notify
        self.failed = False

    def __call__(self, record: DynamoDBRecord) -> Notification | None:
        if self.failed:
            raise EarlierRecordFailed("an earlier record of this batch failed; this one is retried after it")
        try:
            return self._notify(record)
        except Exception:
            self.failed = True
            raise
