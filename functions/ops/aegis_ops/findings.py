"""The latest state of every CIS control (`GET /findings`), by control, with each resource's latest status and
outcome.

For each check a mission ran, the agent keeps one Missions item, `latest-findings#<check id>`, naming the newest
mission whose report covers that check (`aegis.missions_keys`). So this reads, with BatchGetItem only and whatever
the number of missions: those items for every check of the catalogue, the mission items they name (for where each
report is), and those reports' pages. Never a scan, never a query over history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from aegis.checks import CHECKS
from aegis.cis import DEFAULT_CIS_VERSION, CisVersion, InvalidCisVersion, cis_sort_key, cis_version
from aegis.missions_keys import latest_findings_key
from aegis.reporting.agent_report import MissionReport, ReportChange, ReportFinding, VerifiedState
from aegis_ops.documents import ReportRef, batch_get, read_reports
from aegis_ops.errors import BadRequest
from aegis_ops.items import json_ready

# A control's state: never scanned, scanned with nothing failing, or with at least one resource failing.
NOT_SCANNED, PASSING, FAILING = "not-scanned", "passing", "failing"
# The latest mission covers the check but its report is not written yet (the latest-findings item goes first).
REPORT_PENDING = "report-pending"


def requested_cis_version(text: str | None, default: CisVersion) -> CisVersion:
    """The version a caller asked for (`?cis=v5`), else the deployment's; BadRequest for one not carried."""
    if text is None:
        return default
    try:
        return cis_version(text)
    except InvalidCisVersion as exc:
        raise BadRequest(str(exc)) from None


def latest_findings(dynamodb: Any, table_name: str, version: CisVersion = DEFAULT_CIS_VERSION) -> dict[str, Any]:
    latest = batch_get(dynamodb, table_name, [latest_findings_key(check_id) for check_id in CHECKS])
    by_check = {str(item["check_id"]): item for item in latest.values() if "check_id" in item}
    mission_items = batch_get(dynamodb, table_name, {str(item["latest_mission_id"]) for item in by_check.values()})
    refs = [ref for ref in (ReportRef.of_item(item) for item in mission_items.values()) if ref is not None]
    reports = read_reports(dynamodb, table_name, refs)
    controls = [
        _control(check_id, by_check.get(check_id), reports, version)
        for check_id in sorted(CHECKS, key=lambda c: (cis_sort_key(CHECKS[c].METADATA.cis_id(version)), c))
    ]
    return {"cis_version": version, "controls": controls}


def _control(
    check_id: str, latest: Mapping[str, Any] | None, reports: Mapping[str, MissionReport], version: CisVersion
) -> dict[str, Any]:
    metadata = CHECKS[check_id].METADATA
    control: dict[str, Any] = {
        "check_id": check_id,
        "title": metadata.title,
        # The id in the version asked for, then every version's (v6 is v7's where they agree).
        "cis": metadata.cis_id(version),
        "cis_v7": metadata.cis_v7,
        "cis_v6": metadata.cis_id("v6"),
        "cis_v5": metadata.cis_v5,
        "cis_v3": metadata.cis_v3,
        "cis_unsure": list(metadata.cis_unsure),
        "severity": metadata.severity.value,
        "fixes": list(metadata.kinds),
        "manual_fix": metadata.manual_fix,
        "state": NOT_SCANNED,
        "latest_mission_id": None,
        "recorded_at": None,
        "regions": [],
        "dry_run": None,
        "resources": [],
    }
    if latest is None:
        return control
    mission_id = str(latest["latest_mission_id"])
    control |= {
        "latest_mission_id": mission_id,
        "recorded_at": str(latest.get("recorded_at", "")),
        "regions": json_ready(latest.get("regions") or []),
        "dry_run": bool(latest.get("dry_run")),
    }
    report = reports.get(mission_id)
    if report is None:
        return control | {"state": REPORT_PENDING}
    resources = _resources(check_id, report)
    return control | {
        "state": FAILING if any(r["status"] == FAILING for r in resources) else PASSING,
        "resources": resources,
    }


def _resources(check_id: str, report: MissionReport) -> list[dict[str, Any]]:
    changes = {change.change_id: change for change in report.changes}
    by_resource: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in report.findings:
        if finding.check_id == check_id:
            by_resource[finding.resource_arn].append(finding)
    return [_resource(arn, findings, changes) for arn, findings in sorted(by_resource.items())]


def _resource(arn: str, findings: Sequence[ReportFinding], changes: Mapping[str, ReportChange]) -> dict[str, Any]:
    finding = findings[0]
    change = changes.get(finding.change_id) if finding.change_id else None
    # A finding is a resource failing the check at the scan; it is fixed only if the mission's re-scan says so.
    fixed = finding.still_failing is False or (change is not None and change.verified == VerifiedState.FIXED)
    return {
        "resource_arn": arn,
        "region": finding.region,
        "status": PASSING if fixed else FAILING,
        "disposition": finding.disposition.value,
        "reason": finding.reason,
        "change_id": finding.change_id,
        "decision": change.decision if change else None,
        "outcome": change.outcome.value if change and change.outcome else None,
        "verified": change.verified.value if change and change.verified else None,
    }
