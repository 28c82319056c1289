"""moto in-process with Step Functions really executing, fresh aegis_auth caches, and the approval world."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.core.config import DefaultConfig

from aegis_auth.oidc import clear_caches
from aegis_local.auth0.clock import ManualClock
from tests.support.moto_account import moto_account
from tests.unit.approval.approval_world import StepFunctions, World, create_tables

REGION = "eu-west-1"
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    # Keep boto3's default session (and its loaded service models) across tests: moto still resets its state.
    "core": {"reset_boto3_session": False, "mock_credentials": True, "passthrough": {"urls": [], "services": []}},
}


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with moto_account(monkeypatch, REGION, MOTO_CONFIG):
        yield


@pytest.fixture
def world(aws: None) -> World:
    key_id = str(boto3.client("kms").create_key(Description="handoff")["KeyMetadata"]["KeyId"])
    return World(
        clock=ManualClock(1_800_000_000.0),
        tables=create_tables(),
        key_id=key_id,
        stepfunctions=StepFunctions(),
        secret="unit-test-client-secret-value",
    )
