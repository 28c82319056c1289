"""The notifier's tests run on a moto account with the Audit table (and its stream) and the notifications topic as
template.yaml declares them (tests.support.notifier_world)."""

from __future__ import annotations

import boto3
import pytest

from tests.support.notifier_world import NotifierWorld


@pytest.fixture
def world(aws: boto3.Session) -> NotifierWorld:
    return NotifierWorld.create(aws)
