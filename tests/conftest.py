"""The one moto `aws` fixture every test folder uses: a fresh in-process account per test (tests.support.moto_account)
and a boto3 session on it. A folder whose code runs in another region, or needs moto configured otherwise (Step
Functions executing its definitions, boto3's default session kept across tests), overrides `moto_setup` in its own
conftest.py; the account is still made here, the same way for all."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from tests.support.moto_account import DEFAULT_SETUP, MotoSetup, moto_account


@pytest.fixture
def moto_setup() -> MotoSetup:
    return DEFAULT_SETUP


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_setup: MotoSetup) -> Iterator[boto3.Session]:
    with moto_account(monkeypatch, moto_setup) as session:
        yield session
