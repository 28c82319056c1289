"""Turn on the account's S3 Block Public Access; undo restores the saved configuration (or deletes the block if there
was none)."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from aegis_executor.remediations._public_access_block import read_block, write_block
from aegis_executor.remediations.base import SettingRemediation, remediation


@remediation("enable-account-public-access-block")
class AccountPublicAccessBlockRemediation(SettingRemediation[EnableAccountPublicAccessBlock, PublicAccessBlock]):
    def read_current(self, session: Session, change: EnableAccountPublicAccessBlock) -> PublicAccessBlock:
        s3control = self.client(session, "s3control", change)
        return read_block(s3control.get_public_access_block, AccountId=change.account_id)

    def write(self, session: Session, change: EnableAccountPublicAccessBlock, state: PublicAccessBlock) -> None:
        s3control = self.client(session, "s3control", change)
        write_block(
            s3control.put_public_access_block, s3control.delete_public_access_block, state, AccountId=change.account_id
        )
