"""The local stack's DynamoDB stream delivery (aegis_local.aws.streams), on the fixture stack plus a streamed table
and a consumer: records in order, in batches of BatchSize, filtered by FilterCriteria, a failed batch retried, and
one that exhausts MaximumRetryAttempts dropped without stopping the ones after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aegis_local.aws.stack import LocalStack
from tests.integration.local.aws.test_resources import ISSUER, fixture_copy

MAPPING = "StreamReaderChanges"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    template = fixture_copy(
        tmp_path_factory.mktemp("streams"),
        {
            "StreamedTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "item_id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "item_id", "KeyType": "HASH"}],
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                },
            },
            "StreamReader": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/stream_reader/",
                    "Handler": "app.handler",
                    "Events": {
                        "Changes": {
                            "Type": "DynamoDB",
                            "Properties": {
                                "Stream": {"Fn::GetAtt": ["StreamedTable", "StreamArn"]},
                                "StartingPosition": "TRIM_HORIZON",
                                "BatchSize": 2,
                                "MaximumRetryAttempts": 1,
                                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                                "FilterCriteria": {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]},
                            },
                        }
                    },
                },
            },
        },
    )
    with LocalStack(template_path=template, stack_name="streams", auth0=False, parameters=ISSUER) as running:
        yield running


def _batches(stack: LocalStack) -> list[dict[str, Any]]:
    items = stack.session().resource("dynamodb").Table(stack.physical_id("ItemsTable")).scan()["Items"]
    return [item for item in items if str(item["item_id"]).startswith("batch-")]


def _put(stack: LocalStack, item_id: str, **attributes: Any) -> None:
    table = stack.session().resource("dynamodb").Table(stack.physical_id("StreamedTable"))
    table.put_item(Item={"item_id": item_id, **attributes})


def _seen(stack: LocalStack) -> dict[str, int]:
    items = stack.session().resource("dynamodb").Table(stack.physical_id("ItemsTable")).scan()["Items"]
    return {str(i["item_id"]).removeprefix("seen-"): int(i["times"]) for i in items if i["item_id"].startswith("seen-")}


def test_records_arrive_in_order_in_batches_and_only_insertions(stack: LocalStack) -> None:
    for index in range(5):
        _put(stack, f"a{index}")
    table = stack.session().resource("dynamodb").Table(stack.physical_id("StreamedTable"))
    table.update_item(Key={"item_id": "a0"}, UpdateExpression="SET touched = :t", ExpressionAttributeValues={":t": 1})
    assert stack.drain_streams(10)
    batches = sorted(_batches(stack), key=lambda item: str(item["item_id"]))
    delivered = [key for batch in batches for key in batch["keys"]]
    assert delivered == ["a0", "a1", "a2", "a3", "a4"]  # the modification of a0 was filtered out
    assert all(len(batch["keys"]) <= 2 for batch in batches)
    assert {name for batch in batches for name in batch["names"]} == {"INSERT"}


def test_a_failed_batch_is_retried_and_one_that_keeps_failing_is_dropped(stack: LocalStack) -> None:
    progress = stack.streams.progress(MAPPING)
    failed_before = progress.failed_batches
    _put(stack, "b0", fail_times=1)  # fails once: the retry delivers it
    assert stack.drain_streams(10)
    assert _seen(stack).get("b0") == 1
    _put(stack, "c0", fail_times=5)  # more than MaximumRetryAttempts: dropped after the first retry
    _put(stack, "c1")
    _put(stack, "c2")
    assert stack.drain_streams(20)
    seen = _seen(stack)
    assert "c0" not in seen  # c1 too, when the poller read it into c0's batch: Lambda drops whole batches
    assert seen.get("c2") == 1  # the records after the dropped batch still arrive
    assert progress.failed_batches == failed_before + 1
    assert any("asked to fail" in error for error in progress.errors)


def test_a_partial_batch_response_retries_from_the_first_failed_record(stack: LocalStack) -> None:
    progress = stack.streams.progress(MAPPING)
    failed_before = progress.failed_batches
    for item_id, attributes in (("p0", {}), ("p1", {"partial_fail_times": 1}), ("p2", {})):
        _put(stack, item_id, **attributes)
    assert stack.drain_streams(10)
    seen = _seen(stack)
    # Each once: p0 before the failure is not redelivered, p1 and p2 are retried and then delivered.
    assert {key: seen.get(key) for key in ("p0", "p1", "p2")} == {"p0": 1, "p1": 1, "p2": 1}
    assert progress.failed_batches == failed_before
    assert any("first reported failure" in error for error in progress.errors)


def test_drain_answers_false_when_a_consumer_cannot_keep_up(stack: LocalStack) -> None:
    _put(stack, "d0", fail_times=1)
    assert stack.drain_streams(0.01) is False
    assert stack.drain_streams(10)


def test_the_template_stream_events_become_mappings(stack: LocalStack) -> None:
    [mapping] = stack.streams.mappings
    assert (mapping.name, mapping.batch_size, mapping.maximum_retry_attempts) == (MAPPING, 2, 1)
    assert mapping.stream_arn == stack.resources.attribute("StreamedTable", "StreamArn")
