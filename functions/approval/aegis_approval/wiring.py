"""Builds the ApprovalService from the environment, once per Lambda container."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import httpx

from aegis.audit import AuditLog
from aegis_approval.continuation import ContinuationStore
from aegis_approval.errors import ERROR_FAILED, SelfInvocationFailed, TaskGone
from aegis_approval.pacing import ApproverPacer
from aegis_approval.service import ACTOR, ApprovalService, Clock, Sleeper
from aegis_approval.settings import ApprovalSettings
from aegis_approval.tasks import TaskTokens
from aegis_auth.handoff import HandoffStore
from aegis_auth.oidc import ClientAuthentication, OidcClient


def _self_invoker(function_name: str) -> Callable[[dict[str, str]], None]:
    # The Lambda client is made on the first hand-over, not with the service: most invocations end with a decision
    # and never need it, and building it is part of every cold start otherwise.
    client: Any = None

    def invoke(payload: dict[str, str]) -> None:
        nonlocal client
        if client is None:
            client = boto3.client("lambda")
        response = client.invoke(
            FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
        if response.get("StatusCode") != 202:
            raise SelfInvocationFailed(f"asynchronous self-invocation answered {response.get('StatusCode')}")

    return invoke


def create_service(
    *, clock: Clock = time.time, sleep: Sleeper = time.sleep, http: httpx.Client | None = None
) -> ApprovalService:
    """A service wired to the AWS clients and provider named by the environment. The local stack and tests pass
    their own clock, sleeper and HTTP client; Lambda uses the real ones."""
    settings = ApprovalSettings.from_env()
    dynamodb = boto3.resource("dynamodb")
    handoff_table = dynamodb.Table(settings.handoff_table)
    continuations_table = dynamodb.Table(settings.continuations_table)
    auth = ClientAuthentication.from_secret_arn(
        settings.client_id, settings.client_secret_arn, settings.client_auth_method
    )
    return ApprovalService(
        settings,
        oidc=OidcClient(settings.issuer, auth, http=http, clock=clock),
        handoffs=HandoffStore(handoff_table, boto3.client("kms"), key_id=settings.handoff_key_id, clock=clock),
        continuations=ContinuationStore(continuations_table, clock=clock),
        # The pacer's items live beside the continuations: the table only the approval role may use.
        pacer=ApproverPacer(continuations_table, limit=settings.pushes_per_minute, clock=clock),
        tasks=TaskTokens(boto3.client("stepfunctions")),
        control_table=dynamodb.Table(settings.control_table),
        audit=AuditLog(dynamodb.Table(settings.audit_table), actor=ACTOR),
        invoke_self=_self_invoker(settings.function_name),
        clock=clock,
        sleep=sleep,
    )


_container = threading.local()


def build_service() -> ApprovalService:
    """The service of this Lambda container, built on first use.

    Kept per thread: Lambda runs one invocation per container at a time, but the local stack runs concurrent
    containers as threads of one process, and boto3 resources must not be shared between threads.
    """
    service: ApprovalService | None = getattr(_container, "service", None)
    if service is None:
        service = create_service()
        _container.service = service
    return service


def fail_task_of(event: Any, reason: str) -> bool:
    """Fail the task of `event` when no service can be built (a misconfigured deployment), so that Step Functions
    learns at once rather than at the heartbeat timeout. True if a task token was there to fail."""
    task_token = event.get("task_token") if isinstance(event, dict) else None
    if not isinstance(task_token, str) or not task_token:
        return False
    try:
        TaskTokens(boto3.client("stepfunctions")).fail(task_token, ERROR_FAILED, reason)
    except TaskGone:
        return False
    return True


def reset() -> None:
    """Forget this thread's built service (tests and the local stack change the environment between runs)."""
    _container.service = None
