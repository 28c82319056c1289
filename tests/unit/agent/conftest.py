"""A fresh moto account per test with the agent's tables and a state machine to start."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.agent.agent_world import REGION, create_state_machine, create_tables


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def tables(aws: boto3.Session) -> dict[str, Any]:
    return create_tables(aws)


@pytest.fixture
def sfn(aws: boto3.Session, tables: dict[str, Any]) -> Any:
    return create_state_machine(aws)
