"""The Lambda handler end to end on moto: wired from the template's environment, it answers the real task token and
leaves no credential in logs, audit items, task output or execution history."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

import aegis_approval.wiring as wiring
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE
from tests.support import planted_secrets
from tests.support.approval_plans import variants
from tests.support.approval_world import World, batch_request, low_risk_detach
from tests.support.changes import one_of_each_kind
from tests.support.lambda_app import load_app
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble, oauth_error

APPROVER = "auth0|approver-1"
CHANGE = one_of_each_kind()[2]


@dataclass
class FakeContext:
    """The parts of the Lambda context Powertools and the handler read."""

    remaining_seconds: float
    function_name: str = "aegis-approval"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:aegis-approval"
    aws_request_id: str = "req-0001"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)


def invoke(app: ModuleType, event: Any, remaining_seconds: float = 900) -> Any:
    # Powertools keeps one stream handler per service name for the whole process, bound to the sys.stdout of the
    # first test; point it at this test's captured stdout (not setStream: that flushes the stale, closed stream).
    app.logger.logger_handler.stream = sys.stdout
    return app.handler(event, FakeContext(remaining_seconds=remaining_seconds))


@pytest.fixture
def provider(world: World) -> ProviderDouble:
    return ProviderDouble(clock=world.clock)


@pytest.fixture
def app(world: World, provider: ProviderDouble, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    secret_arn = boto3.client("secretsmanager").create_secret(Name="auth0-client", SecretString=world.secret)["ARN"]
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "aegis-approval",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        **world.environment(
            provider.issuer, CLIENT_ID, AUDIENCE, APPROVER, secret_arn, CLIENT_AUTH_METHOD="client_secret_basic"
        ),
    }.items():
        monkeypatch.setenv(name, value)
    # The container's service, built from the environment as in Lambda, on the test's clock and provider.
    service = wiring.create_service(clock=world.clock, sleep=world.sleep, http=provider.client())
    monkeypatch.setattr(wiring, "build_service", lambda: service)
    module = load_app("approval")
    handler = module.logger.logger_handler
    found = handler.stream
    yield module
    # `invoke` bound the service's handler (one per process) to this test's captured stdout, which pytest closes:
    # hand it back as found, so that no later test on this worker inherits a closed stream.
    handler.stream = found


def test_the_handler_approves_and_nothing_secret_is_logged_audited_or_output(
    world: World,
    provider: ProviderDouble,
    app: ModuleType,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Our loggers at DEBUG, libraries at INFO: botocore's own DEBUG wire dumps are off in Lambda, and they print
    # every request body (task tokens included) whoever the caller.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="aegis-approval")
    event = world.stepfunctions.start(CHANGE)

    def approve(double: ProviderDouble, _: object) -> tuple[int, Any, dict[str, str]]:
        response = double.token_response(APPROVER, digest=CHANGE.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE)
        # Not asked for (the scope is openid), issued all the same: it must go nowhere, the handoff included.
        response["refresh_token"] = "refresh-" + uuid.uuid4().hex * 2
        double.issued.add(response["refresh_token"])
        return 200, response, {}

    provider.token_script.extend([oauth_error(400, "authorization_pending"), approve])
    result = invoke(app, event)
    assert result == {"outcome": "approved"}

    execution = world.stepfunctions.finished(event["execution_arn"])
    assert execution["status"] == "SUCCEEDED"
    opened = HandoffStore(world.tables["Handoff"], boto3.client("kms"), clock=world.clock).consume(
        json.loads(execution["output"])["handoffs"][CHANGE.change_id],
        execution_arn=event["execution_arn"],
        change_digest=CHANGE.digest,
    )
    assert set(opened.token_response) == {
        "access_token",
        "id_token",
        "token_type",
        "expires_in",
        "authorization_details",
    }
    assert json.loads(world.audit_trail()[-1]["details"])["refresh_token_discarded"] is True
    basic = provider.requests_to("/bc-authorize")[0].headers["authorization"]
    assert basic.startswith("Basic ")

    auth_req_id = provider.requests_to("/oauth/token")[0].form["auth_req_id"]
    secrets = {*provider.issued, world.secret, auth_req_id, basic.split()[1]}
    output = capsys.readouterr()
    records = json.dumps([record.__dict__ for record in caplog.records], default=str)
    logged = output.out + output.err + caplog.text + records
    assert "approval requested" in logged
    assert "approval granted and sealed" in logged
    surfaces = {
        "logs": logged,
        "audit": json.dumps(world.audit_trail(), default=str),
        "task output": execution["output"],
        "history": json.dumps(world.stepfunctions.history(event["execution_arn"]), default=str),
        "result": json.dumps(result),
    }
    for surface, text in surfaces.items():
        for secret in secrets:
            assert secret not in text, f"a secret reached the {surface}"
        # Step Functions itself records the task token it handed out; nothing of ours may repeat it.
        if surface != "history":
            assert event["task_token"] not in text, f"the task token reached the {surface}"


def test_the_handler_names_an_event_it_cannot_answer_and_does_not_raise(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(app, {"hello": "world"}) == {"outcome": "rejected_event"}
    assert "rejected an event that is not an approval task" in capsys.readouterr().out


def test_a_denial_through_the_handler_emits_a_metric_with_its_outcome(
    world: World, provider: ProviderDouble, app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    event = world.stepfunctions.start(CHANGE)
    provider.token_script.append(oauth_error(400, "access_denied"))
    assert invoke(app, event) == {"outcome": "denied"}
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["ApprovalInvocations"] for m in metrics if m.get("outcome") == "denied"] == [[1.0]]


def fails_as_misconfigured(world: World, app: ModuleType, monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """With these settings no service can be built from the environment: the task fails at once, not at the
    heartbeat timeout."""
    monkeypatch.setattr(wiring, "build_service", wiring.create_service)  # build from the environment for real
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    event = world.stepfunctions.start(CHANGE)
    assert invoke(app, event) == {"outcome": "misconfigured"}
    execution = world.stepfunctions.finished(event["execution_arn"])
    assert (execution["status"], execution["error"]) == ("FAILED", "Approval.Failed")


def test_a_misconfigured_deployment_fails_the_task_at_once(
    world: World, app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fails_as_misconfigured(world, app, monkeypatch, CIBA_REQUESTED_EXPIRY="3600")
    # Plain http off loopback.
    fails_as_misconfigured(world, app, monkeypatch, CIBA_REQUESTED_EXPIRY="300", AUTH0_ISSUER="http://idp.example.com/")


def test_a_deployment_asking_for_refresh_tokens_never_starts_an_approval(
    world: World,
    provider: ProviderDouble,
    app: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fails_as_misconfigured(world, app, monkeypatch, CIBA_SCOPE="openid offline_access")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (logged,) = [line for line in lines if line.get("message") == "the approval function is misconfigured"]
    assert logged["reason"] == "CIBA_SCOPE must not contain offline_access: no refresh token may cross the hand-off"
    assert provider.requests == []  # no push, no token request


def test_a_batch_through_the_handler_leaves_nothing_secret_in_logs_audit_or_output(
    world: World,
    provider: ProviderDouble,
    app: ModuleType,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="aegis-approval")
    planted_name = planted_secrets.access_key_id()
    changes = [low_risk_detach(planted_name), *variants("enable-kms-key-rotation", 4)]
    request = batch_request(changes, APPROVER)
    event = world.stepfunctions.start(request)

    def approve(double: ProviderDouble, _: object) -> tuple[int, Any, dict[str, str]]:
        asked = json.loads(double.requests_to("/bc-authorize")[-1].form["authorization_details"])
        response = double.token_response(APPROVER, digest=None, details_type="", authorization_details=asked)
        response["refresh_token"] = "refresh-" + uuid.uuid4().hex * 2
        double.issued.add(response["refresh_token"])
        return 200, response, {}

    provider.token_script.extend([oauth_error(400, "authorization_pending"), approve])
    result = invoke(app, event)
    assert result == {"outcome": "approved"}

    execution = world.stepfunctions.finished(event["execution_arn"])
    output = json.loads(execution["output"])
    assert set(output) == {"decision", "approver_sub", "approved_at", "handoffs"}
    assert len(world.sealed_handoffs()) == len(changes)
    auth_req_id = provider.requests_to("/oauth/token")[0].form["auth_req_id"]
    secrets = {*provider.issued, world.secret, auth_req_id}
    output_text = capsys.readouterr()
    records = json.dumps([record.__dict__ for record in caplog.records], default=str)
    logged = output_text.out + output_text.err + caplog.text + records
    assert "approval granted and sealed" in logged
    surfaces = {
        "logs": logged,
        "audit": json.dumps(world.audit_trail(), default=str),
        "task output": execution["output"],
        "history": json.dumps(world.stepfunctions.history(event["execution_arn"]), default=str),
        "result": json.dumps(result),
    }
    for surface, text in surfaces.items():
        for secret in secrets:
            assert secret not in text, f"a secret reached the {surface}"
        if surface != "history":
            assert event["task_token"] not in text, f"the task token reached the {surface}"
            # The credential-shaped resource name travels in the request itself (the history), nowhere of ours.
            assert planted_name not in text, f"a credential-shaped name reached the {surface}"
