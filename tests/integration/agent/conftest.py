"""The seeded vulnerable account in moto (in-process), the agent's tables and a state machine, and the agent's
environment as the template sets it. The agent runs with the layer's real scanner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from aegis_local.scenario.seed import SeededAccount, seed_account
from tests.support.agent_world import (
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
def world(aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> World:
    for name in ("TRAIL_BUCKET", "FLOW_LOGS_LOG_GROUP", "FLOW_LOGS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in agent_environment().items():
        monkeypatch.setenv(name, value)
    tables = create_tables(aws)
    sfn = create_state_machine(aws)
    return World(session=aws, tables=tables, sfn=sfn, seeded=seed_account(aws, REGION))
