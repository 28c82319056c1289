"""The organization scan's two own steps (statemachine/organization.asl.json): list its accounts, and summarise
their missions.

    list: halt flag (OrgScan.Halted) → ORGANIZATION_ID set (OrgScan.NotConfigured) and the organization these
      credentials see (OrgScan.WrongOrganization) → the ACTIVE accounts (every account of the organization, or of
      ORG_SCAN_ORGANIZATIONAL_UNITS and every OU beneath them) → include and exclude lists → the organization scan's
      item `org#<id>` in Missions (accounts, the org-wide cap MAX_CHANGES_PER_ORG_SCAN, reserved_changes 0) → the
      Distributed Map's items, `org-scans/<id>/items.json` in ORG_SCAN_BUCKET → audit `org_scan.listed`
    summarize: the accounts' missions (ByOrgScan) counted by status onto the item, status `scanned` (or `failed`
      with the Map's error name) → audit `org_scan.summarized`

Listing is idempotent: the item is put only if absent, and a retried listing writes the items of the accounts the
item recorded first, so the cap and the Map never disagree about which accounts the scan covers. The item carries
no `listing` (it stays out of ByCreated, which lists missions) and no `org_scan` (it is not one of its own accounts'
missions in ByOrgScan).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from aegis.audit import AuditLog
from aegis.control import Halted, ensure_not_halted
from aegis.missions_keys import ORG_SCAN_ATTRIBUTE, ORG_SCAN_INDEX, org_scan_key
from aegis.secrets_guard import refuse_secrets
from aegis_orgscan import errors
from aegis_orgscan.events import ListAccountsTask, SummarizeTask, parse_task
from aegis_orgscan.settings import OrgScanSettings

logger = Logger(child=True)

AUDIT_ACTOR = "org-scan"
ORG_SCAN_KIND = "org-scan"
ITEMS_PREFIX = "org-scans"
ACTIVE = "ACTIVE"
SCANNING, SCANNED, FAILED = "scanning", "scanned", "failed"
# Accounts listed for the scan whose mission the index does not (yet) show: the agent never reached them.
NOT_STARTED = "not_started"


def items_key(org_scan_id: str) -> str:
    """Where the Distributed Map reads the scan's items (OrgScanRole may write only under org-scans/)."""
    return f"{ITEMS_PREFIX}/{org_scan_id}/items.json"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OrgScanService:
    settings: OrgScanSettings
    organizations: Any
    s3: Any
    missions_table: Any
    audit_table: Any
    control_table: Any
    clock: Callable[[], datetime] = field(default=_utc_now)

    def handle(self, event: Any) -> dict[str, Any]:
        task = parse_task(event)
        if isinstance(task, ListAccountsTask):
            return self.list_accounts(task)
        return self.summarize(task)

    # --- list --------------------------------------------------------------------------------------------------
    def list_accounts(self, task: ListAccountsTask) -> dict[str, Any]:
        org_scan_id = task.org_scan_id
        audit = AuditLog(self.audit_table, AUDIT_ACTOR)
        try:
            ensure_not_halted(self.control_table)
        except Halted:
            audit.append(org_scan_id, "org_scan.refused", "halted")
            raise errors.Halted("the kill switch is engaged: no account is listed") from None
        self._check_organization(audit, org_scan_id)
        accounts = self.selected_accounts()
        now = self.clock().isoformat()
        regions = (
            list(dict.fromkeys(task.request.regions)) if task.request.regions else list(self.settings.scan_regions)
        )
        checks = list(dict.fromkeys(task.request.checks)) if task.request.checks else None
        item = {
            "mission_id": org_scan_key(org_scan_id),
            "kind": ORG_SCAN_KIND,
            "org_scan_id": org_scan_id,
            "status": SCANNING,
            "accounts": accounts,
            "account_count": len(accounts),
            "regions": regions,
            "check_ids": checks,
            "dry_run": task.request.dry_run,
            "max_changes": self.settings.max_changes,
            "reserved_changes": 0,
            "items_key": items_key(org_scan_id),
            "created_at": now,
            "updated_at": now,
        }
        refuse_secrets(item, where="org_scan")
        created = self._put_once(item)
        if not created:
            # A retried listing: the accounts recorded first are the scan's (accounts may have reserved changes).
            recorded = self.missions_table.get_item(Key={"mission_id": item["mission_id"]}, ConsistentRead=True)
            accounts = [str(account) for account in recorded["Item"].get("accounts", [])]
        key = items_key(org_scan_id)
        items = [
            {
                "org_scan_id": org_scan_id,
                "account_id": account,
                "regions": regions,
                "checks": checks,
                "dry_run": task.request.dry_run,
            }
            for account in accounts
        ]
        self.s3.put_object(
            Bucket=self.settings.bucket,
            Key=key,
            Body=json.dumps(items, separators=(",", ":")).encode(),
            ContentType="application/json",
        )
        audit.append(
            org_scan_id,
            "org_scan.listed",
            "listed",
            account_count=len(accounts),
            organizational_units=list(self.settings.organizational_units) or None,
            regions=regions,
            check_ids=checks,
            dry_run=task.request.dry_run,
            recorded=created,
        )
        logger.info("organization scan listed", extra={"org_scan_id": org_scan_id, "accounts": len(accounts)})
        return {"org_scan_id": org_scan_id, "bucket": self.settings.bucket, "key": key, "accounts": len(accounts)}

    def _check_organization(self, audit: AuditLog, org_scan_id: str) -> None:
        expected = self.settings.organization_id
        if not expected:
            audit.append(org_scan_id, "org_scan.refused", "not-configured")
            raise errors.NotConfigured("ORGANIZATION_ID is not set: this deployment scans its own account only")
        actual = self.organizations.describe_organization()["Organization"]["Id"]
        if actual != expected:
            audit.append(org_scan_id, "org_scan.refused", "wrong-organization", organization_id=actual)
            raise errors.WrongOrganization(f"this account is in organization {actual}, not in ORGANIZATION_ID")

    def selected_accounts(self) -> list[str]:
        """The ACTIVE accounts the scan covers, sorted: the OUs' (or the organization's), then include, exclude."""
        if self.settings.organizational_units:
            listed = self._accounts_under(self.settings.organizational_units)
        else:
            listed = self._pages("list_accounts", "Accounts")
        accounts = {str(account["Id"]) for account in listed if _is_active(account)}
        if self.settings.include_accounts:
            accounts &= self.settings.include_accounts
        return sorted(accounts - self.settings.exclude_accounts)

    def _accounts_under(self, parents: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        """Every account directly in `parents` or in any OU beneath them (an explicit stack: no recursion limit,
        and a parent reached twice, say an OU listed beside its own parent, is read once)."""
        pending, seen = list(parents), set()
        while pending:
            parent = pending.pop()
            if parent in seen:
                continue
            seen.add(parent)
            yield from self._pages("list_accounts_for_parent", "Accounts", ParentId=parent)
            pending.extend(
                str(unit["Id"])
                for unit in self._pages("list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent)
            )

    def _pages(self, operation: str, key: str, **parameters: Any) -> Iterator[dict[str, Any]]:
        for page in self.organizations.get_paginator(operation).paginate(**parameters):
            yield from page.get(key, [])

    def _put_once(self, item: dict[str, Any]) -> bool:
        try:
            self.missions_table.put_item(Item=item, ConditionExpression="attribute_not_exists(mission_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    # --- summarize ---------------------------------------------------------------------------------------------
    def summarize(self, task: SummarizeTask) -> dict[str, Any]:
        org_scan_id = task.org_scan_id
        key = org_scan_key(org_scan_id)
        item = self.missions_table.get_item(Key={"mission_id": key}, ConsistentRead=True).get("Item")
        if item is None:
            raise errors.UnknownOrgScan("the organization scan has no item: it was never listed")
        by_status: dict[str, int] = {}
        missions = 0
        for mission in self._missions_of(org_scan_id):
            status = str(mission.get("status", "unknown"))
            by_status[status] = by_status.get(status, 0) + 1
            missions += 1
        counts = dict(sorted(by_status.items())) | {NOT_STARTED: max(0, int(item.get("account_count", 0)) - missions)}
        status = FAILED if task.failure else SCANNED
        now = self.clock().isoformat()
        values: dict[str, Any] = {"status": status, "counts": counts, "summarized_at": now, "updated_at": now}
        if task.failure:
            values["error"] = task.failure
        names = {f"#f{i}": name for i, name in enumerate(values)}
        self.missions_table.update_item(
            Key={"mission_id": key},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": value for i, value in enumerate(values.values())},
            ConditionExpression="attribute_exists(mission_id)",
        )
        AuditLog(self.audit_table, AUDIT_ACTOR).append(
            org_scan_id, "org_scan.summarized", status, counts=counts, error=task.failure
        )
        logger.info("organization scan summarised", extra={"org_scan_id": org_scan_id, "status": status})
        return {"org_scan_id": org_scan_id, "status": status, "counts": counts}

    def _missions_of(self, org_scan_id: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "IndexName": ORG_SCAN_INDEX,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": ORG_SCAN_ATTRIBUTE},
            "ExpressionAttributeValues": {":o": org_scan_id},
        }
        while True:
            page = self.missions_table.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _is_active(account: dict[str, Any]) -> bool:
    """Organizations reports `State` (newer) and `Status` (older): an account is scanned only while ACTIVE, never
    suspended or closing (its roles may be gone, and nothing in it should change)."""
    return (account.get("State") or account.get("Status")) == ACTIVE
