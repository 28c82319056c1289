"""The mission state machine of statemachine/mission.asl.json on moto: its four Lambda tasks point at functions that
only return their input (a test can answer for them instead), and the definition is substituted as the template's
is."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import boto3

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
