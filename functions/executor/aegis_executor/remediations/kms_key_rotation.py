"""Turn on automatic rotation of one KMS key (by key ARN); undo turns it off."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue import EnableKmsKeyRotation, KeyRotation
from aegis_executor.remediations.base import Remediation, remediation


@remediation("enable-kms-key-rotation")
class KmsKeyRotationRemediation(Remediation[EnableKmsKeyRotation, KeyRotation]):
    def read_current(self, session: Session, change: EnableKmsKeyRotation) -> KeyRotation:
        answer = self.client(session, "kms", change).get_key_rotation_status(KeyId=change.resource_arn)
        return KeyRotation(rotation_enabled=bool(answer["KeyRotationEnabled"]))

    def apply(self, session: Session, change: EnableKmsKeyRotation) -> None:
        self.client(session, "kms", change).enable_key_rotation(KeyId=change.resource_arn)

    def undo(self, session: Session, change: EnableKmsKeyRotation) -> None:
        self.client(session, "kms", change).disable_key_rotation(KeyId=change.resource_arn)
