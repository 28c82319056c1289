from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.stack import create_declared_table


@pytest.fixture
def audit_table(aws: boto3.Session) -> Any:
    """The Audit table exactly as template.yaml declares it (keys and the ByChange index)."""
    return create_declared_table(aws.resource("dynamodb"), "AuditTable", "Audit")


@pytest.fixture
def missions_table(aws: boto3.Session) -> Any:
    """The Missions table exactly as template.yaml declares it: where the agent records each mission's account."""
    return create_declared_table(aws.resource("dynamodb"), "MissionsTable", "Missions")
