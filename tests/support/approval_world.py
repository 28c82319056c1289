"""The approval function's surroundings in-process: moto (DynamoDB, KMS, SQS, Step Functions running a real
waitForTaskToken state), a manual clock, and an ApprovalService wired to them.

The state machine hands the task token to an SQS queue instead of a Lambda, with exactly the payload the real
`RequestApproval` state sends (`{task_token, execution_arn, mission_id, approver_sub, request}`), so each test gets a
real execution waiting on a real task token and the very event the approval function would receive. Requests are
planned by the real planner (`aegis.approvals.requests.plan_requests`): `single_request` and `batch_request`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
from pydantic import SecretStr

from aegis.approvals.policy import ApprovalPolicy
from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis.audit import AuditLog, read_trail
from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.models import Risk
from aegis_approval.continuation import ContinuationStore
from aegis_approval.pacing import ApproverPacer
from aegis_approval.service import ACTOR, ApprovalService
from aegis_approval.settings import ApprovalSettings
from aegis_approval.tasks import TaskTokens
from aegis_auth.handoff import HandoffStore
from aegis_auth.oidc import ClientAuthentication, OidcClient
from aegis_local.auth0.clock import ManualClock
from tests.support.changes import ACCOUNT as CHANGE_ACCOUNT
from tests.support.changes import in_moto
from tests.support.moto_account import EXECUTE_STATE_MACHINES, KEEP_DEFAULT_SESSION, MotoSetup
from tests.support.stack import create_declared_tables

ACCOUNT = "123456789012"
REGION = "eu-west-1"
# The waiting state machine runs for real; boto3's default session, which the approval code uses, is kept.
MOTO_SETUP = MotoSetup(REGION, EXECUTE_STATE_MACHINES | KEEP_DEFAULT_SESSION)
# Each table of the approval side, by the name it is created under, and the template's logical id.
TABLES = {
    "Handoff": "HandoffTable",
    "Continuations": "ContinuationsTable",
    "Control": "ControlTable",
    "Audit": "AuditTable",
}


def create_tables() -> dict[str, Any]:
    """The tables as template.yaml declares them, by name."""
    return create_declared_tables(boto3.resource("dynamodb"), TABLES)


def waiting_state_machine(queue_url: str) -> dict[str, Any]:
    return {
        "StartAt": "RequestApproval",
        "States": {
            "RequestApproval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageBody": {
                        "task_token.$": "$$.Task.Token",
                        "execution_arn.$": "$$.Execution.Id",
                        "mission_id.$": "$.mission_id",
                        "approver_sub.$": "$.approver_sub",
                        "request.$": "$.request",
                    },
                },
                "HeartbeatSeconds": 3600,
                "TimeoutSeconds": 7200,  # moto's default for a task is 60 s of wall time
                "End": True,
            }
        },
    }


def single_request(change: ChangeBase, approvers: tuple[str, ...], mission_id: str = "m-test") -> ApprovalRequest:
    """The single request the planner makes for `change` alone, asked of `approvers`."""
    (request,) = plan_requests(mission_id, [change], ApprovalPolicy(approver_subs=approvers, two_person_risk=None))
    if request.approvers != approvers:
        request = request.model_copy(update={"approvers": approvers})
    return request


def batch_request(
    changes: list[ChangeBase], approver: str, mission_id: str = "m-test", review_url_base: str = ""
) -> ApprovalRequest:
    """The one batch the planner makes of `changes` (low or medium risk, one account) for `approver`."""
    policy = ApprovalPolicy(
        approver_subs=(approver,),
        batch_max_risk=Risk.MEDIUM,
        batch_max_changes=100,
        review_url_base=review_url_base,
    )
    (request,) = plan_requests(mission_id, changes, policy)
    assert request.kind == "batch", "the changes do not make one batch"
    return request


def low_risk_detach(*users: str) -> DetachPolicy:
    """A detach-policy change (an `Allow * on *` policy attached to `users`, names a test may make hostile) at low
    risk, so that it can share a batch with others."""
    return in_moto(
        DetachPolicy,
        check_id="iam-admin-policy-attached",
        resource_arn=f"arn:aws:iam::{CHANGE_ACCOUNT}:policy/Everything",
        risk=Risk.LOW,
        before=PolicyAttachments(users=users),
        after=PolicyAttachments(),
    )


class StepFunctions:
    """Executions of a one-state machine that waits for the approval task token."""

    def __init__(self, approver: str = "auth0|approver-1") -> None:
        # The approver an execution asks when the test names none.
        self.approver = approver
        self.sqs = boto3.client("sqs")
        self.sfn = boto3.client("stepfunctions")
        self.queue_url = self.sqs.create_queue(QueueName="approval-tasks")["QueueUrl"]
        self.state_machine_arn = self.sfn.create_state_machine(
            name="approval-under-test",
            definition=json.dumps(waiting_state_machine(self.queue_url)),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/states",
        )["stateMachineArn"]
        self._count = 0

    def start(
        self,
        subject: ChangeBase | ApprovalRequest | dict[str, Any],
        mission_id: str = "m-test",
        approver: str | None = None,
    ) -> dict[str, Any]:
        """Start an execution asking `approver` (by default the request's first, or this machine's) to approve
        `subject` (a change: its single request; a dict: request JSON as is, well-formed or not) and return the
        approval event its task produced (the real task token inside)."""
        if isinstance(subject, dict):
            request_json = subject
        else:
            request = (
                subject
                if isinstance(subject, ApprovalRequest)
                else single_request(subject, (approver or self.approver,), mission_id)
            )
            request_json = request.model_dump(mode="json")
        self._count += 1
        self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=f"{mission_id}-{self._count}",
            input=json.dumps(
                {
                    "mission_id": mission_id,
                    "approver_sub": approver or request_json["approvers"][0],
                    "request": request_json,
                }
            ),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=0).get("Messages", [])
            if messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
                return dict(json.loads(messages[0]["Body"]))
            time.sleep(0.01)
        raise AssertionError("the execution never reached its waitForTaskToken state")

    def finished(self, execution_arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            description = self.sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return dict(description)
            time.sleep(0.01)
        raise AssertionError("the execution is still running")

    def status(self, execution_arn: str) -> str:
        return str(self.sfn.describe_execution(executionArn=execution_arn)["status"])

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return list(self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"])


class RecordingTaskTokens(TaskTokens):
    """The real TaskTokens on moto, remembering which calls were made (not their tokens)."""

    def __init__(self, stepfunctions: Any) -> None:
        super().__init__(stepfunctions)
        self.calls: list[str] = []

    def heartbeat(self, task_token: str) -> None:
        self.calls.append("heartbeat")
        super().heartbeat(task_token)

    def succeed(self, task_token: str, output: Mapping[str, Any]) -> None:
        self.calls.append("success")
        super().succeed(task_token, output)

    def fail(self, task_token: str, error: str, cause: str) -> None:
        self.calls.append(f"failure:{error}")
        super().fail(task_token, error, cause)


@dataclass
class World:
    clock: ManualClock
    tables: dict[str, Any]
    key_id: str
    stepfunctions: StepFunctions
    secret: str
    on_sleep: list[Callable[[float], None]] = field(default_factory=list)
    self_invocations: list[dict[str, str]] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    # How long a requested sleep really lasts (a test can make a timer fire early).
    adjust_sleep: Callable[[float], float] = lambda seconds: seconds

    def sleep(self, seconds: float) -> None:
        seconds = self.adjust_sleep(seconds)
        self.slept.append(seconds)
        self.clock.advance(seconds)
        for hook in list(self.on_sleep):
            hook(seconds)

    def settings(
        self, issuer: str, client_id: str, audience: str, approver_sub: str, **overrides: Any
    ) -> ApprovalSettings:
        values: dict[str, Any] = {
            "handoff_table": "Handoff",
            "continuations_table": "Continuations",
            "handoff_key_id": self.key_id,
            "control_table": "Control",
            "audit_table": "Audit",
            "issuer": issuer,
            "client_id": client_id,
            "client_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:unused",
            "audience": audience,
            # One approver, so no two-person rule: the tests of one approval are about any change. The rule's own
            # tests give a policy of their own.
            "policy": ApprovalPolicy(approver_subs=(approver_sub,), two_person_risk=None),
            "scope": ("openid",),
            "requested_expiry": 300,
            "client_auth_method": "client_secret_post",
            "function_name": "aegis-approval",
        }
        values.update(overrides)
        return ApprovalSettings(**values)

    def environment(
        self, issuer: str, client_id: str, audience: str, approver_sub: str, secret_arn: str, **overrides: str
    ) -> dict[str, str]:
        """The approval function's environment as template.yaml sets it, on this world's tables and key."""
        values = {
            "HANDOFF_TABLE": "Handoff",
            "CONTINUATIONS_TABLE": "Continuations",
            "HANDOFF_KEY_ID": self.key_id,
            "CONTROL_TABLE": "Control",
            "AUDIT_TABLE": "Audit",
            "AUTH0_ISSUER": issuer,
            "AUTH0_CLIENT_ID": client_id,
            "AUTH0_CLIENT_SECRET_ARN": secret_arn,
            "AUTH0_AUDIENCE": audience,
            "APPROVER_SUBS": approver_sub,
            "APPROVAL_TWO_PERSON_RISK": "none",
            "CIBA_SCOPE": "openid",
            "CIBA_REQUESTED_EXPIRY": "300",
            "CLIENT_AUTH_METHOD": "client_secret_post",
            "APPROVAL_FUNCTION_NAME": "aegis-approval",
        }
        return values | overrides

    def service(
        self,
        settings: ApprovalSettings,
        http: httpx.Client,
        *,
        tasks: TaskTokens | None = None,
        invoke_self: Callable[[dict[str, str]], None] | None = None,
    ) -> ApprovalService:
        auth = ClientAuthentication(settings.client_id, settings.client_auth_method, lambda: SecretStr(self.secret))
        return ApprovalService(
            settings,
            oidc=OidcClient(settings.issuer, auth, http=http, clock=self.clock),
            handoffs=HandoffStore(self.tables["Handoff"], boto3.client("kms"), key_id=self.key_id, clock=self.clock),
            continuations=ContinuationStore(self.tables["Continuations"], clock=self.clock),
            pacer=ApproverPacer(self.tables["Continuations"], limit=settings.pushes_per_minute, clock=self.clock),
            tasks=tasks or RecordingTaskTokens(self.stepfunctions.sfn),
            control_table=self.tables["Control"],
            audit=AuditLog(self.tables["Audit"], actor=ACTOR),
            invoke_self=invoke_self or self.self_invocations.append,
            clock=self.clock,
            sleep=self.sleep,
        )

    def lambda_time(self, seconds: float) -> Callable[[], float]:
        """A Lambda remaining-time function: `seconds` from now on the manual clock."""
        ends_at = self.clock() + seconds
        return lambda: ends_at - self.clock()

    def halt(self) -> None:
        self.tables["Control"].put_item(
            Item={"name": "halt", "engaged": True, "engaged_at": "now", "engaged_by": "test"}
        )

    def pace_items(self) -> list[dict[str, Any]]:
        return [item for item in self.tables["Continuations"].scan()["Items"] if item.get("kind") == "pace"]

    def sealed_handoffs(self) -> list[dict[str, Any]]:
        items = self.tables["Handoff"].scan()["Items"]
        return [item for item in items if item.get("kind") == "approval"]

    def audit_trail(self, mission_id: str = "m-test") -> list[dict[str, Any]]:
        return read_trail(self.tables["Audit"], mission_id)
