"""In-process moto for the AWS side, and fresh aegis_auth caches for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws
from moto.core.config import DefaultConfig

from aegis_auth.oidc import clear_caches

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
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config=MOTO_CONFIG):
        yield
