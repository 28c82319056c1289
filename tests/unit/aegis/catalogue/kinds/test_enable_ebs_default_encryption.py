"""enable-ebs-default-encryption: turns encryption by default on in one region."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from tests.support.changes import ACCOUNT, COMMON, REGION, ebs_default_encryption_change


@pytest.mark.parametrize(("before", "after"), [(True, True), (False, False), (True, False)])
def test_anything_but_off_to_on_is_refused(before: bool, after: bool) -> None:
    with pytest.raises(ValueError, match="from off to on"):
        EnableEbsDefaultEncryption.propose(
            check_id="ec2-ebs-default-encryption-off",
            resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*",
            before=EbsDefaultEncryption(enabled=before),
            after=EbsDefaultEncryption(enabled=after),
            **COMMON,
        )


def test_the_regional_setting_is_changed_in_its_region_only() -> None:
    change = ebs_default_encryption_change()
    assert change.summary() == f"Enable EBS default encryption {REGION}"
    for phase in ("apply", "undo"):
        [statement] = change.session_policy_statements(phase)
        assert statement["Resource"] == "*"
        assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": REGION}}
