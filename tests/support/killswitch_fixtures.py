"""Fixtures of the kill switch tests (unit and integration conftests import them): one Auth0 emulator per
session (key generation and start cost ~0.5 s), and per test the deployment the kill switch acts on, in the root
`aws` fixture's moto account with Step Functions executing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest

from aegis_killswitch.settings import KillSwitchSettings
from aegis_local.auth0 import DEFAULT_M2M_CLIENT_ID, Auth0Emulator, ManualClock
from tests.support.killswitch_world import (
    ApproverPool,
    AwsWorld,
    Phone,
    create_aws_world,
    emulator_config,
    environment,
)
from tests.support.lambda_app import load_app
from tests.support.mission_machine import plan_as_the_validator
from tests.support.moto_account import EXECUTE_STATE_MACHINES, MotoSetup

# What a folder's conftest.py takes with `import *`.
__all__ = [
    "app",
    "approver_pool",
    "approvers",
    "auth0_clock",
    "aws_world",
    "emulator",
    "moto_setup",
    "phone",
    "settings",
]


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
def moto_setup() -> MotoSetup:
    return MotoSetup(config=EXECUTE_STATE_MACHINES)


@pytest.fixture
def aws_world(aws: boto3.Session, emulator: Auth0Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    """The deployment the kill switch acts on, in the test's moto account; its missions' plans are accepted as the
    validator would, one approval request per change."""
    plan_as_the_validator(monkeypatch)
    world = create_aws_world(emulator.client_secret(DEFAULT_M2M_CLIENT_ID))
    yield world
    emulator.set_down(False)


@pytest.fixture
def approvers(approver_pool: ApproverPool) -> tuple[str, ...]:
    return approver_pool.take(2)


@pytest.fixture
def settings(
    monkeypatch: pytest.MonkeyPatch, aws_world: AwsWorld, emulator: Auth0Emulator, approvers: tuple[str, ...]
) -> KillSwitchSettings:
    for name, value in environment(aws_world, emulator, approvers).items():
        monkeypatch.setenv(name, value)
    return KillSwitchSettings.from_env()


@pytest.fixture
def app(settings: KillSwitchSettings) -> ModuleType:
    """The kill switch's Lambda module, loaded once `settings` put the deployment in the environment."""
    return load_app("killswitch")
