"""Turn on S3 Block Public Access for the account or for one bucket; undo restores the saved configuration (or
deletes the block if there was none)."""

from __future__ import annotations

from typing import Any

from boto3.session import Session
from botocore.exceptions import ClientError

from aegis.catalogue import EnableAccountPublicAccessBlock, EnableBucketPublicAccessBlock, PublicAccessBlock
from aegis_executor.remediations.base import Remediation, remediation

NO_CONFIGURATION = "NoSuchPublicAccessBlockConfiguration"


def _read(call: Any, **kwargs: Any) -> PublicAccessBlock:
    try:
        config = call(**kwargs)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == NO_CONFIGURATION:
            return PublicAccessBlock.from_aws(None)
        raise
    return PublicAccessBlock.from_aws(config)


@remediation("enable-account-public-access-block")
class AccountPublicAccessBlockRemediation(Remediation[EnableAccountPublicAccessBlock, PublicAccessBlock]):
    def read_current(self, session: Session, change: EnableAccountPublicAccessBlock) -> PublicAccessBlock:
        s3control = self.client(session, "s3control", change)
        return _read(s3control.get_public_access_block, AccountId=change.account_id)

    def apply(self, session: Session, change: EnableAccountPublicAccessBlock) -> None:
        self._put(session, change, change.after)

    def undo(self, session: Session, change: EnableAccountPublicAccessBlock) -> None:
        self._put(session, change, change.before)

    def _put(self, session: Session, change: EnableAccountPublicAccessBlock, state: PublicAccessBlock) -> None:
        s3control = self.client(session, "s3control", change)
        if state.configured:
            s3control.put_public_access_block(
                AccountId=change.account_id, PublicAccessBlockConfiguration=state.to_aws()
            )
        else:
            s3control.delete_public_access_block(AccountId=change.account_id)


@remediation("enable-bucket-public-access-block")
class BucketPublicAccessBlockRemediation(Remediation[EnableBucketPublicAccessBlock, PublicAccessBlock]):
    def read_current(self, session: Session, change: EnableBucketPublicAccessBlock) -> PublicAccessBlock:
        s3 = self.client(session, "s3", change)
        return _read(s3.get_public_access_block, Bucket=change.bucket, ExpectedBucketOwner=change.account_id)

    def apply(self, session: Session, change: EnableBucketPublicAccessBlock) -> None:
        self._put(session, change, change.after)

    def undo(self, session: Session, change: EnableBucketPublicAccessBlock) -> None:
        self._put(session, change, change.before)

    def _put(self, session: Session, change: EnableBucketPublicAccessBlock, state: PublicAccessBlock) -> None:
        s3 = self.client(session, "s3", change)
        # ExpectedBucketOwner: a bucket of the same name in another account (after a delete and re-create) is
        # not the bucket the human approved.
        if state.configured:
            s3.put_public_access_block(
                Bucket=change.bucket,
                PublicAccessBlockConfiguration=state.to_aws(),
                ExpectedBucketOwner=change.account_id,
            )
        else:
            s3.delete_public_access_block(Bucket=change.bucket, ExpectedBucketOwner=change.account_id)
