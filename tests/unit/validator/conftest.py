from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support.moto_account import moto_account
from tests.support.stack import create_declared_table


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto with throwaway credentials and no endpoint override."""
    with moto_account(monkeypatch):
        yield


@pytest.fixture
def audit_table(aws: None) -> Any:
    """The Audit table exactly as template.yaml declares it (keys and the ByChange index)."""
    return create_declared_table(boto3.resource("dynamodb", region_name="us-east-1"), "AuditTable", "Audit")
