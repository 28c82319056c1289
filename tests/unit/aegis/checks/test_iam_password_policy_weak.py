"""Weak or missing account password policy: CIS v3.0.0 1.8, 1.9 / v5.0.0 1.7, 1.8."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.strengthen_password_policy import StrengthenPasswordPolicy
from aegis.checks import PlanConfig, iam_password_policy_weak

PASSWORD = iam_password_policy_weak
ACCOUNT = "123456789012"


@pytest.fixture
def iam(aws):
    return aws.client("iam", region_name="us-east-1")


def test_missing_password_policy_is_flagged_and_strengthened(inventory):
    [finding] = PASSWORD.evaluate(inventory())

    assert (finding.cis_v3, finding.cis_v5) == ("1.8, 1.9", "1.7, 1.8")
    assert (finding.resource_arn, finding.region) == (f"arn:aws:iam::{ACCOUNT}:root", "us-east-1")
    assert finding.evidence["password_policy"]["exists"] is False
    change = PASSWORD.propose(finding, PlanConfig())
    assert isinstance(change, StrengthenPasswordPolicy)
    assert (change.after.minimum_password_length, change.after.password_reuse_prevention) == (14, 24)


def test_weak_policy_is_strengthened_keeping_its_stricter_values(iam, inventory):
    iam.update_account_password_policy(
        MinimumPasswordLength=20, PasswordReusePrevention=3, RequireSymbols=True, MaxPasswordAge=90
    )
    [finding] = PASSWORD.evaluate(inventory())
    assert finding.evidence["length_ok"] is True
    assert finding.evidence["reuse_ok"] is False

    change = PASSWORD.propose(finding, PlanConfig())

    after = change.after
    assert (after.minimum_password_length, after.password_reuse_prevention) == (20, 24)
    assert after.require_symbols is True
    assert after.max_password_age == 90


def test_strong_password_policy_is_not_flagged(iam, inventory):
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)
    assert PASSWORD.evaluate(inventory()) == []


def test_cis_numbers_and_remediation_kind():
    meta = iam_password_policy_weak.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("1.8, 1.9", "1.7, 1.8", "strengthen-password-policy")
