"""A fresh in-process moto account for a test, whatever the developer's shell holds: throwaway credentials, and no
endpoint override or profile that would send a call elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto import mock_aws
from moto.core.config import DefaultConfig


@contextmanager
def moto_account(
    monkeypatch: pytest.MonkeyPatch, region: str = "us-east-1", config: DefaultConfig | None = None
) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config=config):
        yield
