"""What a function's code asks boto3 for, observed from a test."""

from __future__ import annotations

from typing import Any, Literal

import boto3
import pytest


def services_made(monkeypatch: pytest.MonkeyPatch, factory: Literal["client", "resource"]) -> list[str]:
    """The service names `boto3.client` (or `boto3.resource`) is called with from now on, in order; the calls still
    make what they ask for."""
    made: list[str] = []
    original = getattr(boto3, factory)

    def recording(service_name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(service_name)
        return original(service_name, *args, **kwargs)

    monkeypatch.setattr(boto3, factory, recording)
    return made
