"""The org-scan function's settings, read once from the environment the template sets (OrgScanFunction's
Environment). An invalid setting names the variable, never its value.

ORGANIZATION_ID may be empty here: the deployment is then single-account, and listing answers `OrgScan.NotConfigured`
(a named refusal of the scan, not a broken deployment)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aegis.catalogue.base import ACCOUNT_ID_PATTERN, REGION_PATTERN
from aegis.settings import Environment
from aegis_orgscan.errors import InvalidSettings

# The template's patterns (OrganizationId, OrgScanOrganizationalUnits) and MaxChangesPerOrgScan bounds.
ORGANIZATION_ID_PATTERN = r"^o-[a-z0-9]{10,32}$"
PARENT_ID_PATTERN = r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$"
MAX_CHANGES_RANGE = range(1, 100_001)


@dataclass(frozen=True)
class OrgScanSettings:
    missions_table: str
    audit_table: str
    control_table: str
    # Where the Distributed Map reads each scan's items (org-scans/<id>/items.json).
    bucket: str
    # The default regions of an account's scan when the request names none.
    scan_regions: tuple[str, ...]
    # The organization-wide cap the accounts' plans reserve against (aegis_agent.orgcap).
    max_changes: int
    organization_id: str = ""
    # Roots or OUs whose accounts (and sub-OUs') are scanned; empty: every account of the organization.
    organizational_units: tuple[str, ...] = ()
    include_accounts: frozenset[str] = frozenset()
    exclude_accounts: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrgScanSettings:
        env = Environment(InvalidSettings, environ)
        organization_id = env.optional("ORGANIZATION_ID")
        if organization_id and not re.fullmatch(ORGANIZATION_ID_PATTERN, organization_id):
            raise env.invalid("ORGANIZATION_ID must be an organization id (o-...)")
        regions = env.items("SCAN_REGIONS")
        if not regions or not all(re.fullmatch(REGION_PATTERN, region) for region in regions):
            raise env.invalid("SCAN_REGIONS must be a comma list of region names")
        parents = env.items("ORG_SCAN_ORGANIZATIONAL_UNITS")
        if not all(re.fullmatch(PARENT_ID_PATTERN, parent) for parent in parents):
            raise env.invalid("ORG_SCAN_ORGANIZATIONAL_UNITS must be a comma list of OU (ou-...) or root (r-...) ids")
        lists = {}
        for name in ("ORG_SCAN_INCLUDE_ACCOUNTS", "ORG_SCAN_EXCLUDE_ACCOUNTS"):
            accounts = env.items(name)
            if not all(re.fullmatch(ACCOUNT_ID_PATTERN, account) for account in accounts):
                raise env.invalid(f"{name} must be a comma list of 12-digit account ids")
            lists[name] = frozenset(accounts)
        max_changes = env.number("MAX_CHANGES_PER_ORG_SCAN", int)
        if max_changes not in MAX_CHANGES_RANGE:
            raise env.invalid(
                f"MAX_CHANGES_PER_ORG_SCAN must be {MAX_CHANGES_RANGE.start} to {MAX_CHANGES_RANGE.stop - 1}"
            )
        return cls(
            missions_table=env.required("MISSIONS_TABLE"),
            audit_table=env.required("AUDIT_TABLE"),
            control_table=env.required("CONTROL_TABLE"),
            bucket=env.required("ORG_SCAN_BUCKET"),
            scan_regions=regions,
            max_changes=max_changes,
            organization_id=organization_id,
            organizational_units=parents,
            include_accounts=lists["ORG_SCAN_INCLUDE_ACCOUNTS"],
            exclude_accounts=lists["ORG_SCAN_EXCLUDE_ACCOUNTS"],
        )
