"""The approval function's tests run where its world does (tests.support.approval_world: eu-west-1, Step Functions
executing), start each without the layers' caches, and get that world.

The world's Step Functions has the local stack's corrections of moto (aegis_local.aws.moto_fixes): a refusal answers
its task token within a millisecond of the task's message, before moto starts its heartbeat watch, and without the
correction moto would sleep through that answer (as the local stack would)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from aegis_local.auth0.clock import ManualClock
from aegis_local.aws.moto_fixes import StepFunctionsFixes
from tests.support.approval_world import MOTO_SETUP, StepFunctions, World, create_tables
from tests.support.moto_account import MotoSetup, fresh_layer_caches

__all__ = ["fresh_layer_caches"]


@pytest.fixture
def moto_setup() -> MotoSetup:
    return MOTO_SETUP


@pytest.fixture
def world(aws: boto3.Session) -> Iterator[World]:
    key_id = str(boto3.client("kms").create_key(Description="handoff")["KeyMetadata"]["KeyId"])
    StepFunctionsFixes.install()
    yield World(
        clock=ManualClock(1_800_000_000.0),
        tables=create_tables(),
        key_id=key_id,
        stepfunctions=StepFunctions(),
        secret="unit-test-client-secret-value",
    )
    StepFunctionsFixes.uninstall()
