"""The account-level block remediation puts all four switches on; undo puts back exactly the switches there were."""

from __future__ import annotations

import boto3
import pytest

from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from aegis.models import Risk
from aegis_executor.remediations import remediation_for
from tests.support.changes import ACCOUNT, in_moto
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")


def test_undo_restores_a_partial_block_switch_by_switch() -> None:
    partial = PublicAccessBlock(block_public_acls=True, restrict_public_buckets=True)
    s3control = boto3.client("s3control", region_name=REGION)
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=partial.to_aws())
    change = in_moto(
        EnableAccountPublicAccessBlock,
        check_id="s3-account-public-access-block-off",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:root",
        risk=Risk.HIGH,
        before=partial,
        after=PublicAccessBlock.all_on(),
    )
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)

    fix.apply(session, change)
    assert fix.read_current(session, change).fully_on
    fix.undo(session, change)

    assert fix.read_current(session, change) == partial
    assert s3control.get_public_access_block(AccountId=ACCOUNT)["PublicAccessBlockConfiguration"] == partial.to_aws()
