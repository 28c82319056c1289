"""Approvals waiting for their approver (`GET /approvals/pending`), from the audit trail alone.

The approval function audits `approval.requested` with what the approver's phone shows (binding message, change
digest, before and after) and later `approval.decided`. The Audit table's `ByAction` index lists the requests of the
approval window (the state machine's approval timeout), newest first; a request whose change has a decision record
since (`ByChange`), or whose CIBA request expired, is no longer pending. The ops function reads neither the Handoff
table nor the execution history.

A batch (one request for many changes, approved on its Merkle root) names no single change: it is listed with what
its phone shows (count, kinds, root, the review link) and its request id, and it stops being pending once its
approver's decision on that request is recorded (the mission's records after the request, read by the table's key).
The console's request page shows every change of the batch from the same record (`GET /missions/{id}`).
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
    "request_id",
    "request_kind",
    "analyst",  # the analyst's advisory note, as the phone shows it (a single request with a note only)
)
# What a pending batch shows besides: what its phone shows (the batch RAR's properties) and where to review it.
BATCH_FIELDS = ("count", "kinds", "merkle_root", "review_url", "approvers")


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
        if _expired(details, moment):
            continue
        change_id = record.get("change_id")
        if isinstance(change_id, str):
            if _decided_since(audit, change_id, str(record["seq"])):
                continue
            shown = {name: details[name] for name in SHOWN_FIELDS if name in details}
        elif details.get("request_kind") == "batch" and isinstance(details.get("request_id"), str):
            if _request_decided_since(audit, record, details):
                continue
            shown = {name: details[name] for name in (*SHOWN_FIELDS, *BATCH_FIELDS) if name in details}
        else:
            continue
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


def _request_decided_since(audit: Any, requested: Mapping[str, Any], details: Mapping[str, Any]) -> bool:
    """Whether the mission holds a record ending this batch request for this approver since it was made: the
    mission's later records by the table's key (a batch's records carry no change id), ending ones kept."""
    ending = {f":ended{index}": action for index, action in enumerate(sorted(ENDED))}
    query: dict[str, Any] = {
        "KeyConditionExpression": "mission_id = :mission AND seq > :requested",
        "FilterExpression": f"#action IN ({', '.join(ending)})",
        "ExpressionAttributeNames": {"#action": "action"},
        "ExpressionAttributeValues": {
            ":mission": requested["mission_id"],
            ":requested": str(requested["seq"]),
            **ending,
        },
    }
    while True:
        answer = audit.query(**query)
        for item in answer.get("Items", []):
            found = audit_details(item)
            if found.get("request_id") == details.get("request_id") and found.get("approver_sub") == details.get(
                "approver_sub"
            ):
                return True
        if "LastEvaluatedKey" not in answer:
            return False
        query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
