"""Stopping the local stack stops its Bedrock emulator and takes its endpoint out of the process environment (in a
module of its own: one local stack runs per process at a time)."""

from __future__ import annotations

import os

import httpx
import pytest

from aegis_local.aws.stack import LocalStack, StackNotRunning

VARIABLE = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"


def test_stopping_the_stack_stops_the_emulator_and_forgets_its_endpoint(monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    with LocalStack() as running:
        url = running.bedrock.url
        assert httpx.post(f"{url}/model/unknown/converse", json={}).status_code == 404

    assert VARIABLE not in os.environ
    with pytest.raises(StackNotRunning):
        running.bedrock  # noqa: B018 - stopped: the property raises
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/model/scripted/converse", json={})
