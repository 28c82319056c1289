"""Turn EBS encryption by default on in the change's region; undo turns it off again."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis_executor.remediations.base import SettingRemediation, remediation


@remediation("enable-ebs-default-encryption")
class EbsDefaultEncryptionRemediation(SettingRemediation[EnableEbsDefaultEncryption, EbsDefaultEncryption]):
    def read_current(self, session: Session, change: EnableEbsDefaultEncryption) -> EbsDefaultEncryption:
        answer = self.client(session, "ec2", change).get_ebs_encryption_by_default()
        return EbsDefaultEncryption(enabled=bool(answer["EbsEncryptionByDefault"]))

    def write(self, session: Session, change: EnableEbsDefaultEncryption, state: EbsDefaultEncryption) -> None:
        ec2 = self.client(session, "ec2", change)
        if state.enabled:
            ec2.enable_ebs_encryption_by_default()
        else:
            ec2.disable_ebs_encryption_by_default()
