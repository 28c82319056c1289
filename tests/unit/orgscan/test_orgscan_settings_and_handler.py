"""The org-scan function's settings from the template's environment, and its Lambda handler (app.py, loaded by path)."""

from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any

import pytest

from aegis.settings import clear_caches
from aegis_orgscan.errors import InvalidSettings, UnknownOrgScan
from aegis_orgscan.settings import OrgScanSettings
from tests.support.lambda_app import load_app
from tests.unit.orgscan.conftest import BUCKET, Organization

ENVIRONMENT = {
    "MISSIONS_TABLE": "Missions",
    "AUDIT_TABLE": "Audit",
    "CONTROL_TABLE": "Control",
    "ORG_SCAN_BUCKET": BUCKET,
    "ORGANIZATION_ID": "o-abcdefghij",
    "ORG_SCAN_ORGANIZATIONAL_UNITS": "r-ab12, ou-ab12-cdefgh12",
    "ORG_SCAN_INCLUDE_ACCOUNTS": "111111111111,222222222222",
    "ORG_SCAN_EXCLUDE_ACCOUNTS": "",
    "SCAN_REGIONS": "eu-west-1,eu-central-1",
    "MAX_CHANGES_PER_ORG_SCAN": "200",
}


def test_the_settings_read_the_templates_variables() -> None:
    settings = OrgScanSettings.from_env(ENVIRONMENT)
    assert settings == OrgScanSettings(
        missions_table="Missions",
        audit_table="Audit",
        control_table="Control",
        bucket=BUCKET,
        scan_regions=("eu-west-1", "eu-central-1"),
        max_changes=200,
        organization_id="o-abcdefghij",
        organizational_units=("r-ab12", "ou-ab12-cdefgh12"),
        include_accounts=frozenset({"111111111111", "222222222222"}),
        exclude_accounts=frozenset(),
    )
    # A single-account deployment: listing refuses it by name (OrgScan.NotConfigured), the settings do not.
    assert OrgScanSettings.from_env(ENVIRONMENT | {"ORGANIZATION_ID": ""}).organization_id == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORGANIZATION_ID", "my-org"),
        ("ORG_SCAN_ORGANIZATIONAL_UNITS", "finance"),
        ("ORG_SCAN_INCLUDE_ACCOUNTS", "1234"),
        ("ORG_SCAN_EXCLUDE_ACCOUNTS", "abc"),
        ("SCAN_REGIONS", ""),
        ("MAX_CHANGES_PER_ORG_SCAN", "100001"),
        ("MAX_CHANGES_PER_ORG_SCAN", "many"),
        ("ORG_SCAN_BUCKET", ""),
        ("MISSIONS_TABLE", ""),
    ],
)
def test_an_invalid_setting_is_named_never_echoed(name: str, value: str) -> None:
    with pytest.raises(InvalidSettings) as raised:
        OrgScanSettings.from_env(ENVIRONMENT | {name: value})
    assert name in str(raised.value)
    assert type(raised.value).__name__ == "OrgScan.InvalidSettings"
    if value:
        assert value not in str(raised.value)


class LambdaContext:
    function_name = "aegis-org-scan"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:aegis-org-scan"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def app(organization: Organization, tables: dict[str, Any], bucket: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    environment = ENVIRONMENT | {
        "ORGANIZATION_ID": organization.id,
        "ORG_SCAN_ORGANIZATIONAL_UNITS": "",
        "ORG_SCAN_INCLUDE_ACCOUNTS": "",
        "POWERTOOLS_SERVICE_NAME": "aegis-org-scan",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    return load_app("orgscan")


def test_the_handler_lists_and_summarises_without_logging_the_event(
    app: ModuleType, organization: Organization, capsys: pytest.CaptureFixture[str]
) -> None:
    org_scan = "org-0123456789abcdef0123"
    listed = app.handler(
        {"action": "list", "org_scan_id": org_scan, "request": {"org_scan_id": org_scan, "regions": ["sa-east-1"]}},
        LambdaContext(),
    )
    assert listed["accounts"] == len(organization.active)
    summary = app.handler({"action": "summarize", "org_scan_id": org_scan}, LambdaContext())
    assert summary["status"] == "scanned"
    assert "sa-east-1" not in capsys.readouterr().out


def test_the_handler_raises_a_refusal_under_its_step_functions_name(app: ModuleType) -> None:
    with pytest.raises(UnknownOrgScan) as raised:
        app.handler({"action": "summarize", "org_scan_id": "org-0123456789abcdef0123"}, LambdaContext())
    assert type(raised.value).__name__ == "OrgScan.UnknownOrgScan"
