"""Customer-managed KMS key without rotation: CIS v3.0.0 3.6 / v5.0.0 3.6."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation
from aegis.checks import PlanConfig, kms_key_rotation_off
from aegis.checks.base import EXEMPT_TAG

CHECK = kms_key_rotation_off


@pytest.fixture
def kms(aws):
    return aws.client("kms", region_name="us-east-1")


def test_a_key_without_rotation_is_flagged_and_rotation_proposed(kms, inventory):
    key = kms.create_key(Tags=[{"TagKey": EXEMPT_TAG, "TagValue": "legacy HSM migration"}])["KeyMetadata"]

    [finding] = CHECK.evaluate(inventory())

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("kms-key-rotation-off", "3.6", "3.6")
    assert finding.resource_arn == key["Arn"]
    assert finding.tags == {EXEMPT_TAG: "legacy HSM migration"}
    change = CHECK.propose(finding, PlanConfig())
    assert isinstance(change, EnableKmsKeyRotation)
    assert change.key_id == key["KeyId"]
    assert (change.before.rotation_enabled, change.after.rotation_enabled) == (False, True)


def test_rotating_disabled_and_asymmetric_keys_are_not_flagged(kms, inventory):
    rotating = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=rotating)
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")

    inv = inventory()
    assert CHECK.evaluate(inv) == []
    calls = inv.collectors.clients.api_calls
    assert calls["kms.DescribeKey"] == 3
    assert calls["kms.GetKeyRotationStatus"] == 1  # only the enabled symmetric key
    assert "kms.ListResourceTags" not in calls  # tags only for flagged keys


def test_cis_numbers_and_remediation_kind():
    meta = kms_key_rotation_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("3.6", "3.6", "enable-kms-key-rotation")
