"""The executor under test: its real handler (app.py, loaded by path) against moto in-process and the Auth0 emulator
on 127.0.0.1. Approvals are real CIBA approvals of the emulator (of one change, or of a batch under its Merkle root),
sealed with the real handoff code, exactly as the approval half leaves them for the executor: one handoff per change,
and the approval result `{decision, approver_sub, approved_at, handoffs: {change_id: handoff_id}}` per approver.

Shared by the executor's integration tests and the validator's, whose conftest.py files take the fixtures with
`import *`."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
from jose import jwt

from aegis.approvals.merkle import inclusion_proof, merkle_root
from aegis.approvals.requests import ApprovalRequest
from aegis.catalogue import ChangeBase
from aegis.control import HALT_ITEM
from aegis.models import Risk
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import (
    AEGIS_BATCH_DETAILS_TYPE,
    batch_authorization_details,
    batch_binding_message,
    change_authorization_details,
)
from aegis_executor import execute as execute_module
from aegis_executor.approval import approvers_needed
from aegis_local.auth0 import (
    CIBA_GRANT,
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVAL_CLIENT_ID,
    DEFAULT_APPROVER_SUB,
    DEFAULT_CONNECTION,
    DEFAULT_EXECUTOR_CLIENT_ID,
    DEFAULT_SECOND_USER_SUB,
    DEFAULT_UNDO_CONNECTION,
    Auth0Emulator,
    EmulatorConfig,
)
from tests.support.action_recorder import ActionRecorder
from tests.support.changes import ACCOUNT
from tests.support.changes import CASE_REGION as REGION
from tests.support.lambda_app import load_app
from tests.support.stack import create_declared_tables

# What a folder's conftest.py takes with `import *`: the fixtures.
__all__ = ["emulator", "emulator_clock", "emulator_http", "world"]

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/RemediationRole"
# The template's default (ApprovalTwoPersonRisk): a change at or above it is approved by two distinct approvers here,
# the first of whom has the Token Vault account the executor exchanges through.
TWO_PERSON_RISK = Risk.HIGH
SECOND_APPROVER_SUB = DEFAULT_SECOND_USER_SUB
UNDO_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/UndoRole"
SERVICE = "aegis-executor"
# The executor's tables, by the name each is created under, and the template's logical id.
TABLES = {
    "Control": "ControlTable",
    "Audit": "AuditTable",
    "Handoff": "HandoffTable",
    "Idempotency": "IdempotencyTable",
}


class ShiftableClock:
    """Wall-clock time, except while a test asks for a request to look older (to pass the CIBA interval at once)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="session")
def emulator_clock() -> ShiftableClock:
    return ShiftableClock()


@pytest.fixture(scope="session")
def emulator(emulator_clock: ShiftableClock) -> Iterator[Auth0Emulator]:
    default = EmulatorConfig.default()
    # The Aegis API accepts the batch RAR type beside the change type (whether or not the default tenant has it yet).
    servers = tuple(
        server.model_copy(
            update={
                "authorization_details_types": tuple(
                    dict.fromkeys((*server.authorization_details_types, AEGIS_BATCH_DETAILS_TYPE))
                )
            }
        )
        if server.identifier == DEFAULT_API_AUDIENCE
        else server
        for server in default.resource_servers
    )
    config = default.model_copy(
        update={
            "ciba_interval_seconds": 1,
            "ciba_requests_per_user_per_minute": 100_000,
            "ciba_requests_per_tenant_per_minute": 100_000,
            "resource_servers": servers,
        }
    )
    with Auth0Emulator(config, clock=emulator_clock) as running:
        yield running


@pytest.fixture(scope="session")
def emulator_http(emulator: Auth0Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.issuer, timeout=5) as client:
        yield client


def ciba_token_response(
    emulator: Auth0Emulator,
    http: httpx.Client,
    clock: ShiftableClock,
    change: ChangeBase | None,
    sub: str = DEFAULT_APPROVER_SUB,
    scope: str = "openid",
    *,
    authorization_details: list[dict[str, Any]] | None = None,
    binding_message: str | None = None,
) -> dict[str, Any]:
    """A real CIBA approval of `change` by `sub` on the emulator (request, approve on the phone, poll), asked with the
    approval function's scope unless a test asks for another; or, given `authorization_details` and
    `binding_message` instead of a change, of whatever they describe (a batch)."""
    if change is not None:
        authorization_details = change_authorization_details(change)
        binding_message = change.binding_message()
    assert authorization_details is not None, "a change, or authorization_details and a binding message"
    assert binding_message is not None
    secret = emulator.client_secret(DEFAULT_APPROVAL_CLIENT_ID)
    client = {"client_id": DEFAULT_APPROVAL_CLIENT_ID, "client_secret": secret}
    clock.offset = -1.0  # the request looks one interval old, so the first poll is allowed
    try:
        started = http.post(
            "bc-authorize",
            data={
                **client,
                "scope": scope,
                "login_hint": json.dumps({"format": "iss_sub", "iss": emulator.issuer, "sub": sub}),
                "binding_message": binding_message,
                "audience": DEFAULT_API_AUDIENCE,
                "authorization_details": json.dumps(authorization_details),
            },
        )
    finally:
        clock.offset = 0.0
    assert started.status_code == 200, started.text
    auth_req_id = started.json()["auth_req_id"]
    emulator.approve(auth_req_id)
    polled = http.post("oauth/token", data={**client, "grant_type": CIBA_GRANT, "auth_req_id": auth_req_id})
    assert polled.status_code == 200, polled.text
    return dict(polled.json())


class LambdaContext:
    """What Powertools reads from the Lambda context object."""

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.function_name = "ExecutorFunction"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ExecutorFunction"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.time() * 1000 + remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline - time.time() * 1000))


@dataclass(frozen=True)
class Batch:
    """A batch as the validator plans it (canonical leaf order, a proof per change) and its approver's approval."""

    request: ApprovalRequest
    approval: dict[str, Any]

    @property
    def root(self) -> str:
        assert self.request.root is not None
        return self.request.root

    def proof(self, change: ChangeBase) -> dict[str, Any]:
        for item in self.request.items:
            if item.change["change_id"] == change.change_id:
                assert item.proof is not None
                return dict(item.proof)
        raise KeyError(change.change_id)


def batch_request(changes: list[ChangeBase], sub: str = DEFAULT_APPROVER_SUB) -> ApprovalRequest:
    """The batch request the planner makes of `changes` (request r001, one approver)."""
    digests = [change.digest for change in changes]
    ordered = sorted(changes, key=lambda change: change.digest)
    return ApprovalRequest.model_validate(
        {
            "request_id": "r001",
            "kind": "batch",
            "approvers": [sub],
            "root": merkle_root(digests),
            "review_url": None,
            "items": [
                {"change": change.model_dump(mode="json"), "proof": inclusion_proof(digests, change.digest).as_json()}
                for change in ordered
            ],
        }
    )


def approval_outcome(approval: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """The `approval` of an executor request: one approver's answer, several (in order), or an outcome as it is."""
    if isinstance(approval, dict) and "approvals" in approval:
        return approval
    return {"decision": "approved", "approvals": [approval] if isinstance(approval, dict) else list(approval)}


def handoff_of(approval: dict[str, Any] | list[dict[str, Any]], change: ChangeBase) -> str:
    """The handoff the (first) approver's answer names for `change`."""
    first = approval_outcome(approval)["approvals"][0]
    return str(first["handoffs"][change.change_id])


@dataclass
class World:
    emulator: Auth0Emulator
    clock: ShiftableClock
    http: httpx.Client
    app: ModuleType
    tables: dict[str, Any]
    handoffs: HandoffStore
    log_stream: io.StringIO
    remediation_calls: list[str] = field(default_factory=list)
    sts_calls: list[dict[str, Any]] = field(default_factory=list)
    # Credentials STS handed out during the test: they must never be found anywhere afterwards.
    issued_aws_secrets: set[str] = field(default_factory=set)
    execution_arn: str = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:aegis-mission:m-1"
    mission_id: str = "m-1"

    # --- approvals ----------------------------------------------------------------------------------------------
    def ciba_token_response(
        self, change: ChangeBase, sub: str = DEFAULT_APPROVER_SUB, scope: str = "openid"
    ) -> dict[str, Any]:
        """A real CIBA approval of one change (its aegis-change RAR)."""
        return ciba_token_response(self.emulator, self.http, self.clock, change, sub, scope)

    def seal(
        self,
        token_response: dict[str, Any],
        change: ChangeBase,
        *,
        sub: str = DEFAULT_APPROVER_SUB,
        execution_arn: str | None = None,
    ) -> dict[str, Any]:
        """Seal a token response as the approval function does; that approver's answer to the state machine."""
        return self.seal_each(token_response, [change], sub=sub, execution_arn=execution_arn)

    def seal_each(
        self,
        token_response: dict[str, Any],
        changes: list[ChangeBase],
        *,
        sub: str = DEFAULT_APPROVER_SUB,
        execution_arn: str | None = None,
    ) -> dict[str, Any]:
        """One handoff per change, each bound to its change's digest, all holding the same token response (a batch)."""
        handoffs = {
            change.change_id: self.handoffs.seal(
                token_response,
                execution_arn=execution_arn or self.execution_arn,
                change_id=change.change_id,
                change_digest=change.digest,
                approver_sub=sub,
                expires_at=int(time.time()) + 600,
            )
            for change in changes
        }
        return {
            "decision": "approved",
            "approver_sub": sub,
            "approved_at": datetime.now(UTC).isoformat(),
            "handoffs": handoffs,
        }

    def approve(
        self, change: ChangeBase, sub: str = DEFAULT_APPROVER_SUB, second: str = SECOND_APPROVER_SUB
    ) -> list[dict[str, Any]]:
        """The approvals the state machine would carry for `change`: `sub`'s, and `second`'s too when the change's risk
        needs two distinct approvers (`sub` first: the executor exchanges the first approver's token)."""
        approvers = (sub,) if approvers_needed(change, TWO_PERSON_RISK) == 1 else (sub, second)
        return [self.approve_one(change, who) for who in approvers]

    def approve_one(self, change: ChangeBase, sub: str = DEFAULT_APPROVER_SUB) -> dict[str, Any]:
        """One approver's approval of `change` (a real CIBA approval, sealed)."""
        return self.seal(self.ciba_token_response(change, sub), change, sub=sub)

    def batch_token_response(self, request: ApprovalRequest, sub: str = DEFAULT_APPROVER_SUB) -> dict[str, Any]:
        """A real CIBA approval of a batch: the batch RAR (its Merkle root) and binding message, as the approval
        function asks for them."""
        return ciba_token_response(
            self.emulator,
            self.http,
            self.clock,
            None,
            sub,
            authorization_details=batch_authorization_details(self.mission_id, request),
            binding_message=batch_binding_message(request),
        )

    def approve_batch(self, changes: list[ChangeBase], sub: str = DEFAULT_APPROVER_SUB) -> Batch:
        """A batch of `changes` approved with one tap, and a handoff sealed for each of its changes."""
        request = batch_request(changes, sub)
        token_response = self.batch_token_response(request, sub)
        return Batch(request=request, approval=self.seal_each(token_response, request.changes(), sub=sub))

    def payload(
        self,
        change: ChangeBase,
        approval: dict[str, Any] | list[dict[str, Any]],
        execution_arn: str | None = None,
        proof: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "execution_arn": execution_arn or self.execution_arn,
            "mission_id": self.mission_id,
            "change": change.model_dump(mode="json"),
            "proof": proof,
            "approval": approval_outcome(approval),
        }

    def batch_payload(self, change: ChangeBase, batch: Batch) -> dict[str, Any]:
        """The execution of one change of `batch`, as the state machine's Map over the batch's items sends it."""
        return self.payload(change, batch.approval, proof=batch.proof(change))

    # --- the function -------------------------------------------------------------------------------------------
    def invoke(self, payload: dict[str, Any], remaining_ms: int = 60_000) -> dict[str, Any]:
        return self.app.handler(payload, LambdaContext(remaining_ms))  # type: ignore[no-any-return]

    # --- what happened ------------------------------------------------------------------------------------------
    def audit(self, action: str | None = None) -> list[dict[str, Any]]:
        items = self.tables["audit"].scan()["Items"]
        items.sort(key=lambda item: item["seq"])
        return [
            {**item, "details": json.loads(item["details"])}
            for item in items
            if action is None or item["action"] == action
        ]

    def handoff_exists(self, handoff_id: str) -> bool:
        return "Item" in self.tables["handoff"].get_item(Key={"handoff_id": handoff_id})

    def halt(self) -> None:
        self.tables["control"].put_item(
            Item={"name": HALT_ITEM, "engaged": True, "engaged_at": "now", "engaged_by": "test"}
        )

    def mutating_calls(self) -> list[str]:
        return [c for c in self.remediation_calls if not c.split(":")[1].startswith(("Describe", "Get", "List"))]

    def every_stored_item(self) -> str:
        return json.dumps([table.scan()["Items"] for table in self.tables.values()], default=str)


@pytest.fixture
def world(
    aws: boto3.Session,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Auth0Emulator,
    emulator_clock: ShiftableClock,
    emulator_http: httpx.Client,
) -> World:
    monkeypatch.delenv("POWERTOOLS_IDEMPOTENCY_DISABLED", raising=False)
    base_env = {
        "POWERTOOLS_SERVICE_NAME": SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in base_env.items():
        monkeypatch.setenv(name, value)
    created = create_declared_tables(boto3.resource("dynamodb", region_name=REGION), TABLES)
    tables = {name.lower(): table for name, table in created.items()}
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="handoff key")["KeyMetadata"]["KeyId"]
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="auth0-executor-client-secret", SecretString=emulator.client_secret(DEFAULT_EXECUTOR_CLIENT_ID)
    )["ARN"]
    boto3.client("iam", region_name=REGION).create_role(
        RoleName="RemediationRole",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": emulator.provider_issuer(DEFAULT_CONNECTION)},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                    }
                ],
            }
        ),
    )
    for name, value in {
        "CONTROL_TABLE": "Control",
        "AUDIT_TABLE": "Audit",
        "HANDOFF_TABLE": "Handoff",
        "IDEMPOTENCY_TABLE": "Idempotency",
        "AUTH0_ISSUER": emulator.issuer,
        "AUTH0_CLIENT_ID": DEFAULT_EXECUTOR_CLIENT_ID,
        "APPROVAL_CLIENT_ID": DEFAULT_APPROVAL_CLIENT_ID,
        "AUTH0_CLIENT_SECRET_ARN": secret_arn,
        "AUTH0_AUDIENCE": DEFAULT_API_AUDIENCE,
        "CLIENT_AUTH_METHOD": "client_secret_post",
        "TOKEN_VAULT_CONNECTION": DEFAULT_CONNECTION,
        "REMEDIATION_ROLE_ARN": ROLE_ARN,
        "UNDO_ROLE_ARN": UNDO_ROLE_ARN,
        "UNDO_TOKEN_VAULT_CONNECTION": DEFAULT_UNDO_CONNECTION,
        "APPROVAL_TWO_PERSON_RISK": TWO_PERSON_RISK.value,
    }.items():
        monkeypatch.setenv(name, value)
    log_stream = io.StringIO()
    app = load_app("executor")
    for handler in logging.getLogger(SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler):
            # Not setStream(): it flushes the old stream first, and an earlier test's captured stream may be closed.
            handler.stream = log_stream
    world = World(
        emulator=emulator,
        clock=emulator_clock,
        http=emulator_http,
        app=app,
        tables=tables,
        handoffs=HandoffStore(tables["handoff"], kms, key_id=key_id),
        log_stream=log_stream,
    )
    _observe(world, monkeypatch)
    return world


def _observe(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record every AWS call of each remediation session and what went to and came from STS (never the token)."""
    original = execute_module.assume_remediation_role

    def observed(*args: Any, **kwargs: Any) -> Any:
        session, facts = original(*args, **kwargs)
        recorder = ActionRecorder(session)
        recorder.actions = world.remediation_calls
        return session, facts

    monkeypatch.setattr(execute_module, "assume_remediation_role", observed)
    sts = world.app.executor().sts

    def before(params: dict[str, Any], **_: Any) -> None:
        token = params["WebIdentityToken"]
        world.sts_calls.append(
            {
                **{k: v for k, v in params.items() if k != "WebIdentityToken"},
                "token_claims": jwt.get_unverified_claims(token),
            }
        )

    def after(parsed: dict[str, Any], **_: Any) -> None:
        credentials = parsed.get("Credentials", {})
        world.issued_aws_secrets.update(
            credentials[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken") if k in credentials
        )

    sts.meta.events.register("provide-client-params.sts.AssumeRoleWithWebIdentity", before)
    sts.meta.events.register("after-call.sts.AssumeRoleWithWebIdentity", after)
