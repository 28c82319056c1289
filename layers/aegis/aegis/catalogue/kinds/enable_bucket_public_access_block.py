"""Turn on all four Block Public Access settings of one bucket (CIS 2.1.4)."""

from __future__ import annotations

from typing import Literal

from aegis.catalogue.base import ChangeBase
from aegis.catalogue.states import PublicAccessBlock, assert_blocks_more
from aegis.secrets_guard import display_text


class EnableBucketPublicAccessBlock(ChangeBase):
    kind: Literal["enable-bucket-public-access-block"] = "enable-bucket-public-access-block"
    before: PublicAccessBlock
    after: PublicAccessBlock

    TITLE = "Block public access to a bucket"
    APPLY_ACTIONS = ("s3:PutBucketPublicAccessBlock",)
    READ_ACTIONS = ("s3:GetBucketPublicAccessBlock",)
    UNDO_ACTIONS = ("s3:PutBucketPublicAccessBlock",)
    # S3 lists every bucket whatever regions are scanned; a bucket's change is in the bucket's own region.
    REGION_SCOPE = "resource"

    @property
    def bucket(self) -> str:
        return self.resource_arn.removeprefix(self._bucket_arn_prefix)

    @property
    def _bucket_arn_prefix(self) -> str:
        # A bucket's ARN has no region or account, but it has the partition of the bucket's region.
        return f"arn:{self.partition}:s3:::"

    def assert_narrows(self) -> None:
        if not self.resource_arn.startswith(self._bucket_arn_prefix):
            raise ValueError("resource_arn must be a bucket ARN")
        assert_blocks_more(self.before, self.after)

    def summary(self) -> str:
        return f"Block public access s3 {display_text(self.bucket)}"
