"""An organization in moto for the org-scan function: the security (management) account, two OUs (one nested) with
an account each, an account at the root and a suspended one; the Missions, Audit and Control tables as
template.yaml declares them; and the org-scan bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from aegis_orgscan.service import OrgScanService
from aegis_orgscan.settings import OrgScanSettings
from tests.support.stack import create_declared_table

BUCKET = "aegis-org-scan"
MANAGEMENT = "123456789012"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Organization:
    id: str
    root: str
    # OU "workloads" holds `workload`; its child OU "prod" holds `prod`. `loose` sits at the root, `suspended` too.
    workloads: str
    prod: str
    workload: str
    prod_account: str
    loose: str
    suspended: str

    @property
    def active(self) -> list[str]:
        return sorted([MANAGEMENT, self.workload, self.prod_account, self.loose])


def _account(organizations: Any, name: str, parent: str | None, root: str) -> str:
    account_id = organizations.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"][
        "AccountId"
    ]
    if parent:
        organizations.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
    return str(account_id)


@pytest.fixture
def organization(aws: boto3.Session) -> Organization:
    organizations = aws.client("organizations")
    org_id = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root = organizations.list_roots()["Roots"][0]["Id"]
    workloads = organizations.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    prod = organizations.create_organizational_unit(ParentId=workloads, Name="prod")["OrganizationalUnit"]["Id"]
    suspended = _account(organizations, "gone", None, root)
    organizations.close_account(AccountId=suspended)
    return Organization(
        id=org_id,
        root=root,
        workloads=workloads,
        prod=prod,
        workload=_account(organizations, "workload", workloads, root),
        prod_account=_account(organizations, "prod", prod, root),
        loose=_account(organizations, "loose", None, root),
        suspended=suspended,
    )


@pytest.fixture
def tables(aws: boto3.Session) -> dict[str, Any]:
    dynamodb = aws.resource("dynamodb")
    return {
        "missions": create_declared_table(dynamodb, "MissionsTable", "Missions"),
        "audit": create_declared_table(dynamodb, "AuditTable", "Audit"),
        "control": create_declared_table(dynamodb, "ControlTable", "Control"),
    }


@pytest.fixture
def bucket(aws: boto3.Session) -> str:
    aws.client("s3").create_bucket(Bucket=BUCKET)
    return BUCKET


def settings_for(**overrides: Any) -> OrgScanSettings:
    values: dict[str, Any] = {
        "missions_table": "Missions",
        "audit_table": "Audit",
        "control_table": "Control",
        "bucket": BUCKET,
        "scan_regions": ("eu-west-1", "eu-central-1"),
        "max_changes": 200,
    }
    return OrgScanSettings(**(values | overrides))


@pytest.fixture
def make_service(aws: boto3.Session, tables: dict[str, Any], bucket: str, organization: Organization) -> Any:
    def make(**overrides: Any) -> OrgScanService:
        return OrgScanService(
            settings=settings_for(**({"organization_id": organization.id} | overrides)),
            organizations=aws.client("organizations"),
            s3=aws.client("s3"),
            missions_table=tables["missions"],
            audit_table=tables["audit"],
            control_table=tables["control"],
            clock=lambda: NOW,
        )

    return make
