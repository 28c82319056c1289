"""The audit trail, filtered and paged (`GET /audit?mission=&change=&action=&since=`).

Each filter is a key of the Audit table or of an index, so every page is one query: `mission` the table itself
(`mission_id`, `seq`), `change` the `ByChange` index, `action` the `ByAction` index; `since` bounds the range key
`seq`, which starts with the record's UTC time. Several filters: the first of mission, change, action is the query's
key, the others are filters on it. Oldest first, as the trail happened.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aegis.audit import CHANGE_INDEX
from aegis.ids import CHANGE_ID_PATTERN
from aegis.missions_keys import is_mission_id
from aegis.reporting.assembly import audit_details
from aegis_ops.errors import BadRequest
from aegis_ops.items import json_ready
from aegis_ops.paging import page_request, query_page

# The Audit table's index over the records of one action (template.yaml, AuditTable).
ACTION_INDEX = "ByAction"
# The cursor of each query: the table's keys, plus the index's.
TABLE_CURSOR_KEYS = ("mission_id", "seq")
CURSOR_KEYS = {
    None: TABLE_CURSOR_KEYS,
    CHANGE_INDEX: ("change_id", *TABLE_CURSOR_KEYS),
    ACTION_INDEX: ("action", *TABLE_CURSOR_KEYS),
}
# Audit actions are dotted lower-case names (`approval.requested`, `executor.applied`, `killswitch.trigger`).
ACTION_PATTERN = r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$"
# Kill switch operations are audited under this partition (aegis_killswitch), not a mission.
KILLSWITCH_PARTITION = "killswitch"
RECORD_FIELDS = ("mission_id", "seq", "at", "actor", "action", "outcome", "change_id", "chain_position")


def seq_floor(moment: datetime) -> str:
    """The smallest `seq` of a record written at or after `moment` (aegis.audit writes `<UTC time>#<suffix>`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_since(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest("since must be an ISO 8601 time, e.g. 2030-01-31T12:00:00Z") from None
    return seq_floor(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def audit_index(mission: str | None, change: str | None, action: str | None) -> str | None:
    """Which index answers these filters (None: the table); BadRequest for a malformed or missing filter."""
    if mission is not None and not (is_mission_id(mission) or mission == KILLSWITCH_PARTITION):
        raise BadRequest("mission must be a mission id (m- and 20 hex digits) or killswitch")
    if change is not None and not re.fullmatch(CHANGE_ID_PATTERN, change):
        raise BadRequest("change must be a change id (chg- and 20 hex digits)")
    if action is not None and (len(action) > 64 or not re.fullmatch(ACTION_PATTERN, action)):
        raise BadRequest("action must be an audit action such as approval.requested")
    if mission is not None:
        return None
    if change is not None:
        return CHANGE_INDEX
    if action is not None:
        return ACTION_INDEX
    raise BadRequest("give mission, change or action: the audit trail is read by one of them, never whole")


def read_audit(
    table: Any,
    *,
    mission: str | None,
    change: str | None,
    action: str | None,
    since: str | None,
    limit: str | None,
    cursor: str | None,
) -> dict[str, Any]:
    """One page of the records matching the filters (`since` as the caller sent it, ISO 8601)."""
    index = audit_index(mission, change, action)
    page = page_request(limit, cursor, CURSOR_KEYS[index])
    since_seq = parse_since(since)
    keys = {None: ("mission_id", mission), CHANGE_INDEX: ("change_id", change), ACTION_INDEX: ("action", action)}
    key_name, key_value = keys[index]
    names = {"#key": key_name}
    values: dict[str, Any] = {":key": key_value}
    condition = "#key = :key"
    if since_seq is not None:
        condition += " AND seq >= :since"
        values[":since"] = since_seq
    filters = []
    for name, value in (("mission_id", mission), ("change_id", change), ("action", action)):
        if value is not None and name != key_name:
            names[f"#{name}"] = name
            values[f":{name}"] = value
            filters.append(f"#{name} = :{name}")
    query: dict[str, Any] = {
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    if index is not None:
        query["IndexName"] = index
    if filters:
        query["FilterExpression"] = " AND ".join(filters)
    items, cursor = query_page(table, page, **query)
    return {"records": [audit_record(item) for item in items], "next": cursor}


def audit_record(item: dict[str, Any]) -> dict[str, Any]:
    record = {name: json_ready(item[name]) for name in RECORD_FIELDS if item.get(name) is not None}
    record["details"] = audit_details(item)
    return record
