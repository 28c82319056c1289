"""S3 Block Public Access not fully on for the account: CIS v3.0.0 2.1.4 / v5.0.0 2.1.4."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from aegis.checks import PlanConfig, s3_account_public_access_block_off
from aegis.models import Risk

ACCOUNT_CHECK = s3_account_public_access_block_off
ACCOUNT = "123456789012"
ALL_ON = PublicAccessBlock.all_on().to_aws()


@pytest.fixture
def s3control(aws):
    return aws.client("s3control", region_name="us-east-1")


def test_account_block_missing_is_flagged_with_the_account_arn(inventory):
    [finding] = ACCOUNT_CHECK.evaluate(inventory())

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == (
        "s3-account-public-access-block-off",
        "2.1.4",
        "2.1.4",
    )
    assert (finding.resource_arn, finding.region) == (f"arn:aws:iam::{ACCOUNT}:root", "us-east-1")
    assert finding.evidence["public_access_block"]["configured"] is False
    change = ACCOUNT_CHECK.propose(finding, PlanConfig())
    assert isinstance(change, EnableAccountPublicAccessBlock)
    assert change.before == PublicAccessBlock(configured=False)
    assert change.after.fully_on
    assert change.risk is Risk.HIGH


def test_account_block_partly_on_is_flagged_and_fully_on_is_not(s3control, inventory):
    s3control.put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON | {"BlockPublicAcls": False}
    )
    [finding] = ACCOUNT_CHECK.evaluate(inventory())
    assert finding.evidence["public_access_block"]["ignore_public_acls"] is True
    assert finding.evidence["public_access_block"]["block_public_acls"] is False

    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON)
    assert ACCOUNT_CHECK.evaluate(inventory()) == []


def test_cis_numbers_and_remediation_kind():
    meta = s3_account_public_access_block_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("2.1.4", "2.1.4", "enable-account-public-access-block")
