"""The EBS remediation changes the setting of the change's region only."""

from __future__ import annotations

import boto3
import pytest

from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def test_other_regions_keep_their_setting() -> None:
    case = CASES["enable-ebs-default-encryption"]()
    elsewhere = boto3.client("ec2", region_name="eu-west-1")
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)

    fix.apply(session, case.change)

    assert case.facts() is True
    assert elsewhere.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
