"""The approval function's tests run where its world does (tests.support.approval_world: eu-west-1, Step Functions
executing), start each without the layers' caches, and get that world."""

from __future__ import annotations

import boto3
import pytest

from aegis_local.auth0.clock import ManualClock
from tests.support.approval_world import MOTO_SETUP, StepFunctions, World, create_tables
from tests.support.moto_account import MotoSetup, fresh_layer_caches

__all__ = ["fresh_layer_caches"]


@pytest.fixture
def moto_setup() -> MotoSetup:
    return MOTO_SETUP


@pytest.fixture
def world(aws: boto3.Session) -> World:
    key_id = str(boto3.client("kms").create_key(Description="handoff")["KeyMetadata"]["KeyId"])
    return World(
        clock=ManualClock(1_800_000_000.0),
        tables=create_tables(),
        key_id=key_id,
        stepfunctions=StepFunctions(),
        secret="unit-test-client-secret-value",
    )
