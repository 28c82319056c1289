"""The mission state machine of statemachine/mission.asl.json on moto: its four Lambda tasks point at functions that
only return their input (a test can answer for them instead), and the definition is substituted as the template's
is."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

from aegis.partitions import arn_partition
from aegis_local.aws.template import substitute_definition
from tests.support.stack import STATE_MACHINE_PATH

TASKS = ("validator", "approval", "executor", "resume")


def task_functions(role_arn: str, region: str, prefix: str = "") -> dict[str, str]:
    """One function per task, named `prefix` + the task; their ARNs by task."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def handler(event, context):\n    return event\n")
    lambdas = boto3.client("lambda", region_name=region)
    return {
        task: lambdas.create_function(
            FunctionName=f"{prefix}{task}",
            Runtime="python3.13",
            Role=role_arn,
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
        )["FunctionArn"]
        for task in TASKS
    }


def mission_definition(
    functions: Mapping[str, str],
    *,
    max_concurrency: int = 4,
    heartbeat_seconds: int = 3600,
    timeout_seconds: int = 3600,
) -> str:
    """The definition with the tasks' function ARNs and the approval's limits in place of the template's parameters,
    its service integrations in the functions' partition (the stack's `AWS::Partition`)."""
    return substitute_definition(
        STATE_MACHINE_PATH.read_text(encoding="utf-8"),
        {
            "ValidatorFunctionArn": functions["validator"],
            "ApprovalFunctionArn": functions["approval"],
            "ExecutorFunctionArn": functions["executor"],
            "AgentResumeFunctionArn": functions["resume"],
            "MapMaxConcurrency": str(max_concurrency),
            "ApprovalHeartbeatSeconds": str(heartbeat_seconds),
            "ApprovalTimeoutSeconds": str(timeout_seconds),
            "Partition": str(arn_partition(functions["validator"])),
        },
    )


# --- approval requests as the validator plans them (DESIGN: aegis.approvals.requests.ApprovalRequest JSON) --------
# The state machine never reads a proof or a root, it only carries them; these are shaped like the planner's so that
# the payloads the tests see are the real ones in form. The planner itself is tested in the layer's own tests.
APPROVER_A, APPROVER_B = "auth0|approver-a", "auth0|approver-b"


def single_request(
    request_id: str, change: Mapping[str, Any], approvers: Sequence[str] = (APPROVER_A,)
) -> dict[str, Any]:
    """A request for one change alone: no root, no proof."""
    return {
        "request_id": request_id,
        "kind": "single",
        "approvers": list(approvers),
        "root": None,
        "review_url": None,
        "items": [{"change": dict(change), "proof": None}],
    }


def batch_request(
    request_id: str, changes: Sequence[Mapping[str, Any]], approvers: Sequence[str] = (APPROVER_A,)
) -> dict[str, Any]:
    """A batch of `changes` under one root, each with a proof of its place in the tree."""
    root = hashlib.sha256("".join(str(c["change_id"]) for c in changes).encode()).hexdigest()
    return {
        "request_id": request_id,
        "kind": "batch",
        "approvers": list(approvers),
        "root": root,
        "review_url": f"http://127.0.0.1:8000/#/missions/m-0123456789abcdef0123/requests/{request_id}",
        "items": [
            {
                "change": dict(change),
                "proof": {
                    "leaf_index": index,
                    "tree_size": len(changes),
                    "path": [hashlib.sha256(f"{root}:{index}".encode()).hexdigest()],
                },
            }
            for index, change in enumerate(changes)
        ],
    }


def one_request_each(changes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every change a single request of its own, as a plan of high-risk changes with one approver is planned."""
    return [single_request(f"r{index:03d}", change) for index, change in enumerate(changes, start=1)]


def approved_answer(approver_sub: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """What the approval function sends with SendTaskSuccess once `approver_sub` approved `request`: one handoff per
    change, no secret."""
    return {
        "decision": "approved",
        "approver_sub": approver_sub,
        "approved_at": "2025-06-01T12:00:00Z",
        "handoffs": {
            item["change"]["change_id"]: handoff_id(approver_sub, item["change"]["change_id"])
            for item in request["items"]
        },
    }


def handoff_id(approver_sub: str, change_id: str) -> str:
    return "hnd-" + hashlib.sha256(f"{approver_sub}:{change_id}".encode()).hexdigest()[:24]


def plan_as_the_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Have moto's functions answer the validator's task as the validator does for a plan it accepts, with one single
    request per change (its function name ends with `validator`, as `task_functions` names it); every other task
    still gets its input back. moto's Lambda without Docker runs no code: it returns the payload."""
    echo = LambdaSimpleBackend.invoke

    def invoke(
        self: LambdaSimpleBackend, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> Any:
        if function_name.rsplit(":", 1)[-1].endswith("validator"):
            plan = json.loads(body)["plan"]
            answer = {"mission_id": plan["mission_id"], "requests": one_request_each(plan["changes"])}
            return json.dumps(answer).encode()
        return echo(self, function_name, qualifier, body, headers, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
