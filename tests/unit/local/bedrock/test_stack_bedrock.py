"""The local stack serves Bedrock's runtime from the emulator: a function's plain boto3 `bedrock-runtime` client
reaches it through AWS_ENDPOINT_URL_BEDROCK_RUNTIME, while every other client of the same function stays on moto."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from aegis_local.aws.stack import LocalStack
from aegis_local.bedrock import DATA_BEGIN, DATA_END

VARIABLE = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def _converse_request() -> dict[str, Any]:
    data = {
        "batch": 1,
        "batches": 1,
        "findings": [
            {
                "ref": "F1",
                "check_id": "kms-key-rotation-off",
                "title": "KMS key rotation is off",
                "severity": "medium",
                "resource_arn": "arn:aws:kms:us-east-1:123456789012:key/example",
                "tags": {},
                "candidates": [{"index": 0, "kind": "enable-kms-key-rotation", "risk": "low", "summary": "rotate"}],
            }
        ],
    }
    return {
        "modelId": "scripted",
        "messages": [{"role": "user", "content": [{"text": f"{DATA_BEGIN}\n{json.dumps(data)}\n{DATA_END}"}]}],
        "inferenceConfig": {"maxTokens": 1024, "temperature": 0},
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "record_analysis", "inputSchema": {"json": {"type": "object"}}}}],
            "toolChoice": {"tool": {"name": "record_analysis"}},
        },
    }


def test_a_functions_bedrock_client_reaches_the_emulator_and_its_other_clients_moto(stack):
    stack.bedrock.reset()
    seen: dict[str, Any] = {}

    def agent(event: Any, context: Any) -> dict[str, Any]:
        # Plain clients, as the handlers make them: no endpoint_url.
        answer = boto3.client("bedrock-runtime").converse(**_converse_request())
        seen["choice"] = answer["output"]["message"]["content"][0]["toolUse"]["input"]["decisions"][0]["choice"]
        seen["tables"] = boto3.client("dynamodb").list_tables()["TableNames"]
        seen["endpoint"] = os.environ.get(VARIABLE)
        return {}

    with stack.lambdas.override("AgentScanFunction", agent):
        stack.client("lambda").invoke(FunctionName=stack.physical_id("AgentScanFunction"), Payload=b"{}")

    assert seen["endpoint"] == stack.bedrock.url
    assert seen["choice"] == 0
    assert set(stack.table_names().values()) <= set(seen["tables"])
    assert [(c.model_id, c.batch, c.outcome) for c in stack.bedrock.calls()] == [("scripted", 1, "answered")]


def test_the_endpoint_is_listed_and_in_the_process_environment(stack):
    assert stack.endpoints.as_dict()["bedrock"] == stack.bedrock.url
    assert stack.bedrock.url.startswith("http://127.0.0.1:")
    # Threads a handler starts itself see the process environment, not its overlay.
    assert os.environ[VARIABLE] == stack.bedrock.url
