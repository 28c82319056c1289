"""`DynamoDBAtomicItemsFix`: a DynamoDB item write on the local stack is atomic, as on AWS. A request that arrives
while another is half-way through its write sees the item before or after that write, never in between.

Each test holds the first write inside moto, after its condition passed and before its update expression is applied
(the window in which moto's item is bare or still at the old version), and sends the second request then."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import models as dynamodb_models

from aegis_local.aws.moto_fixes import DynamoDBAtomicItemsFix

TABLE = "Continuations"
KEY = {"id": "pace#approver"}
WAIT_SECONDS = 10.0


class HeldWrite:
    """Holds the first update expression moto applies until `release()`; later ones run at once."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self._release = threading.Event()
        self._held = False
        self._original = dynamodb_models.UpdateExpressionExecutor

    def executor(self, *args: Any, **kwargs: Any) -> Any:
        real = self._original(*args, **kwargs)
        if self._held:
            return real
        self._held = True
        held = self

        class Held:
            def execute(self) -> None:
                held.inside.set()
                held._release.wait(WAIT_SECONDS)
                real.execute()

        return Held()

    def release(self) -> None:
        self._release.set()


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="us-east-1")
        created = resource.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield created
    DynamoDBAtomicItemsFix.uninstall()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldWrite:
    write = HeldWrite()
    monkeypatch.setattr(dynamodb_models, "UpdateExpressionExecutor", write.executor)
    return write


def _recording(call: Callable[[], Any], results: list[str]) -> threading.Thread:
    """A thread running `call`, that appends "ok" or the error code it met to `results`."""

    def run() -> None:
        try:
            call()
            results.append("ok")
        except ClientError as exc:
            results.append(exc.response["Error"]["Code"])

    return threading.Thread(target=run)


def _race(first: Callable[[], Any], second: Callable[[], Any], held: HeldWrite) -> tuple[list[str], list[str]]:
    """Run `first` until moto holds it inside its write, then `second`; release `first` once `second` answered or
    is seen waiting. The outcomes of both, in that order."""
    first_results: list[str] = []
    second_results: list[str] = []
    first_thread = _recording(first, first_results)
    second_thread = _recording(second, second_results)
    first_thread.start()
    assert held.inside.wait(WAIT_SECONDS), "the first write never reached moto's update"
    second_thread.start()
    # With the fix the second request waits for the first; without it, it answers at once. Either way the first is
    # released now, and both must end.
    second_thread.join(0.5)
    held.release()
    for thread in (first_thread, second_thread):
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive()
    return first_results, second_results


def _take_kind(table: Any) -> Callable[[], Any]:
    return lambda: table.update_item(
        Key=KEY,
        UpdateExpression="SET #kind = :kind, #version = if_not_exists(#version, :zero)",
        ConditionExpression="attribute_not_exists(#id) OR #kind = :kind",
        ExpressionAttributeNames={"#id": "id", "#kind": "kind", "#version": "version"},
        ExpressionAttributeValues={":kind": "pace", ":zero": 0},
        ReturnValues="ALL_NEW",
    )


def _bump(table: Any, version: int) -> Callable[[], Any]:
    return lambda: table.update_item(
        Key=KEY,
        UpdateExpression="SET #version = :next",
        ConditionExpression="#version = :version",
        ExpressionAttributeNames={"#version": "version"},
        ExpressionAttributeValues={":version": version, ":next": version + 1},
    )


def test_a_request_never_sees_an_item_half_created(table: Any, held: HeldWrite) -> None:
    DynamoDBAtomicItemsFix.install()
    first, second = _race(_take_kind(table), _take_kind(table), held)
    # Without the fix the second one reads the bare key moto stored first, and its condition fails.
    assert (first, second) == (["ok"], ["ok"])
    assert table.get_item(Key=KEY)["Item"] == {**KEY, "kind": "pace", "version": 0}


def test_of_two_writes_at_the_same_version_exactly_one_wins(table: Any, held: HeldWrite) -> None:
    table.put_item(Item={**KEY, "kind": "pace", "version": 3})
    DynamoDBAtomicItemsFix.install()
    first, second = _race(_bump(table, 3), _bump(table, 3), held)
    # Without the fix both conditions pass against version 3, and both "win".
    assert (first, second) == (["ok"], ["ConditionalCheckFailedException"])
    assert table.get_item(Key=KEY)["Item"]["version"] == 4


def test_without_the_fix_moto_lets_both_writes_win(table: Any, held: HeldWrite) -> None:
    """What the fix is for: moto alone passes both conditions (if moto changes this, the fix can go)."""
    table.put_item(Item={**KEY, "kind": "pace", "version": 3})
    assert _race(_bump(table, 3), _bump(table, 3), held) == (["ok"], ["ok"])


def test_uninstall_gives_moto_its_methods_back(table: Any) -> None:
    originals = {
        name: getattr(dynamodb_models.DynamoDBBackend, name) for name in DynamoDBAtomicItemsFix.ITEM_OPERATIONS
    }
    DynamoDBAtomicItemsFix.install()
    DynamoDBAtomicItemsFix.install()  # twice is once
    assert all(
        getattr(dynamodb_models.DynamoDBBackend, name).__wrapped__ is original for name, original in originals.items()
    )
    DynamoDBAtomicItemsFix.uninstall()
    assert {name: getattr(dynamodb_models.DynamoDBBackend, name) for name in originals} == originals
