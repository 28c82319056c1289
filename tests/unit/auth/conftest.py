"""In-process moto for the AWS side, and fresh aegis_auth caches for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.core.config import DefaultConfig

from aegis_auth.oidc import clear_caches
from tests.support.moto_account import moto_account

REGION = "eu-west-1"
# Keep boto3's default session (and its loaded service models) across tests: moto still resets its own state.
MOTO_CONFIG: DefaultConfig = {
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
