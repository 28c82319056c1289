"""Turn on all four account-level S3 Block Public Access settings (CIS 2.1.4)."""

from __future__ import annotations

from typing import Literal

from aegis.catalogue.base import ChangeBase
from aegis.catalogue.states import PublicAccessBlock, assert_blocks_more


class EnableAccountPublicAccessBlock(ChangeBase):
    kind: Literal["enable-account-public-access-block"] = "enable-account-public-access-block"
    before: PublicAccessBlock
    after: PublicAccessBlock

    TITLE = "Block public access for the whole account"
    APPLY_ACTIONS = ("s3:PutAccountPublicAccessBlock",)
    READ_ACTIONS = ("s3:GetAccountPublicAccessBlock",)
    UNDO_ACTIONS = ("s3:PutAccountPublicAccessBlock",)
    # The account-level actions support no resource-level permissions.
    UNSCOPED_ACTIONS = ("s3:PutAccountPublicAccessBlock", "s3:GetAccountPublicAccessBlock")
    REGION_SCOPE = "home"

    def assert_narrows(self) -> None:
        assert_blocks_more(self.before, self.after)

    def summary(self) -> str:
        return f"Block S3 public access account {self.account_id}"
