"""Turn on S3 Block Public Access for one bucket; undo restores the saved configuration (or deletes the block if there
was none)."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from aegis_executor.remediations._public_access_block import read_block, write_block
from aegis_executor.remediations.base import SettingRemediation, remediation


@remediation("enable-bucket-public-access-block")
class BucketPublicAccessBlockRemediation(SettingRemediation[EnableBucketPublicAccessBlock, PublicAccessBlock]):
    def read_current(self, session: Session, change: EnableBucketPublicAccessBlock) -> PublicAccessBlock:
        s3 = self.client(session, "s3", change)
        return read_block(s3.get_public_access_block, Bucket=change.bucket, ExpectedBucketOwner=change.account_id)

    def write(self, session: Session, change: EnableBucketPublicAccessBlock, state: PublicAccessBlock) -> None:
        s3 = self.client(session, "s3", change)
        # ExpectedBucketOwner: a bucket of the same name in another account (after a delete and re-create) is
        # not the bucket the human approved.
        write_block(
            s3.put_public_access_block,
            s3.delete_public_access_block,
            state,
            Bucket=change.bucket,
            ExpectedBucketOwner=change.account_id,
        )
