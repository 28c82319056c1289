"""The auth layer's tests run in eu-west-1 with boto3's default session kept across tests, and start each without
the layers' caches."""

from __future__ import annotations

import pytest

from tests.support.moto_account import KEEP_DEFAULT_SESSION, MotoSetup, fresh_layer_caches

__all__ = ["fresh_layer_caches"]


@pytest.fixture
def moto_setup() -> MotoSetup:
    return MotoSetup("eu-west-1", KEEP_DEFAULT_SESSION)
