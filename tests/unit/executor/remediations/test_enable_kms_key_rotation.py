"""The KMS remediation rotates the approved key only."""

from __future__ import annotations

import boto3
import pytest

from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def test_other_keys_are_untouched() -> None:
    kms = boto3.client("kms", region_name=REGION)
    other = kms.create_key(Description="another key")["KeyMetadata"]["Arn"]
    case = CASES["enable-kms-key-rotation"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)

    fix.apply(session, case.change)

    assert case.facts() is True
    assert kms.get_key_rotation_status(KeyId=other)["KeyRotationEnabled"] is False
    fix.undo(session, case.change)
    assert kms.get_key_rotation_status(KeyId=other)["KeyRotationEnabled"] is False
