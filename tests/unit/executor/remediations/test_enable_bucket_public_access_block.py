"""The bucket-level block remediation changes the approved bucket only; undo of a bucket that had no block deletes
the block again."""

from __future__ import annotations

import boto3
import pytest

from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from aegis.models import Risk
from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import in_moto

pytestmark = pytest.mark.usefixtures("aws")


def test_a_bucket_without_a_block_gets_one_and_loses_it_on_undo() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in ("aegis-open-bucket", "aegis-neighbour"):
        s3.create_bucket(Bucket=bucket)
    change = in_moto(
        EnableBucketPublicAccessBlock,
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::aegis-open-bucket",
        risk=Risk.MEDIUM,
        before=PublicAccessBlock(configured=False),
        after=PublicAccessBlock.all_on(),
    )
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    assert fix.is_before(fix.read_current(session, change), change)

    fix.apply(session, change)
    assert fix.verify(session, change).ok
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchPublicAccessBlockConfiguration"):
        s3.get_public_access_block(Bucket="aegis-neighbour")

    fix.undo(session, change)
    assert fix.read_current(session, change) == PublicAccessBlock(configured=False)
    assert fix.verify_undone(session, change).ok
