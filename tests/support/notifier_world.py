"""The notifier's surroundings in moto: the Audit table as template.yaml declares it, stream included; the
notifications topic as template.yaml declares it (its name, encrypted with a key of its own); and an SQS queue
subscribed to the topic, which reads back what was published the way an operator's HTTPS endpoint receives it (the
SNS envelope: Subject, Message, MessageAttributes).

Stream events are what moto's DynamoDB Streams hands out after real records were written (by aegis.audit.AuditLog,
or by a test planting an item), in the format Lambda delivers them to a function: `Records[].eventName`,
`.dynamodb.NewImage` in DynamoDB JSON, `.dynamodb.SequenceNumber`, `eventSourceARN`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from aegis.audit import AuditLog
from aegis_local.aws.streams import lambda_record
from aegis_notifier.service import Notifier
from aegis_notifier.settings import NotifierSettings
from tests.support.stack import Stack, build_stack, create_declared_table

DEPLOYMENT = "aegis"
# boto3 sends DynamoDB Streams calls that name a stream to an account-specific endpoint, which moto does not serve.
STREAMS_CLIENT_CONFIG = Config(account_id_endpoint_mode="disabled")


@cache
def declared() -> Stack:
    return build_stack()


def create_audit_table(dynamodb: Any, name: str = "Audit") -> Any:
    """The Audit table as template.yaml declares it: keys, indexes and its stream."""
    return create_declared_table(dynamodb, "AuditTable", name)


def create_topic(session: boto3.Session) -> str:
    """NotificationsTopic as template.yaml declares it (name, display name), encrypted with a key of its own."""
    properties = declared().properties("NotificationsTopic")
    key_id = session.client("kms").create_key(Description="notifications")["KeyMetadata"]["KeyId"]
    answer = session.client("sns").create_topic(
        Name=properties["TopicName"],
        Attributes={"DisplayName": properties["DisplayName"], "KmsMasterKeyId": key_id},
    )
    return str(answer["TopicArn"])


class Subscriber:
    """An SQS queue subscribed to the topic: every message published, as SNS delivers it."""

    def __init__(self, session: boto3.Session, topic_arn: str) -> None:
        self._sqs = session.client("sqs")
        self.queue_url = self._sqs.create_queue(QueueName="notifications-subscriber")["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self.received: list[dict[str, Any]] = []

    def messages(self) -> list[dict[str, Any]]:
        """Every envelope received so far, oldest first (`Message` parsed)."""
        while True:
            batch = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return list(self.received)
            for message in batch:
                envelope = json.loads(message["Body"])
                envelope["Document"] = json.loads(envelope["Message"])
                self.received.append(envelope)
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class AuditStream:
    """The Audit table's stream, read from where the last `event()` stopped."""

    def __init__(self, session: boto3.Session, table: Any) -> None:
        self.stream_arn = str(table.latest_stream_arn)
        self._client = session.client("dynamodbstreams", config=STREAMS_CLIENT_CONFIG)
        shard = self._client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]
        self._iterator = self._client.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def records(self) -> list[dict[str, Any]]:
        """The records written since the last call, each as Lambda hands it to a function."""
        answer = self._client.get_records(ShardIterator=self._iterator)
        self._iterator = answer["NextShardIterator"]
        return [lambda_record(record, self.stream_arn) for record in answer.get("Records", [])]

    def event(self) -> dict[str, Any]:
        return {"Records": self.records()}


@dataclass
class NotifierWorld:
    session: boto3.Session
    audit_table: Any
    topic_arn: str
    subscriber: Subscriber
    stream: AuditStream
    logs: dict[str, AuditLog] = field(default_factory=dict)

    @classmethod
    def create(cls, session: boto3.Session) -> NotifierWorld:
        table = create_audit_table(session.resource("dynamodb"))
        topic_arn = create_topic(session)
        return cls(
            session=session,
            audit_table=table,
            topic_arn=topic_arn,
            subscriber=Subscriber(session, topic_arn),
            stream=AuditStream(session, table),
        )

    @property
    def settings(self) -> NotifierSettings:
        return NotifierSettings(topic_arn=self.topic_arn, deployment_name=DEPLOYMENT)

    def environment(self) -> dict[str, str]:
        """The notifier's environment as template.yaml sets it, on this world's topic."""
        return {"NOTIFICATIONS_TOPIC_ARN": self.topic_arn, "DEPLOYMENT_NAME": DEPLOYMENT}

    def notifier(self) -> Notifier:
        return Notifier(settings=self.settings, sns=self.session.client("sns"))

    def append(self, actor: str, mission_id: str, action: str, outcome: str, **details: Any) -> dict[str, Any]:
        """A real audit record, written as its writer writes it."""
        log = self.logs.setdefault(actor, AuditLog(self.audit_table, actor))
        return log.append(mission_id, action, outcome, **details)

    def plant(self, item: dict[str, Any]) -> None:
        """An item put straight into the table, past AuditLog's own refusal of secrets (a writer gone wrong)."""
        self.audit_table.put_item(Item=item)


# --- audit records as their writers write them ---------------------------------------------------------------------
MISSION = "m-0123456789abcdef0123"
CHANGE = "chg-0123456789abcdef0123"
DIGEST = "5d41402abc4b2a76b9719d911017c592" * 2
EXECUTION = f"arn:aws:states:us-east-1:123456789012:execution:aegis-mission:{MISSION}"
RESOURCE = "arn:aws:s3:::aegis-public-site"
OPERATION = "ks-0123456789abcdef"


@dataclass(frozen=True)
class Sample:
    """One audit record (who wrote it, where, what) and the notification kind it calls for (None: none)."""

    actor: str
    mission_id: str
    action: str
    outcome: str
    details: dict[str, Any]
    kind: str | None

    def write(self, world: NotifierWorld) -> dict[str, Any]:
        return world.append(self.actor, self.mission_id, self.action, self.outcome, **self.details)


def _change(decision: str, reason: str, verified: str | None = None) -> dict[str, Any]:
    """The agent's change.result details (aegis_agent.graph.audit_node)."""
    return {
        "change_id": CHANGE,
        "digest": DIGEST,
        "resource_arn": RESOURCE,
        "decision": decision,
        "reason": reason,
        "verified": verified,
    }


NOTIFIABLE: dict[str, Sample] = {
    "approval-waiting": Sample(
        "approval",
        MISSION,
        "approval.waiting",
        "waiting",
        {
            "change_id": CHANGE,
            "change_digest": DIGEST,
            "approver_sub": "auth0|approver-1",
            "execution_arn": EXECUTION,
            "waiting_since": "2027-01-15T03:00:00Z",
            "waited_minutes": 16,
            "threshold_minutes": 15,
        },
        "approval-waiting",
    ),
    "mission-completed": Sample(
        "agent",
        MISSION,
        "mission.completed",
        "proposed",
        {
            "findings": 12,
            "changes": 5,
            "exemptions": 1,
            "plan_notes": 0,
            "scan_errors": 2,
            "withheld": 0,
            "api_calls": 40,
        },
        "mission-completed",
    ),
    "mission-failed": Sample(
        "agent",
        MISSION,
        "mission.failed",
        "Agent.ScanFailed",
        {"error": "Agent.ScanFailed", "error_type": "ScanFailed"},
        "mission-failed",
    ),
    "scan-not-run": Sample("agent", MISSION, "mission.refused", "halted", {"trigger": "scheduled"}, "scan-not-run"),
    "plan-refused": Sample(
        "validator",
        MISSION,
        "validator.refused",
        "refused",
        {
            "error": "Validation.PlanRefused",
            "execution_arn": EXECUTION,
            "change_count": 2,
            "problems": [
                {"rule": "region-out-of-scope", "index": 0, "change_id": CHANGE, "detail": "not one of ScanRegions"},
                {"rule": "too-many-changes", "index": None, "change_id": None, "detail": "2 changes, at most 1"},
            ],
        },
        "plan-refused",
    ),
    "change-failed (executor)": Sample(
        "agent",
        MISSION,
        "change.result",
        "failed",
        _change("approved", "Executor.TokenExchangeFailed"),
        "change-failed",
    ),
    "change-failed (approval)": Sample(
        "agent", MISSION, "change.result", "skipped", _change("failed", "Approval.Failed"), "change-failed"
    ),
    "change-failed (executor's own answer)": Sample(
        "agent",
        MISSION,
        "change.result",
        "failed",
        _change("approved", "AWS refused: PutBucketPublicAccessBlock AccessDenied (1 mutating calls sent)"),
        "change-failed",
    ),
    "change-outcome-unknown": Sample(
        "agent", MISSION, "change.result", "failed", _change("approved", "States.Timeout"), "change-outcome-unknown"
    ),
    "drift-detected": Sample(
        "agent",
        MISSION,
        "change.result",
        "drift",
        _change("approved", "the resource no longer matches the approved before-state; nothing was applied"),
        "drift-detected",
    ),
    "killswitch-triggered": Sample(
        "killswitch",
        "killswitch",
        "killswitch.trigger.requested",
        "started",
        {"operation_id": OPERATION, "requested_by": "auth0|operator-1", "reason": "unexpected IAM change in prod"},
        "killswitch-triggered",
    ),
    "killswitch-rearmed": Sample(
        "killswitch",
        "killswitch",
        "killswitch.rearm.requested",
        "started",
        {"operation_id": OPERATION, "requested_by": "ops:alice", "reason": "incident 4711 closed"},
        "killswitch-rearmed",
    ),
    "killswitch-partly-failed": Sample(
        "killswitch",
        "killswitch",
        "killswitch.trigger.completed",
        "partial_failure",
        {"operation_id": OPERATION, "halted": True, "failed_steps": ["revoke_auth0_sessions"]},
        "killswitch-partly-failed",
    ),
}

NOT_NOTIFIABLE: dict[str, Sample] = {
    "mission created": Sample(
        "agent", MISSION, "mission.created", "ok", {"trigger": "custom", "regions": ["us-east-1"]}, None
    ),
    "approval requested": Sample("approval", MISSION, "approval.requested", "requested", {"change_id": CHANGE}, None),
    "approval decided": Sample(
        "approval", MISSION, "approval.decided", "denied", {"change_id": CHANGE, "error": "Approval.Denied"}, None
    ),
    "change applied (executor)": Sample(
        "executor",
        MISSION,
        "executor.applied",
        "applied",
        {"change_id": CHANGE, "before_state": {"block_public_acls": False}, "mutations": ["PutPublicAccessBlock"]},
        None,
    ),
    "drift seen by the executor": Sample(
        "executor", MISSION, "executor.drift", "drift", {"change_id": CHANGE, "current": {"acl": "public"}}, None
    ),
    "change applied": Sample("agent", MISSION, "change.result", "applied", _change("approved", "", "fixed"), None),
    "change denied": Sample("agent", MISSION, "change.result", "skipped", _change("denied", "Approval.Denied"), None),
    "change expired": Sample("agent", MISSION, "change.result", "skipped", _change("expired", "States.Timeout"), None),
    "change of a refused plan": Sample(
        "agent", MISSION, "change.result", "skipped", _change("failed", "Validation.PlanRefused"), None
    ),
    "kill switch step": Sample(
        "killswitch",
        "killswitch",
        "killswitch.trigger.set_halt_flag",
        "ok",
        {"operation_id": OPERATION, "reason": "", "details": {}},
        None,
    ),
    "kill switch completed": Sample(
        "killswitch",
        "killswitch",
        "killswitch.trigger.completed",
        "ok",
        {"operation_id": OPERATION, "halted": True, "failed_steps": []},
        None,
    ),
    "mission halted": Sample("killswitch", MISSION, "mission.halted", "ok", {"operation_id": OPERATION}, None),
    "a kill switch record written by another writer": Sample(
        "agent",
        "killswitch",
        "killswitch.trigger.requested",
        "started",
        {"operation_id": OPERATION, "requested_by": "agent", "reason": "not the kill switch"},
        None,
    ),
}
