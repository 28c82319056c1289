"""enable-bucket-public-access-block: turns all four switches of one bucket on."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from tests.support.changes import COMMON, bucket_public_access_block_change


def test_a_resource_that_is_not_a_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="bucket ARN"):
        EnableBucketPublicAccessBlock.propose(
            check_id="s3-bucket-public",
            resource_arn="arn:aws:sqs:eu-west-1:123456789012:queue",
            before=PublicAccessBlock(configured=False),
            after=PublicAccessBlock.all_on(),
            **COMMON,
        )


def test_the_change_names_its_bucket_and_only_it() -> None:
    change = bucket_public_access_block_change()
    assert isinstance(change, EnableBucketPublicAccessBlock)
    assert change.bucket == "public-bucket"
    assert change.summary() == "Block public access s3 public-bucket"
    [statement] = change.session_policy_statements("apply")
    assert statement["Resource"] == ["arn:aws:s3:::public-bucket"]
    assert type(change).REGION_SCOPE == "resource"
