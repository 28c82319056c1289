"""Root access keys: CIS v3.0.0 1.4 / v5.0.0 1.3, notify-only."""

from __future__ import annotations

from moto.iam.models import iam_backends

from aegis.checks import PlanConfig, iam_root_access_keys
from aegis.models import Severity

ROOT_KEYS = iam_root_access_keys
ACCOUNT = "123456789012"


def test_root_access_keys_are_notify_only(inventory):
    assert ROOT_KEYS.evaluate(inventory()) == []  # a fresh account's root has no keys
    # No API creates root access keys, so the account state moto reports is set directly.
    iam_backends[ACCOUNT]["global"].account_summary._account_access_keys_present = 1

    [finding] = ROOT_KEYS.evaluate(inventory())

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("iam-root-access-keys", "1.4", "1.3")
    assert finding.severity is Severity.CRITICAL
    assert finding.resource_arn == f"arn:aws:iam::{ACCOUNT}:root"
    assert finding.remediation is None
    assert ROOT_KEYS.METADATA.remediation_kind is None
    assert ROOT_KEYS.propose(finding, PlanConfig()) is None


def test_cis_numbers_and_remediation_kind():
    meta = iam_root_access_keys.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("1.4", "1.3", None)
