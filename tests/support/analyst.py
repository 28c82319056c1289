"""Analyst fixtures: findings with several code-built fixes, a real `bedrock-runtime` client whose answers come from
botocore's Stubber (which checks every request against the service model), and Converse answers as Bedrock gives
them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from botocore.stub import Stubber

from aegis.checks import CHECKS
from aegis.checks.base import PlanConfig, candidates_of
from aegis.models import Finding
from aegis_agent.analyst import AnalystItem
from aegis_agent.analyst.prompt import DATA_BEGIN, DATA_END, TOOL_NAME
from tests.support.agent_world import bucket_finding

NO_BLOCK = {"configured": False}


def acl_public_bucket(name: str, tags: dict[str, str] | None = None) -> Finding:
    """A bucket public through its ACL alone: Block Public Access (index 0) or removing the grants (index 1)."""
    return bucket_finding(
        name, tags, public_access_block=NO_BLOCK, public_acl_grants=["AllUsers:READ"], public_policy_statements=[]
    )


def item_of(finding: Finding, config: PlanConfig | None = None) -> AnalystItem:
    config = config or PlanConfig()
    check = CHECKS[finding.check_id]
    candidates = tuple(candidates_of(check, finding, config))
    chosen = check.propose(finding, config)
    assert chosen is not None
    return AnalystItem(
        finding=finding,
        candidates=candidates,
        deterministic=[c.digest for c in candidates].index(chosen.digest),
    )


def bedrock_client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com",
    )


def tool_answer(
    tool_input: Any,
    *,
    stop_reason: str = "tool_use",
    name: str = TOOL_NAME,
    input_tokens: int = 1000,
    output_tokens: int = 200,
) -> dict[str, Any]:
    return {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": name, "input": tool_input}}],
            }
        },
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 120},
    }


def decisions(*choices: Any, priority: int = 2, rationale: str = "Public data: block it.") -> list[dict[str, Any]]:
    return [
        {"ref": f"F{n}", "choice": choice, "priority": priority, "rationale": rationale}
        for n, choice in enumerate(choices, start=1)
    ]


def data_of(request: Mapping[str, Any]) -> dict[str, Any]:
    """The findings data block of a Converse request (text or guardContent)."""
    for block in request["messages"][0]["content"]:
        text = block.get("text") or block.get("guardContent", {}).get("text", {}).get("text")
        if text and text.startswith(DATA_BEGIN):
            return dict(json.loads(text.removeprefix(DATA_BEGIN).removesuffix(DATA_END)))
    raise AssertionError("no data block")


class StubbedBedrock:
    """A real client with queued answers; `requests` are the converse calls made (botocore-validated)."""

    def __init__(self) -> None:
        self.client = bedrock_client()
        self.stubber = Stubber(self.client)
        self.requests: list[dict[str, Any]] = []
        self.client.meta.events.register("provide-client-params.bedrock-runtime.Converse", self._record)
        self.stubber.activate()

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(json.loads(json.dumps(params)))

    def answer(self, *responses: dict[str, Any]) -> StubbedBedrock:
        for response in responses:
            self.stubber.add_response("converse", response)
        return self

    def fail(self, code: str, status: int) -> StubbedBedrock:
        self.stubber.add_client_error("converse", service_error_code=code, http_status_code=status)
        return self

    def assert_all_used(self) -> None:
        self.stubber.assert_no_pending_responses()


def refs(batch: Sequence[Any]) -> list[str]:
    return [f"F{n}" for n in range(1, len(batch) + 1)]
