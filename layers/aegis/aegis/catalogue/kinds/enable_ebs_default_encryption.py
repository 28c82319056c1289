"""Turn on EBS encryption by default in one region (CIS 5.1.1). Existing volumes are not affected."""

from __future__ import annotations

from typing import Literal

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen


class EbsDefaultEncryption(Frozen):
    enabled: bool


class EnableEbsDefaultEncryption(ChangeBase):
    kind: Literal["enable-ebs-default-encryption"] = "enable-ebs-default-encryption"
    before: EbsDefaultEncryption
    after: EbsDefaultEncryption

    TITLE = "Encrypt new EBS volumes by default"
    APPLY_ACTIONS = ("ec2:EnableEbsEncryptionByDefault",)
    READ_ACTIONS = ("ec2:GetEbsEncryptionByDefault",)
    UNDO_ACTIONS = ("ec2:DisableEbsEncryptionByDefault",)
    UNSCOPED_ACTIONS = (*APPLY_ACTIONS, *READ_ACTIONS, *UNDO_ACTIONS)
    REGION_SCOPE = "scanned"

    def assert_narrows(self) -> None:
        if self.before.enabled or not self.after.enabled:
            raise WideningChange("the change must turn default encryption from off to on")

    def summary(self) -> str:
        return f"Enable EBS default encryption {self.region}"

    def describe_before(self) -> str:
        return "encryption by default off"

    def describe_after(self) -> str:
        return "encryption by default on"
