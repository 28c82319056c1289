"""No message carries a secret, a token or a resource's data: each notification is built from its allowlisted
fields, each screened for its shape, and never from `details` as a whole. Secrets are planted straight into the
Audit table (past AuditLog, which would refuse them), in every field a builder reads and in fields it does not."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from aegis.catalogue.base import CHANGE_ID_PATTERN
from aegis.secrets_guard import WITHHELD, secret_kind, withhold_secrets
from aegis_notifier import notifications as shapes
from tests.support import planted_secrets
from tests.support.notifier_world import DEPLOYMENT, NOTIFIABLE, RESOURCE, NotifierWorld, Sample

JWT = planted_secrets.jwt()
SECRETS = {
    "jwt": JWT,
    "access key id": planted_secrets.access_key_id(),
    "secret access key": planted_secrets.secret_access_key(),
    "bearer": planted_secrets.bearer(),
    "pem": planted_secrets.pem_private_key(),
    "high entropy": planted_secrets.high_entropy(),
}
# What a record may carry besides its allowlisted fields: a resource's state, evidence, tokens a writer let slip.
RAW_DATA = {
    "before_state": {"policy": '{"Statement":[{"Effect":"Allow","Principal":"*"}]}', "token": JWT},
    "evidence": {"acl": "public-read", "owner_display_name": "alice"},
    "current": {"block_public_acls": False},
    "task_token": SECRETS["high entropy"],
    "auth_req_id": SECRETS["bearer"],
}
# Fields a builder decides by (its vocabulary): kept, so that a notification is published all the same.
CLASSIFIERS = {"decision"}


def plant(world: NotifierWorld, sample: Sample, details: dict[str, Any], **fields: str) -> None:
    now = datetime.now(UTC)
    world.plant(
        {
            "mission_id": sample.mission_id,
            "seq": f"{now.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{uuid.uuid4().hex[:12]}",
            "at": now.isoformat(),
            "actor": sample.actor,
            "action": sample.action,
            "outcome": sample.outcome,
            "details": json.dumps(details),
            "checksum": "0" * 64,
            **fields,
        }
    )


def with_secret_everywhere(value: Any, secret: str) -> Any:
    """`value` with every string replaced by `secret` (numbers and flags kept)."""
    if isinstance(value, str):
        return secret
    if isinstance(value, list):
        return [with_secret_everywhere(item, secret) for item in value]
    if isinstance(value, dict):
        return {key: with_secret_everywhere(item, secret) for key, item in value.items()}
    return value


def published(world: NotifierWorld) -> list[dict[str, Any]]:
    notifier = world.notifier()
    for record in world.stream.records():
        notifier.notify(DynamoDBRecord(record))
    return world.subscriber.messages()


def everything_sent(messages: list[dict[str, Any]]) -> str:
    """Subject, message and attributes of every message, as the subscriber received them."""
    return json.dumps([{k: v for k, v in m.items() if k != "Document"} for m in messages], ensure_ascii=False)


@pytest.mark.parametrize("name", sorted(NOTIFIABLE))
def test_a_secret_planted_in_any_field_never_reaches_a_message(world: NotifierWorld, name: str) -> None:
    """One record per kind of secret, each field with another kind, so every kind lands in every field read."""
    sample = NOTIFIABLE[name]
    kinds = list(SECRETS.values())
    for offset in range(len(kinds)):
        details = {
            key: value if key in CLASSIFIERS else with_secret_everywhere(value, kinds[(index + offset) % len(kinds)])
            for index, (key, value) in enumerate(sample.details.items())
        }
        plant(world, sample, {**details, **RAW_DATA, "note": kinds[offset]})

    messages = published(world)
    assert len(messages) == len(kinds), "the notification is still told, its planted fields withheld"
    sent = everything_sent(messages)
    for value in (*SECRETS.values(), JWT, "public-read", "owner_display_name", "Principal"):
        assert value not in sent
    if any(isinstance(value, str | list) for key, value in sample.details.items() if key not in CLASSIFIERS):
        # What was there is shown as withheld, not silently dropped.
        assert all(WITHHELD in json.dumps(message["Document"]) for message in messages)


@pytest.mark.parametrize("name", sorted(NOTIFIABLE))
def test_a_secret_planted_as_the_records_own_keys_and_outcome_never_reaches_a_message(
    world: NotifierWorld, name: str
) -> None:
    sample = NOTIFIABLE[name]
    plant(world, sample, sample.details, outcome=SECRETS["jwt"], at=SECRETS["bearer"])
    plant(
        world,
        Sample(sample.actor, SECRETS["access key id"], sample.action, sample.outcome, {}, sample.kind),
        sample.details,
    )
    sent = everything_sent(published(world))
    assert all(value not in sent for value in SECRETS.values())


# --- identifiers only ------------------------------------------------------------------------------------------------
# The fields each message may have, and the shape of each value; texts shown to people are checked apart.
IDENTIFIER_SHAPES = {
    "mission_id": rf"{shapes.MISSION_ID}|^killswitch$",
    "change_id": CHANGE_ID_PATTERN,
    "execution_arn": shapes.EXECUTION_ARN,
    "digest": shapes.DIGEST,
    "operation_id": shapes.OPERATION_ID,
    "at": shapes.ISO_TIME,
    "waiting_since": shapes.ISO_TIME,
    "seq": shapes.AUDIT_SEQ,
    "error": shapes.ERROR_NAME,
    "error_type": shapes.TYPE_NAME,
    "notification": r"^[a-z-]+$",
    "deployment": r"^[A-Za-z][A-Za-z0-9-]*$",
    **dict.fromkeys(
        ("plan_status", "outcome", "decision", "verified", "trigger", "operation", "refused"), shapes.VOCABULARY_WORD
    ),
    "rules": shapes.VOCABULARY_WORD,
    "failed_steps": shapes.VOCABULARY_WORD,
}
TEXTS = {"summary", "meaning", "reason", "requested_by"}
NUMBERS = {"waited_minutes", "threshold_minutes", "change_count", "counts", "halted"}


def leaves(value: Any, name: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in leaves(item, key)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item, name)]
    return [(name, value)]


@pytest.mark.parametrize("name", sorted(NOTIFIABLE))
def test_messages_carry_identifiers_counts_and_the_operators_own_words_only(world: NotifierWorld, name: str) -> None:
    NOTIFIABLE[name].write(world)
    (message,) = published(world)
    document = message["Document"]
    for key, value in leaves(document, ""):
        if key in TEXTS:
            assert isinstance(value, str)
        elif key in NUMBERS or key in {"findings", "changes", "exemptions", "plan_notes", "scan_errors", "withheld"}:
            assert value is None or isinstance(value, int | bool), (key, value)
        elif key == "api_calls":
            assert isinstance(value, int)
        else:
            assert key in IDENTIFIER_SHAPES, f"{key} is not an identifier a message may carry"
            assert isinstance(value, str), (key, value)
            assert re.fullmatch(IDENTIFIER_SHAPES[key], value), (key, value)
    # The resource itself (its ARN names it) stays in the trail: a change is told by its id.
    assert RESOURCE not in everything_sent([message])


def test_a_reason_is_a_named_error_or_the_systems_own_words_with_credentials_withheld(world: NotifierWorld) -> None:
    sample = NOTIFIABLE["change-failed (executor's own answer)"]
    details = {**sample.details, "reason": f"AWS refused: PutBucketAcl AccessDenied; token {JWT}\nnext line"}
    plant(world, sample, details)
    (message,) = published(world)
    reason = message["Document"]["reason"]
    assert JWT not in reason
    assert WITHHELD in reason
    assert "\n" not in reason
    assert reason.startswith("AWS refused: PutBucketAcl AccessDenied;")


def test_a_subject_is_one_short_ascii_line_whatever_the_operator_wrote(world: NotifierWorld) -> None:
    sample = NOTIFIABLE["killswitch-triggered"]
    reason = "halt now\nplease \u202ereversed\u202c " + "é" * 40 + "x" * 300
    world.append(sample.actor, sample.mission_id, sample.action, sample.outcome, **{**sample.details, "reason": reason})
    (message,) = published(world)
    subject = message["Subject"]
    assert len(subject) < 100
    assert subject.isascii()
    assert subject.isprintable()
    assert subject.startswith(f"[{DEPLOYMENT}] kill switch triggered by auth0|operator-1: halt now")
    assert subject.endswith("...")
    # The message keeps the operator's words, invisible characters spelled out, cut at a bound.
    shown = message["Document"]["reason"]
    assert "\\u202e" in shown
    assert "\n" not in shown
    assert len(shown) <= shapes.MAX_REASON_CHARS


# --- each field screened for its own shape ---------------------------------------------------------------------------
# Wrongly shaped but not secret-like: nothing in the message-wide screen catches them, only each field's own shape.
WRONGLY_SHAPED = (
    RESOURCE,
    '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}',
    "Public Read ACL on aegis-public-site",
)
# The fields each builder reads from a record (as the message names them), each screened for its shape.
FIELDS_READ = {
    "approval.waiting": {"execution_arn", "change_id", "waiting_since", "waited_minutes", "threshold_minutes"},
    "mission.completed": set(shapes.MISSION_COUNTS),
    "mission.failed": {"error", "error_type"},
    "mission.refused": {"trigger"},
    "validator.refused": {"error", "execution_arn", "change_count", "rules"},
    "change.result": {"change_id", "digest"},
    "killswitch.trigger.requested": {"operation_id"},
    "killswitch.rearm.requested": {"operation_id"},
    "killswitch.trigger.completed": {"operation_id", "failed_steps", "halted"},
}
# Shown as the operator's (or the system's) own words, screened as texts are: not a shape to check.
OWN_WORDS = {"reason", "requested_by"}
# A record whose outcome is the field read (mission.failed: its named error).
OUTCOME_READ = {"mission.failed"}


def wrongly_shaped_everywhere(value: Any, index: int) -> Any:
    """`value` with every string, number and flag replaced by a wrongly shaped value (None kept: nothing there)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [wrongly_shaped_everywhere(item, index + offset) for offset, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            key: wrongly_shaped_everywhere(item, index + offset) for offset, (key, item) in enumerate(value.items())
        }
    return WRONGLY_SHAPED[index % len(WRONGLY_SHAPED)]


def test_the_wrong_values_are_not_secret_like() -> None:
    """The planted values pass the message-wide screen untouched: only the per-field shapes stop them."""
    for value in WRONGLY_SHAPED:
        assert secret_kind(value) is None
        assert withhold_secrets({"field": value})[0] == {"field": value}


@pytest.mark.parametrize("name", sorted(NOTIFIABLE))
def test_a_wrongly_shaped_value_in_any_field_read_is_withheld(world: NotifierWorld, name: str) -> None:
    sample = NOTIFIABLE[name]
    details = {
        key: value if key in CLASSIFIERS | OWN_WORDS else wrongly_shaped_everywhere(value, index)
        for index, (key, value) in enumerate(sample.details.items())
    }
    outcome = {"outcome": WRONGLY_SHAPED[0]} if sample.action in OUTCOME_READ else {}
    plant(world, sample, details, **outcome)

    (message,) = published(world)
    assert message["Document"]["notification"] == sample.kind, "the notification is told all the same"
    sent = everything_sent([message])
    for value in WRONGLY_SHAPED:
        assert value not in sent
        assert json.dumps(value)[1:-1] not in sent
    read = FIELDS_READ[sample.action]
    shown = leaves(message["Document"], "")
    assert read <= {key for key, _ in shown}, "every field read is shown, as withheld"
    for key, value in shown:
        if key in read:
            assert value == WITHHELD, (key, value)
