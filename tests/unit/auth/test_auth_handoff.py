"""The sealed handoff: sealed under the execution and change, consumed once, opened only in the right context."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from aegis_auth.errors import (
    HandoffAlreadyConsumed,
    HandoffContextMismatch,
    HandoffCorrupt,
    HandoffError,
    HandoffExpired,
)
from aegis_auth.handoff import KIND_APPROVAL, HandoffStore, encryption_context

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aegis-mission:m-1"
OTHER_EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aegis-mission:m-2"
DIGEST = "a" * 64
OTHER_DIGEST = "b" * 64
NOW = 1_800_000_000.0
TOKEN_RESPONSE = {
    "access_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHxhcHByb3ZlciJ9.c2lnbmF0dXJlLXZhbHVlLWhlcmU",
    "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpZCJ9.aWQtc2lnbmF0dXJl",
    "refresh_token": "refresh-token-value-that-must-stay-sealed",
    "token_type": "Bearer",
    "expires_in": 600,
}


@pytest.fixture
def table(aws: boto3.Session) -> Any:
    dynamodb = boto3.resource("dynamodb")
    created = dynamodb.create_table(
        TableName="Handoff",
        KeySchema=[{"AttributeName": "handoff_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "handoff_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    created.wait_until_exists()
    return created


@pytest.fixture
def key_id(aws: boto3.Session) -> str:
    return str(boto3.client("kms").create_key(Description="handoff")["KeyMetadata"]["KeyId"])


@pytest.fixture
def store(table: Any, key_id: str) -> HandoffStore:
    return HandoffStore(table, boto3.client("kms"), key_id=key_id, clock=lambda: NOW)


def seal(store: HandoffStore, token_response: dict[str, Any] | None = None, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "execution_arn": EXECUTION,
        "change_id": "chg-0123456789abcdef0123",
        "change_digest": DIGEST,
        "approver_sub": "auth0|approver",
        "expires_at": int(NOW) + 600,
    }
    fields.update(overrides)
    return store.seal(token_response or TOKEN_RESPONSE, **fields)


def test_a_sealed_handoff_opens_once_in_its_own_context(store: HandoffStore) -> None:
    handoff_id = seal(store)
    assert len(handoff_id) == 32
    assert int(handoff_id, 16) >= 0
    opened = store.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)
    assert opened.token_response == TOKEN_RESPONSE
    assert (opened.approver_sub, opened.change_id, opened.expires_at) == (
        "auth0|approver",
        "chg-0123456789abcdef0123",
        int(NOW) + 600,
    )
    assert "refresh-token-value" not in repr(opened)
    with pytest.raises(HandoffAlreadyConsumed):
        store.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)


def test_the_stored_item_holds_no_plaintext_token_and_has_its_ttl(store: HandoffStore, table: Any) -> None:
    handoff_id = seal(store)
    item = table.get_item(Key={"handoff_id": handoff_id})["Item"]
    assert item["kind"] == KIND_APPROVAL
    assert item["expires_at"] == int(NOW) + 600
    assert {"handoff_id", "ciphertext", "execution_arn", "change_id", "change_digest", "approver_sub"} <= set(item)
    flattened = repr(item) + bytes(item["ciphertext"].value).hex() + bytes(item["ciphertext"].value).decode("latin-1")
    for secret in TOKEN_RESPONSE.values():
        if isinstance(secret, str) and len(secret) > 10:
            assert secret not in flattened


def test_another_execution_or_change_cannot_open_it_and_the_handoff_is_gone(store: HandoffStore) -> None:
    first = seal(store)
    with pytest.raises(HandoffContextMismatch):
        store.consume(first, execution_arn=OTHER_EXECUTION, change_digest=DIGEST)
    with pytest.raises(HandoffAlreadyConsumed):  # fail closed: a probe destroys it
        store.consume(first, execution_arn=EXECUTION, change_digest=DIGEST)
    second = seal(store)
    with pytest.raises(HandoffContextMismatch):
        store.consume(second, execution_arn=EXECUTION, change_digest=OTHER_DIGEST)


def test_kms_refuses_a_ciphertext_whose_stored_labels_were_rewritten(store: HandoffStore, table: Any) -> None:
    # Someone with table write access relabels a handoff for another execution: the labels match, the crypto does not.
    handoff_id = seal(store)
    table.update_item(
        Key={"handoff_id": handoff_id},
        UpdateExpression="SET execution_arn = :e",
        ExpressionAttributeValues={":e": OTHER_EXECUTION},
    )
    with pytest.raises(HandoffContextMismatch, match="KMS"):
        store.consume(handoff_id, execution_arn=OTHER_EXECUTION, change_digest=DIGEST)


def test_a_ciphertext_moved_to_another_handoff_id_does_not_open(store: HandoffStore, table: Any) -> None:
    original = seal(store)
    item = table.get_item(Key={"handoff_id": original})["Item"]
    table.put_item(Item={**item, "handoff_id": "f" * 32})
    with pytest.raises(HandoffContextMismatch, match="ciphertext"):
        store.consume("f" * 32, execution_arn=EXECUTION, change_digest=DIGEST)


def test_an_expired_handoff_is_refused_even_before_ttl_deletion(table: Any, key_id: str) -> None:
    now = [NOW]
    store = HandoffStore(table, boto3.client("kms"), key_id=key_id, clock=lambda: now[0])
    handoff_id = seal(store, expires_at=int(NOW) + 60)
    now[0] += 61
    with pytest.raises(HandoffExpired):
        store.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)
    with pytest.raises(HandoffExpired):
        seal(store, expires_at=int(NOW))


def test_only_approval_items_can_be_consumed(store: HandoffStore, table: Any) -> None:
    table.put_item(Item={"handoff_id": "cont-1", "kind": "continuation", "task_token": "t"})
    with pytest.raises(HandoffAlreadyConsumed):
        store.consume("cont-1", execution_arn=EXECUTION, change_digest=DIGEST)
    assert "Item" in table.get_item(Key={"handoff_id": "cont-1"})
    table.put_item(Item={"handoff_id": "x" * 32, "kind": KIND_APPROVAL, "format": "something-else"})
    with pytest.raises(HandoffCorrupt):
        store.consume("x" * 32, execution_arn=EXECUTION, change_digest=DIGEST)


def test_token_responses_beyond_the_kms_encrypt_limit_are_sealed(store: HandoffStore) -> None:
    large = {**TOKEN_RESPONSE, "access_token": "eyJ" + "A" * 9000, "authorization_details": [{"x": "y" * 3000}]}
    assert len(json.dumps(large)) > 4096
    handoff_id = seal(store, large)
    assert store.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST).token_response == large


def test_concurrent_consumers_get_the_tokens_exactly_once(store: HandoffStore) -> None:
    handoff_id = seal(store)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def consume() -> None:
        barrier.wait()
        try:
            store.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST)
            results.append("opened")
        except HandoffAlreadyConsumed:
            results.append("refused")

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["opened", "refused", "refused", "refused"]


def test_sealing_needs_a_key_and_a_full_context(table: Any) -> None:
    keyless = HandoffStore(table, boto3.client("kms"), clock=lambda: NOW)
    with pytest.raises(HandoffError, match="key id"):
        seal(keyless)
    with pytest.raises(ValueError, match="required"):
        encryption_context("", DIGEST)


def test_a_store_without_the_key_id_opens_what_the_sealer_sealed(table: Any, key_id: str) -> None:
    sealer = HandoffStore(table, boto3.client("kms"), key_id=key_id, clock=lambda: NOW)
    handoff_id = seal(sealer)
    opener = HandoffStore(table, boto3.client("kms"), clock=lambda: NOW)  # the executor opens without the key id
    assert opener.consume(handoff_id, execution_arn=EXECUTION, change_digest=DIGEST).token_response == TOKEN_RESPONSE
