"""Missions: the list, newest first (`GET /missions`), one organization scan's accounts (`GET /missions?org_scan=`),
one mission in full (`GET /missions/{id}`) and its report page (`GET /missions/{id}/report.html`).

The list queries the Missions table's `ByCreated` index (mission items only carry its key `listing`), one page at a
time: never a scan. A mission in full is its item, the report the agent stored (findings, changes with before and
after, decisions, outcomes, re-scan) and its audit trail (who decided when, what the executor read, the timeline),
assembled exactly as the report page is (`aegis.reporting.assembly`). An organization scan is its own item
(`org#<org scan id>`, one GetItem) and its accounts' missions (the sparse `ByOrgScan` index, by account id), summarised
by `aegis.reporting.organization`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aegis.audit import read_trail
from aegis.missions_keys import (
    CREATED_INDEX,
    LISTING_ATTRIBUTE,
    MISSION_LISTING,
    ORG_SCAN_ATTRIBUTE,
    ORG_SCAN_INDEX,
    is_mission_id,
    is_org_scan_id,
    org_scan_key,
)
from aegis.reporting.assembly import NO_PLAN_NOTE, RUNNING_NOTE, assemble_document
from aegis.reporting.html import MissionReportDocument, render_html
from aegis.reporting.organization import org_summary
from aegis_ops.documents import ReportRef, read_report
from aegis_ops.errors import BadRequest, NotFound
from aegis_ops.items import json_ready
from aegis_ops.paging import page_request, query_page

# LastEvaluatedKey of the ByCreated index: its keys and the table's.
LIST_CURSOR_KEYS = ("mission_id", LISTING_ATTRIBUTE, "created_at")
# The agent's statuses of a mission that has not ended (aegis_agent.missions.MissionStatus).
RUNNING_STATUSES = frozenset({"scanning", "awaiting_approval"})
# What a mission item shows in the list and as the head of a mission in full (metadata only: never a document).
SUMMARY_FIELDS = (
    "mission_id",
    "status",
    "trigger",
    "regions",
    "check_ids",
    "dry_run",
    "created_at",
    "updated_at",
    "plan_status",
    "plan_stop_reason",
    "counts",
    "by_severity",
    "by_cis_v5",
    "by_check",
    "change_ids",
    "execution_arn",
    "error",
    "undo_of",
    "requested_by",
    "account_id",
    "org_scan",
)
# What an account's line of an organization scan needs of its mission item (the index projects every attribute; the
# query reads only these).
ORG_ACCOUNT_FIELDS = (
    "mission_id",
    "account_id",
    "status",
    "plan_status",
    "counts",
    "by_severity",
    "org_changes_granted",
    "error",
    "execution_arn",
    "created_at",
    "updated_at",
)


def mission_summary(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: json_ready(item[name]) for name in SUMMARY_FIELDS if item.get(name) is not None}


def list_missions(table: Any, *, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """One page of missions, newest first (`limit` and `cursor` as the caller sent them)."""
    items, next_cursor = query_page(
        table,
        page_request(limit, cursor, LIST_CURSOR_KEYS),
        IndexName=CREATED_INDEX,
        KeyConditionExpression="#listing = :mission",
        ExpressionAttributeNames={"#listing": LISTING_ATTRIBUTE},
        ExpressionAttributeValues={":mission": MISSION_LISTING},
        ScanIndexForward=False,
    )
    return {"missions": [mission_summary(item) for item in items], "next": next_cursor}


def require_org_scan_id(org_scan_id: str) -> str:
    if not is_org_scan_id(org_scan_id):
        raise BadRequest("org_scan must be an organization scan id (org- and 20 hex digits)")
    return org_scan_id


def org_scan_missions(table: Any, org_scan_id: str, *, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """An organization scan's own item and every account's mission, summarised (aegis.reporting.organization)."""
    require_org_scan_id(org_scan_id)
    if limit is not None or cursor is not None:
        # The whole organization scan is one answer (a few hundred bytes per account): no page to ask for.
        raise BadRequest("limit and next do not apply to org_scan: the answer lists every account")
    org_item = table.get_item(Key={"mission_id": org_scan_key(org_scan_id)}, ConsistentRead=True).get("Item")
    names = {f"#a{i}": name for i, name in enumerate(ORG_ACCOUNT_FIELDS)}
    query: dict[str, Any] = {
        "IndexName": ORG_SCAN_INDEX,
        "KeyConditionExpression": "#org = :org",
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": {"#org": ORG_SCAN_ATTRIBUTE, **names},
        "ExpressionAttributeValues": {":org": org_scan_id},
    }
    items: list[dict[str, Any]] = []
    while True:
        answer = table.query(**query)
        items.extend(answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            break
        query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    if org_item is None and not items:
        raise NotFound(f"no organization scan {org_scan_id}")
    return org_summary(org_item, items)


def require_mission_id(mission_id: str) -> str:
    if not is_mission_id(mission_id):
        raise BadRequest("mission_id must be a mission id (m- and 20 hex digits)")
    return mission_id


def mission_item(table: Any, mission_id: str) -> dict[str, Any]:
    item = table.get_item(Key={"mission_id": require_mission_id(mission_id)}, ConsistentRead=True).get("Item")
    if item is None:
        raise NotFound(f"no mission {mission_id}")
    return dict(item)


def mission_document(missions: Any, audit: Any, mission_id: str) -> tuple[dict[str, Any], MissionReportDocument]:
    """A mission's item and its report document (findings, changes, outcomes, timeline)."""
    item = mission_item(missions, mission_id)
    ref = ReportRef.of_item(item)
    agent_report = read_report(missions, ref) if ref is not None else None
    status = str(item.get("status") or "unknown")
    trail = sorted(read_trail(audit, mission_id), key=lambda record: str(record.get("seq", "")))
    document = assemble_document(
        mission_id=mission_id,
        item=item,
        trail=trail,
        agent_report=agent_report,
        status=status,
        no_report_note=RUNNING_NOTE if status in RUNNING_STATUSES else NO_PLAN_NOTE,
        document_type=MissionReportDocument,
    )
    return item, document


def mission_detail(missions: Any, audit: Any, mission_id: str) -> dict[str, Any]:
    item, document = mission_document(missions, audit, mission_id)
    return {"mission": mission_summary(item), "report": document.model_dump(mode="json")}


def mission_report_html(missions: Any, audit: Any, mission_id: str) -> str:
    _, document = mission_document(missions, audit, mission_id)
    return render_html(document)
