"""The streams test's consumer. For each record, in order: counts it as seen in the items table, unless the item asks
to fail (`fail_times`: the whole invocation raises; `partial_fail_times`: the answer names it and the records after
it as failed, the partial batch response), counting attempts there too. Each batch is also recorded."""

import os

import boto3


def _attempts(table, key):
    answer = table.update_item(
        Key={"item_id": "attempts-" + key},
        UpdateExpression="ADD attempts :one",
        ExpressionAttributeValues={":one": 1},
        ReturnValues="UPDATED_NEW",
    )
    return answer["Attributes"]["attempts"]


def handler(event, context):
    table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
    records = event["Records"]
    keys = [record["dynamodb"]["Keys"]["item_id"]["S"] for record in records]
    table.put_item(Item={"item_id": "batch-" + keys[0], "keys": keys, "names": [r["eventName"] for r in records]})
    for index, record in enumerate(records):
        image = record["dynamodb"].get("NewImage", {})
        fail = int(image.get("fail_times", {}).get("N", "0"))
        if fail and _attempts(table, keys[index]) <= fail:
            raise RuntimeError(f"asked to fail {fail} times")
        partial = int(image.get("partial_fail_times", {}).get("N", "0"))
        if partial and _attempts(table, keys[index]) <= partial:
            return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records[index:]]}
        table.update_item(
            Key={"item_id": "seen-" + keys[index]},
            UpdateExpression="ADD times :one",
            ExpressionAttributeValues={":one": 1},
        )
    return {"batchItemFailures": []}
