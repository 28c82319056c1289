"""Turn on automatic rotation of a customer-managed symmetric KMS key (CIS 3.6)."""

from __future__ import annotations

from typing import Literal

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen
from aegis.secrets_guard import display_text


class KeyRotation(Frozen):
    rotation_enabled: bool


class EnableKmsKeyRotation(ChangeBase):
    kind: Literal["enable-kms-key-rotation"] = "enable-kms-key-rotation"
    before: KeyRotation
    after: KeyRotation

    TITLE = "Rotate a KMS key yearly"
    APPLY_ACTIONS = ("kms:EnableKeyRotation",)
    READ_ACTIONS = ("kms:GetKeyRotationStatus",)
    UNDO_ACTIONS = ("kms:DisableKeyRotation",)
    REGION_SCOPE = "scanned"

    @property
    def key_id(self) -> str:
        return self.resource_arn.rsplit("/", 1)[-1]

    def assert_narrows(self) -> None:
        if ":key/" not in self.resource_arn:
            raise ValueError("resource_arn must be a KMS key ARN")
        if self.before.rotation_enabled or not self.after.rotation_enabled:
            raise WideningChange("the change must turn rotation from off to on")

    def summary(self) -> str:
        return f"Enable rotation kms key {display_text(self.key_id)}"

    def describe_before(self) -> str:
        return "rotation off"

    def describe_after(self) -> str:
        return "rotation on (yearly)"
