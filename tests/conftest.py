"""The one moto `aws` fixture every test folder uses: a fresh in-process account per test (tests.support.moto_account)
and a boto3 session on it. A folder whose code runs in another region, or needs moto configured otherwise (Step
Functions executing its definitions, boto3's default session kept across tests), overrides `moto_setup` in its own
conftest.py; the account is still made here, the same way for all.

It also loads the one Hypothesis profile of the property tests (tests/unit/**/test_*_properties.py): a fixed seed
(derandomize), a bounded number of examples, no deadline (a shared CI machine is slow at times) and no example
database, so every run, on any machine, tries exactly the same inputs and a failure reproduces."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from hypothesis import settings

from tests.support.moto_account import DEFAULT_SETUP, MotoSetup, moto_account

PROPERTY_PROFILE = "aegis-ci"
settings.register_profile(PROPERTY_PROFILE, derandomize=True, max_examples=100, deadline=None, database=None)
settings.load_profile(PROPERTY_PROFILE)


@pytest.fixture
def moto_setup() -> MotoSetup:
    return DEFAULT_SETUP


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_setup: MotoSetup) -> Iterator[boto3.Session]:
    with moto_account(monkeypatch, moto_setup) as session:
        yield session
