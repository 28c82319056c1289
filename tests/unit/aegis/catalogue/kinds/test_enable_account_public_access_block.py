"""enable-account-public-access-block: turns all four account-level switches on, account-wide."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from tests.support.changes import ACCOUNT, COMMON, account_public_access_block_change


def _propose(before: PublicAccessBlock, after: PublicAccessBlock) -> EnableAccountPublicAccessBlock:
    return EnableAccountPublicAccessBlock.propose(
        check_id="s3-account-public-access-block-off",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:root",
        before=before,
        after=after,
        **COMMON,
    )


def test_a_block_left_partly_off_is_refused() -> None:
    with pytest.raises(ValueError, match="all four"):
        _propose(PublicAccessBlock(configured=False), PublicAccessBlock(block_public_acls=True))


def test_a_change_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="changes nothing"):
        _propose(PublicAccessBlock.all_on(), PublicAccessBlock.all_on())


def test_the_approver_sees_every_switch() -> None:
    change = account_public_access_block_change()
    assert change.summary() == f"Block S3 public access account {ACCOUNT}"
    assert change.describe_before() == "no public access block"
    assert change.describe_after() == (
        "BlockPublicAcls=on, IgnorePublicAcls=on, BlockPublicPolicy=on, RestrictPublicBuckets=on"
    )


def test_the_account_level_actions_are_unscoped_but_pinned_to_the_region() -> None:
    [statement] = account_public_access_block_change().session_policy_statements("apply")
    assert statement["Resource"] == "*"
    assert statement["Action"] == ["s3:GetAccountPublicAccessBlock", "s3:PutAccountPublicAccessBlock"]
    assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": COMMON["region"]}}
