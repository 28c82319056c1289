"""The agent's tables and a state machine to start, in the test's moto account."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.agent_world import create_state_machine, create_tables


@pytest.fixture
def tables(aws: boto3.Session) -> dict[str, Any]:
    return create_tables(aws)


@pytest.fixture
def sfn(aws: boto3.Session, tables: dict[str, Any]) -> Any:
    return create_state_machine(aws)
