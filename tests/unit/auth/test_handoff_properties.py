"""The sealed hand-off on generated records: a sealed item with one attribute broken, replaced or removed, and any
handoff id at all. Consuming ends in the opened hand-off (only for an intact record of this execution and change)
or one HandoffError; the record is gone either way (fail closed); and no error text carries the sealed token or a
secret planted in the record."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis.secrets_guard import secret_kind
from aegis_auth.errors import HandoffAlreadyConsumed, HandoffError
from aegis_auth.handoff import KIND_APPROVAL, HandoffStore, OpenedHandoff
from tests.support.properties import hostile_text, secret_values

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aegis-mission:m-1"
DIGEST = "a" * 64
NOW = 1_800_000_000.0
# Every example seals through moto's KMS and DynamoDB: fewer examples keep the module within seconds.
ON_MOTO = settings(max_examples=40)
ATTRIBUTES = (
    "kind",
    "format",
    "ciphertext",
    "encrypted_key",
    "execution_arn",
    "change_id",
    "change_digest",
    "approver_sub",
    "created_at",
    "expires_at",
)
# What DynamoDB can hold in an attribute: the record as another writer (or a bug) could have left it.
dynamodb_values = st.one_of(
    st.text(max_size=40),
    hostile_text(max_size=40),
    st.integers(min_value=-(10**20), max_value=10**20).map(Decimal),
    st.binary(max_size=64).map(Binary),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
)


@pytest.fixture
def store(aws: boto3.Session) -> HandoffStore:
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.create_table(
        TableName="Handoff",
        KeySchema=[{"AttributeName": "handoff_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "handoff_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    key_id = str(boto3.client("kms").create_key(Description="handoff")["KeyMetadata"]["KeyId"])
    return HandoffStore(table, boto3.client("kms"), key_id=key_id, clock=lambda: NOW)


def sealed(store: HandoffStore, token_response: dict[str, Any]) -> str:
    return store.seal(
        token_response,
        execution_arn=EXECUTION,
        change_id="chg-0123456789abcdef0123",
        change_digest=DIGEST,
        approver_sub="auth0|approver",
        expires_at=int(NOW) + 600,
    )


def opened_or_handoff_error(store: HandoffStore, handoff_id: Any) -> OpenedHandoff | HandoffError:
    try:
        return store.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)
    except HandoffError as exc:
        refused = exc
    assert secret_kind(str(refused)) is None
    return refused


def test_a_sealed_record_with_one_attribute_broken_opens_intact_or_is_a_handoff_error(store: HandoffStore) -> None:
    table = store._table

    @ON_MOTO
    @given(
        secret=secret_values(),
        attribute=st.sampled_from(ATTRIBUTES),
        how=st.sampled_from(["replace", "remove", "plant"]),
        value=dynamodb_values,
    )
    def consume_broken(secret: str, attribute: str, how: str, value: Any) -> None:
        token_response = {"access_token": secret, "token_type": "Bearer", "expires_in": 600}
        handoff_id = sealed(store, token_response)
        item = table.get_item(Key={"handoff_id": handoff_id})["Item"]
        if how == "remove":
            item.pop(attribute)
        else:
            item[attribute] = secret if how == "plant" else value
        table.put_item(Item=item)

        outcome = opened_or_handoff_error(store, handoff_id)
        left = table.get_item(Key={"handoff_id": handoff_id}).get("Item")
        if attribute == "kind" and item.get("kind") != KIND_APPROVAL:
            # Not an approval hand-off (any more): not the executor's to delete, and never opened.
            assert isinstance(outcome, HandoffAlreadyConsumed)
            assert left == item
            return
        assert left is None  # consumed, or refused after the delete: gone either way (fail closed)
        if isinstance(outcome, HandoffError):
            assert secret not in str(outcome)
            return
        # Opened: the sealed token itself, for this execution and change; what was broken is only bookkeeping
        # outside the encryption context (who, when, which change id) that the caller checks on its own.
        assert attribute in {"change_id", "approver_sub", "created_at"}
        assert outcome.token_response == token_response
        assert (outcome.execution_arn, outcome.change_digest) == (EXECUTION, DIGEST)

    consume_broken()


def test_any_handoff_id_is_a_handoff_error_when_nothing_is_sealed_under_it(store: HandoffStore) -> None:
    @ON_MOTO
    @given(
        handoff_id=st.one_of(
            st.text(max_size=40),
            hostile_text(),
            st.text(min_size=2000, max_size=2100),
            secret_values(),
            st.none(),
            st.integers(),
            st.lists(st.text(max_size=4), max_size=2),
        )
    )
    def consume_unknown(handoff_id: Any) -> None:
        outcome = opened_or_handoff_error(store, handoff_id)
        assert isinstance(outcome, HandoffError)
        if isinstance(handoff_id, str) and handoff_id:
            assert handoff_id not in str(outcome)

    consume_unknown()


def test_a_record_sealed_for_this_execution_opens_only_under_its_own_digest(store: HandoffStore) -> None:
    @ON_MOTO
    @given(digest=st.one_of(st.text(max_size=70), st.sampled_from([DIGEST.upper(), DIGEST + " ", "b" * 64])))
    def consume_elsewhere(digest: str) -> None:
        handoff_id = sealed(store, {"access_token": "x", "token_type": "Bearer"})
        try:
            opened = store.consume(handoff_id, execution_arn=EXECUTION, change_digest=digest)
        except HandoffError:
            return
        except ValueError:
            assert digest == ""  # encryption_context refuses an empty digest before anything is read
            store.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)
            return
        assert digest == DIGEST
        assert opened.change_digest == DIGEST

    consume_elsewhere()
