"""Turn on automatic rotation of one KMS key (by key ARN); undo turns it off."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from aegis_executor.remediations.base import SettingRemediation, remediation


@remediation("enable-kms-key-rotation")
class KmsKeyRotationRemediation(SettingRemediation[EnableKmsKeyRotation, KeyRotation]):
    def read_current(self, session: Session, change: EnableKmsKeyRotation) -> KeyRotation:
        answer = self.client(session, "kms", change).get_key_rotation_status(KeyId=change.resource_arn)
        return KeyRotation(rotation_enabled=bool(answer["KeyRotationEnabled"]))

    def write(self, session: Session, change: EnableKmsKeyRotation, state: KeyRotation) -> None:
        kms = self.client(session, "kms", change)
        if state.rotation_enabled:
            kms.enable_key_rotation(KeyId=change.resource_arn)
        else:
            kms.disable_key_rotation(KeyId=change.resource_arn)
