"""The approval Lambda handler against the Auth0 emulator over real HTTP, with moto in-process (DynamoDB, KMS,
Secrets Manager, Lambda, SQS, and Step Functions running a real execution that waits on the task token).

Time is the emulator's manual clock: the approval function's sleeper advances it, and the phone acts on it, so a
five-minute approval window passes in milliseconds.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

import aegis_approval.wiring as wiring
from aegis_auth.oidc import clear_caches
from aegis_local.auth0 import Auth0Emulator, ManualClock
from aegis_local.auth0.config import (
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVAL_CLIENT_ID,
    DEFAULT_APPROVER_SUB,
    EmulatorConfig,
)
from aegis_local.aws.moto_fixes import StepFunctionsFixes
from tests.support.approval_world import MOTO_SETUP, REGION, StepFunctions, World, create_tables
from tests.support.lambda_app import load_app
from tests.support.moto_account import MotoSetup

APPROVER = DEFAULT_APPROVER_SUB
CLIENT_ID = DEFAULT_APPROVAL_CLIENT_ID
AUDIENCE = DEFAULT_API_AUDIENCE


@pytest.fixture
def moto_setup() -> MotoSetup:
    return MOTO_SETUP


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def emulator(clock: ManualClock) -> Iterator[Auth0Emulator]:
    with Auth0Emulator(EmulatorConfig.default(), clock=clock) as running:
        yield running


@pytest.fixture(autouse=True)
def _isolated(clock: ManualClock) -> Iterator[None]:
    # Expire every earlier CIBA request and empty the per-minute windows, so tests do not interact.
    clock.advance(301)
    clear_caches()
    wiring.reset()
    yield
    clear_caches()
    wiring.reset()


@dataclass
class Phone:
    """The approver's Guardian app: acts on the pending request once the clock reaches `act_at`."""

    emulator: Auth0Emulator
    clock: ManualClock
    action: str = "nothing"  # "approve", "deny" or "nothing"
    act_at: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def approve_after(self, seconds: float) -> None:
        self.action, self.act_at = "approve", self.clock() + seconds

    def deny_after(self, seconds: float) -> None:
        self.action, self.act_at = "deny", self.clock() + seconds

    def tick(self, _: float = 0.0) -> None:
        pending = self.emulator.pending(APPROVER)
        self.seen.extend(p for p in pending if p["auth_req_id"] not in {s["auth_req_id"] for s in self.seen})
        if self.action == "nothing" or self.clock() < self.act_at:
            return
        for request in pending:
            if self.action == "approve":
                self.emulator.approve(request["auth_req_id"])
            else:
                self.emulator.deny(request["auth_req_id"])


@dataclass
class FakeContext:
    ends_at: float
    clock: ManualClock
    function_name: str = "aegis-approval"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:aegis-approval"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends_at - self.clock()) * 1000)


@dataclass
class Stack:
    world: World
    emulator: Auth0Emulator
    phone: Phone
    app: ModuleType
    http: httpx.Client
    polls: list[tuple[float, str]]
    lambda_invocations: list[dict[str, Any]]
    secret_arn: str

    def invoke(self, event: dict[str, Any], lambda_seconds: float = 900.0) -> Any:
        self.app.logger.logger_handler.stream = sys.stdout  # see tests/unit/approval/test_approval_handler.py
        context = FakeContext(ends_at=self.world.clock() + lambda_seconds, clock=self.world.clock)
        return self.app.handler(event, context)

    def token_polls(self) -> list[float]:
        return [at for at, path in self.polls if path == "/oauth/token"]


@pytest.fixture
def make_stack(
    aws: boto3.Session, emulator: Auth0Emulator, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Stack]]:
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "aegis-approval",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    lambda_invocations: list[dict[str, Any]] = []

    def capture_invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        lambda_invocations.append(
            {"function_name": function_name, "type": headers.get("X-Amz-Invocation-Type"), "payload": body}
        )
        return b""

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", capture_invoke)
    # As tests/unit/approval does: without the local stack's Step Functions fixes, a heartbeat the handler sends
    # before moto's interpreter has set up the task's heartbeat watch is refused with TaskTimedOut, and the handler
    # stops as if its token were no longer awaited ("abandoned"); on AWS the heartbeat is accepted. Under a loaded
    # machine that window is wide enough to be hit (a full `make test` run did).
    StepFunctionsFixes.install()
    clients: list[httpx.Client] = []
    handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def build(
        *,
        transport: httpx.BaseTransport | None = None,
        requested_expiry: int = 300,
        auth_method: str = "client_secret_post",
    ) -> Stack:
        key_id = str(boto3.client("kms").create_key(Description="handoff")["KeyMetadata"]["KeyId"])
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name=f"auth0-client-{uuid.uuid4().hex[:6]}", SecretString=emulator.client_secret(CLIENT_ID)
        )["ARN"]
        world = World(
            clock=clock,
            tables=create_tables(),
            key_id=key_id,
            stepfunctions=StepFunctions(approver=APPROVER),
            secret=emulator.client_secret(CLIENT_ID),
        )
        environment = world.environment(
            emulator.issuer,
            CLIENT_ID,
            AUDIENCE,
            APPROVER,
            secret_arn,
            CIBA_REQUESTED_EXPIRY=str(requested_expiry),
            CLIENT_AUTH_METHOD=auth_method,
        )
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        polls: list[tuple[float, str]] = []

        def record(request: httpx.Request) -> None:
            polls.append((clock(), request.url.path))

        http = httpx.Client(timeout=5, transport=transport, event_hooks={"request": [record]})
        clients.append(http)
        phone = Phone(emulator, clock)
        world.on_sleep.append(phone.tick)
        service = wiring.create_service(clock=clock, sleep=world.sleep, http=http)
        monkeypatch.setattr(wiring, "build_service", lambda: service)
        app = load_app("approval")
        handlers.append((app.logger.logger_handler, app.logger.logger_handler.stream))
        return Stack(world, emulator, phone, app, http, polls, lambda_invocations, secret_arn)

    yield build
    # Stack.invoke bound the service's handler (one per process) to the test's captured stdout, which pytest
    # closes: hand it back as found, so that no later test on this worker inherits a closed stream.
    for handler, found in reversed(handlers):
        handler.stream = found
    for http in clients:
        http.close()
    StepFunctionsFixes.uninstall()
