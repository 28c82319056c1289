"""enable-kms-key-rotation: turns yearly rotation on for one customer-managed key."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from tests.support.changes import ACCOUNT, COMMON, REGION, kms_key_rotation_change

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_a_resource_that_is_not_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="KMS key ARN"):
        EnableKmsKeyRotation.propose(
            check_id="kms-key-rotation-off",
            resource_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/data",
            before=KeyRotation(rotation_enabled=False),
            after=KeyRotation(rotation_enabled=True),
            **COMMON,
        )


def test_turning_rotation_off_is_refused() -> None:
    with pytest.raises(ValueError, match="from off to on"):
        EnableKmsKeyRotation.propose(
            check_id="kms-key-rotation-off",
            resource_arn=KEY_ARN,
            before=KeyRotation(rotation_enabled=True),
            after=KeyRotation(rotation_enabled=False),
            **COMMON,
        )


def test_the_change_is_pinned_to_its_key() -> None:
    change = kms_key_rotation_change()
    assert isinstance(change, EnableKmsKeyRotation)
    assert change.key_id == "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert change.summary() == "Enable rotation kms key 1234abcd-12ab-34cd-56ef-1234567890ab"
    [statement] = change.session_policy_statements("undo")
    assert (statement["Resource"], statement["Action"]) == (
        [KEY_ARN],
        ["kms:DisableKeyRotation", "kms:GetKeyRotationStatus"],
    )
