"""One emulator for the whole directory (key generation and server start cost ~0.5 s), a manual clock that
every test moves past all earlier requests and rate windows, and a thin wire client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from aegis_local.auth0 import Auth0Emulator, ManualClock
from tests.support.auth0_wire import DisposableUsers, Wire, build_test_config


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def emulator(clock: ManualClock) -> Iterator[Auth0Emulator]:
    with Auth0Emulator(build_test_config(), clock=clock) as running:
        yield running


@pytest.fixture(scope="session")
def disposable_users() -> DisposableUsers:
    return DisposableUsers()


@pytest.fixture(autouse=True)
def _fresh_window(request: pytest.FixtureRequest) -> None:
    # Expire every earlier CIBA request and empty the per-minute windows, so tests do not interact.
    if "emulator" in request.fixturenames:
        request.getfixturevalue("clock").advance(301)


@pytest.fixture(scope="session")
def http(emulator: Auth0Emulator) -> Iterator[httpx.Client]:
    # One client for all tests: building one costs tens of milliseconds (its TLS context).
    with httpx.Client(base_url=emulator.issuer, timeout=5) as client:
        yield client


@pytest.fixture
def wire(emulator: Auth0Emulator, clock: ManualClock, http: httpx.Client) -> Wire:
    return Wire(emulator, clock, http)
