"""Approvals waiting for their approver (`GET /approvals/pending`), from the audit trail alone.

The approval function audits `approval.requested` with what the approver's phone shows (binding message, change
digest, before and after) and later `approval.decided`. The Audit table's `ByAction` index lists the requests of the
approval window (the state machine's approval timeout), newest first; a request whose change has a decision record
since (`ByChange`), or whose CIBA request expired, is no longer pending. The ops function reads neither the Handoff
table nor the execution history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aegis.audit import CHANGE_INDEX
from aegis.reporting.assembly import audit_details
from aegis_ops.audit_trail import ACTION_INDEX, seq_floor

REQUESTED = "approval.requested"
# The records that end a request: a decision (approved, denied, expired, halted, failed), or the approval function
# giving up because the task is no longer awaited (the execution ended).
ENDED = frozenset({"approval.decided", "approval.abandoned"})
# A bound on one answer: more pending approvals than this at once means something else is wrong.
MAX_PENDING = 200
# What a pending approval shows: what the phone shows, and which change of which mission it is.
SHOWN_FIELDS = (
    "change_id",
    "change_digest",
    "binding_message",
    "instruction",
    "kind",
    "resource_arn",
    "region",
    "risk",
    "before_text",
    "after_text",
    "approver_sub",
    "expires_at",
)


def pending_approvals(audit: Any, window_seconds: int, now: Callable[[], datetime]) -> dict[str, Any]:
    moment = now()
    requests = audit.query(
        IndexName=ACTION_INDEX,
        KeyConditionExpression="#action = :requested AND seq >= :since",
        ExpressionAttributeNames={"#action": "action"},
        ExpressionAttributeValues={
            ":requested": REQUESTED,
            ":since": seq_floor(moment - timedelta(seconds=window_seconds)),
        },
        ScanIndexForward=False,
        Limit=MAX_PENDING,
    ).get("Items", [])
    pending = []
    for record in requests:
        details = audit_details(record)
        change_id = record.get("change_id")
        if not isinstance(change_id, str) or _expired(details, moment):
            continue
        if _decided_since(audit, change_id, str(record["seq"])):
            continue
        shown = {name: details[name] for name in SHOWN_FIELDS if name in details}
        pending.append({"mission_id": record["mission_id"], "requested_at": record.get("at"), **shown})
    return {"approvals": pending}


def _expired(details: Mapping[str, Any], moment: datetime) -> bool:
    expires_at = details.get("expires_at")
    if not isinstance(expires_at, str):
        return False
    try:
        deadline = datetime.fromisoformat(expires_at)
    except ValueError:
        return False
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return deadline <= moment


def _decided_since(audit: Any, change_id: str, requested_seq: str) -> bool:
    """Whether the change has a record ending this request since it was made (one query of its later records)."""
    answer = audit.query(
        IndexName=CHANGE_INDEX,
        KeyConditionExpression="change_id = :change AND seq > :requested",
        ExpressionAttributeValues={":change": change_id, ":requested": requested_seq},
    )
    return any(item.get("action") in ENDED for item in answer.get("Items", []))
