"""A fresh in-process moto account for a test, whatever the developer's shell holds: throwaway credentials, no
endpoint override or profile that would send a call elsewhere, and none of the layers' per-process caches (boto3
resources, discovery documents, secrets) carried over from another test's account.

The root conftest.py makes one for every test that asks for `aws`; a folder whose code runs in another region or
needs moto configured otherwise overrides the `moto_setup` fixture in its own conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import boto3
import pytest
from moto import mock_aws
from moto.core.config import DefaultConfig

from aegis.settings import clear_caches as clear_setting_caches
from aegis_auth.oidc import clear_caches as clear_auth_caches

# moto replaces each section of its configuration whole.
# Keep boto3's default session (and its loaded service models) across tests: moto still resets its own state.
KEEP_DEFAULT_SESSION: DefaultConfig = {
    "core": {"reset_boto3_session": False, "mock_credentials": True, "passthrough": {"urls": [], "services": []}},
}
# Step Functions runs the executions it starts, Lambda tasks in-process (no Docker).
EXECUTE_STATE_MACHINES: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


@dataclass(frozen=True)
class MotoSetup:
    region: str = "us-east-1"
    config: DefaultConfig | None = None  # None: moto's defaults


DEFAULT_SETUP = MotoSetup()


@cache
def session_for(region: str) -> boto3.Session:
    """One session per region for the whole run: it caches the service models, which makes creating clients cheap
    (a fresh session parses EC2's model again, about half a second). moto patches below it, so it serves every
    test's account."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)


def clear_layer_caches() -> None:
    clear_setting_caches()
    clear_auth_caches()


@contextmanager
def moto_account(monkeypatch: pytest.MonkeyPatch, setup: MotoSetup = DEFAULT_SETUP) -> Iterator[boto3.Session]:
    """The account, entered; yields `session_for` its region."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": setup.region,
        "AWS_REGION": setup.region,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clear_layer_caches()
    try:
        with mock_aws(config=setup.config):
            yield session_for(setup.region)
    finally:
        clear_layer_caches()


@pytest.fixture(autouse=True)
def fresh_layer_caches() -> Iterator[None]:
    """For a folder whose tests use the layers' caches with or without `aws` (an OIDC client on a provider double,
    settings from the environment): its conftest.py imports this fixture, and each test there starts and ends
    without them."""
    clear_layer_caches()
    yield
    clear_layer_caches()
