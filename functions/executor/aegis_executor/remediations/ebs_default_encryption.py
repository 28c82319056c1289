"""Turn EBS encryption by default on in the change's region; undo turns it off again."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis_executor.remediations.base import Remediation, remediation


@remediation("enable-ebs-default-encryption")
class EbsDefaultEncryptionRemediation(Remediation[EnableEbsDefaultEncryption, EbsDefaultEncryption]):
    def read_current(self, session: Session, change: EnableEbsDefaultEncryption) -> EbsDefaultEncryption:
        answer = self.client(session, "ec2", change).get_ebs_encryption_by_default()
        return EbsDefaultEncryption(enabled=bool(answer["EbsEncryptionByDefault"]))

    def apply(self, session: Session, change: EnableEbsDefaultEncryption) -> None:
        self.client(session, "ec2", change).enable_ebs_encryption_by_default()

    def undo(self, session: Session, change: EnableEbsDefaultEncryption) -> None:
        self.client(session, "ec2", change).disable_ebs_encryption_by_default()
