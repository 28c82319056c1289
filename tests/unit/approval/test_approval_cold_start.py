"""What a cold start of the approval function builds: the service's clients, but not the Lambda client of the
continuation, which only an invocation that runs short of time needs (made once, on its first hand-over)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

import aegis_approval.wiring as wiring
from tests.support.approval_world import World
from tests.support.boto3_calls import services_made
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble


@pytest.fixture
def environment(world: World, monkeypatch: pytest.MonkeyPatch) -> ProviderDouble:
    provider = ProviderDouble(clock=world.clock)
    secret_arn = boto3.client("secretsmanager").create_secret(Name="auth0-client", SecretString=world.secret)["ARN"]
    for name, value in world.environment(provider.issuer, CLIENT_ID, AUDIENCE, "auth0|approver-1", secret_arn).items():
        monkeypatch.setenv(name, value)
    return provider


def test_the_lambda_client_is_made_by_the_first_hand_over_not_with_the_service(
    world: World, environment: ProviderDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = services_made(monkeypatch, "client")
    invoked: list[tuple[str, str, str]] = []

    def accept(
        self: LambdaSimpleBackend, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        invoked.append((function_name, headers.get("X-Amz-Invocation-Type"), body))
        return b""

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", accept)

    service = wiring.create_service(clock=world.clock, sleep=world.sleep, http=environment.client())
    assert "lambda" not in made
    assert {"kms", "stepfunctions"} <= set(made)

    service.invoke_self({"continuation_id": "c-1"})
    service.invoke_self({"continuation_id": "c-2"})
    assert made.count("lambda") == 1
    assert [(name, kind) for name, kind, _ in invoked] == [("aegis-approval", "Event")] * 2
    assert [json.loads(body) for _, _, body in invoked] == [{"continuation_id": "c-1"}, {"continuation_id": "c-2"}]
