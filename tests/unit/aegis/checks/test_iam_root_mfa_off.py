"""Root user without MFA: CIS v3.0.0 1.5 / v5.0.0 1.4 / v6.0.0 2.4 / v7.0.0 2.5 (all unsure), notify-only, from the
account summary the root access keys check reads already."""

from __future__ import annotations

from moto.iam.models import iam_backends

from aegis.checks import PlanConfig, iam_root_access_keys, iam_root_mfa_off
from aegis.models import Severity

CHECK = iam_root_mfa_off
ACCOUNT = "123456789012"


def test_a_root_user_without_mfa_is_flagged_and_notify_only(inventory):
    [finding] = CHECK.evaluate(inventory())  # moto's root, like a fresh account's, has no MFA device

    assert (finding.check_id, finding.resource_arn, finding.region) == (
        "iam-root-mfa-off",
        f"arn:aws:iam::{ACCOUNT}:root",
        "us-east-1",
    )
    assert finding.evidence == {"account_mfa_enabled": 0}
    assert finding.severity is Severity.CRITICAL
    assert finding.remediation is None
    assert CHECK.propose(finding, PlanConfig()) is None


def test_a_root_user_with_mfa_satisfies_the_control(inventory):
    # No API enables the root user's MFA device but root's own, so the account state moto reports is set directly.
    iam_backends[ACCOUNT]["global"].account_summary._account_mfa_enabled = 1

    assert CHECK.evaluate(inventory()) == []


def test_the_finding_is_in_iams_home_region_and_shares_the_summary_with_root_keys(inventory):
    scanned = inventory("eu-west-1")

    [finding] = CHECK.evaluate(scanned)
    iam_root_access_keys.evaluate(scanned)

    assert finding.region == "us-east-1"
    assert scanned.collectors.clients.api_calls["iam.GetAccountSummary"] == 1


def test_cis_numbers_and_remediation_kind():
    meta = iam_root_mfa_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_id("v6"), meta.cis_v7) == ("1.5", "1.4", "2.4", "2.5")
    assert set(meta.cis_unsure) == {"v3", "v5", "v6", "v7"}
    assert meta.remediation_kind is None
    assert "MFA" in meta.manual_fix
