"""The heartbeat fix (aegis_local.aws.moto_fixes): a heartbeat for a registered task token is accepted before moto
has created the token's heartbeat watch, as AWS accepts a heartbeat for any token it awaits; an unknown token is
still refused, and uninstalling gives moto back its own answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager

from aegis_local.aws.moto_fixes import StepFunctionsFixes


@pytest.fixture
def fixes() -> Iterator[None]:
    StepFunctionsFixes.install()
    try:
        yield
    finally:
        StepFunctionsFixes.uninstall()


@pytest.mark.usefixtures("fixes")
def test_a_heartbeat_between_the_tokens_registration_and_its_watch_is_accepted() -> None:
    pool = CallbackPoolManager(activity_store={})
    endpoint = pool.add("token-1")
    assert pool.heartbeat("token-1") is True  # registered, no watch yet
    watch = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=60)
    assert pool.heartbeat("token-1") is True  # the watch itself is reset
    assert watch._next_heartbeat_event.is_set()
    assert pool.heartbeat("never-issued") is False


def test_without_the_fix_moto_refuses_that_heartbeat() -> None:
    pool = CallbackPoolManager(activity_store={})
    pool.add("token-1")
    assert pool.heartbeat("token-1") is False
