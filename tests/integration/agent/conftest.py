"""The seeded vulnerable account in moto (in-process), the agent's tables and a state machine, and the agent's
environment as the template sets it. The agent runs with the layer's real scanner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aegis_local.scenario.seed import SeededAccount, seed_account
from tests.unit.agent.agent_world import (
    POWERTOOLS_ENV,
    REGION,
    create_state_machine,
    create_tables,
    env_for,
    settings,
)


@dataclass
class World:
    session: boto3.Session
    tables: dict[str, Any]
    sfn: Any
    seeded: SeededAccount


def agent_environment(**overrides: str) -> dict[str, str]:
    return env_for(settings()) | POWERTOOLS_ENV | overrides


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "TRAIL_BUCKET", "FLOW_LOGS_LOG_GROUP", "FLOW_LOGS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name, value in agent_environment().items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        tables = create_tables(session)
        sfn = create_state_machine(session)
        yield World(session=session, tables=tables, sfn=sfn, seeded=seed_account(session, REGION))
