"""What the auth layer costs a cold start: the client secret is read through boto3's default session (no session
of its own, which would load the endpoint rules and service data again), and a handoff store can share the
function's DynamoDB resource."""

from __future__ import annotations

from typing import Any

import boto3
import boto3.session
import pytest

from aegis_auth.oidc import clear_caches, load_client_secret

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def opened_sessions(monkeypatch: pytest.MonkeyPatch) -> list[boto3.session.Session]:
    """Every boto3 Session created from now on, once the function has clients of the default session."""
    boto3.client("dynamodb")
    opened: list[boto3.session.Session] = []
    original = boto3.session.Session.__init__

    def counting(self: boto3.session.Session, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", counting)
    return opened


@pytest.fixture
def secret_arn() -> str:
    return str(boto3.client("secretsmanager").create_secret(Name="aegis/cold", SecretString="cold-secret")["ARN"])


def test_reading_the_client_secret_opens_no_boto3_session_of_its_own(
    secret_arn: str, opened_sessions: list[boto3.session.Session]
) -> None:
    assert load_client_secret(secret_arn, max_age=0).get_secret_value() == "cold-secret"
    clear_caches()  # what the local stack does when endpoints change: the next read builds its client again
    assert load_client_secret(secret_arn, max_age=0).get_secret_value() == "cold-secret"
    assert opened_sessions == []
