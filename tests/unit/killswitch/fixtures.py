"""Fixtures of the kill switch tests (unit and integration conftests import them): one Auth0 emulator per
session (key generation and start cost ~0.5 s), a fresh moto account per test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from moto import mock_aws

from aegis_auth import oidc
from aegis_killswitch.settings import KillSwitchSettings
from aegis_local.auth0 import DEFAULT_M2M_CLIENT_ID, Auth0Emulator, ManualClock
from tests.unit.killswitch.world import (
    REGION,
    ApproverPool,
    AwsWorld,
    Phone,
    create_aws_world,
    emulator_config,
    environment,
)

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture(scope="session")
def auth0_clock() -> ManualClock:
    # An hour behind: CIBA polls move it forward a second at a time, and tokens it stamps must never look issued
    # in the future to verifiers that use the real clock.
    return ManualClock(time.time() - 3600)


@pytest.fixture(scope="session")
def emulator(auth0_clock: ManualClock) -> Iterator[Auth0Emulator]:
    with Auth0Emulator(emulator_config(), clock=auth0_clock) as running:
        yield running


@pytest.fixture(scope="session")
def approver_pool() -> ApproverPool:
    return ApproverPool()


@pytest.fixture
def phone(emulator: Auth0Emulator, auth0_clock: ManualClock) -> Iterator[Phone]:
    client = Phone(emulator, auth0_clock)
    yield client
    client.close()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, emulator: Auth0Emulator) -> Iterator[AwsWorld]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config=MOTO_CONFIG):
        world = create_aws_world(emulator.client_secret(DEFAULT_M2M_CLIENT_ID))
        oidc.clear_caches()
        yield world
        emulator.set_down(False)
    oidc.clear_caches()


@pytest.fixture
def approvers(approver_pool: ApproverPool) -> tuple[str, ...]:
    return approver_pool.take(2)


@pytest.fixture
def settings(
    monkeypatch: pytest.MonkeyPatch, aws: AwsWorld, emulator: Auth0Emulator, approvers: tuple[str, ...]
) -> KillSwitchSettings:
    for name, value in environment(aws, emulator, approvers).items():
        monkeypatch.setenv(name, value)
    return KillSwitchSettings.from_env()
