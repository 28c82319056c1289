"""A test function: writes the keys its event names to a DynamoDB table, one PutItem each, through a client it makes
once per container (so a fault armed later still reaches a client made before it), and counts its invocations per
container. Whatever happens, its `finally` writes a `cleanup` key: what a thread's "death" still runs."""

import boto3
from botocore.exceptions import ClientError

state = {"invocations": 0, "table": None}


def table(name):
    if state["table"] is None:
        state["table"] = boto3.resource("dynamodb").Table(name)
    return state["table"]


def handler(event, context):
    state["invocations"] += 1
    written = []
    try:
        for key in event["keys"]:
            table(event["table"]).put_item(Item={"id": key})
            written.append(key)
    except ClientError as error:
        return {"written": written, "error": error.response["Error"], "invocations": state["invocations"]}
    finally:
        if event.get("cleanup"):
            table(event["table"]).put_item(Item={"id": "cleanup"})
    return {"written": written, "invocations": state["invocations"]}
