"""`POST /changes/{change_id}/undo`: request the undo of an applied change, by putting the `aegis.undo` event the
agent's `UndoRequestRule` delivers. The agent plans `Undo.of(original)` from the audited `executor.applied` record,
and the undo then goes through the validator, the approver's phone and the executor like any change.

Refused up front (HTTP 409, nothing put) by the validator's own rules (aegis_validator.rules), so that a caller
learns at once what the mission would be refused for:

- `undo-disabled`: the deployment configures no undo connection (no UndoRole exists);
- `undo-not-applied`: no `executor.applied` record of this change in this account;
- `undo-already-undone`: its undo was applied after the change was last applied.

The agent and the validator check again when the mission runs (the audit index is eventually consistent, and the
resource may have moved on since), and the executor's drift check is the last word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from aegis.audit import change_trail
from aegis.catalogue import Undo
from aegis.ids import CHANGE_ID_PATTERN
from aegis.reporting.assembly import audit_details
from aegis_ops.errors import BadRequest, Refused
from aegis_ops.events import UNDO_DETAIL_TYPE, UNDO_SOURCE, put_event

# The agent's bound on who requested an undo (aegis_agent.events.REQUESTER_PATTERN): it is stored in the mission.
REQUESTER_PATTERN = r"^[A-Za-z0-9|@._:+\-]{1,128}$"
APPLIED = ("executor", "executor.applied", "applied")


def require_change_id(change_id: str) -> str:
    if not re.fullmatch(CHANGE_ID_PATTERN, change_id):
        raise BadRequest("change_id must be a change id (chg- and 20 hex digits)")
    return change_id


def applied_records(records: Sequence[Mapping[str, Any]], change_id: str, account_id: str) -> list[Mapping[str, Any]]:
    """The records of `records` saying the executor applied `change_id` in `account_id`."""
    found = []
    for record in records:
        if (record.get("actor"), record.get("action"), record.get("outcome")) != APPLIED:
            continue
        details = audit_details(record)
        execution_arn = details.get("execution_arn")
        if details.get("change_id") != change_id or not isinstance(execution_arn, str):
            continue
        if execution_arn.split(":")[4:5] == [account_id]:
            found.append(record)
    return found


def refusal(audit: Any, change_id: str, *, account_id: str, undo_enabled: bool) -> Refused | None:
    """Why an undo of `change_id` would be refused now (None: it may be requested)."""
    if not undo_enabled:
        return Refused("undo-disabled", "undo is disabled in this deployment (no UndoTokenVaultConnection)")
    applied = applied_records(change_trail(audit, change_id), change_id, account_id)
    if not applied:
        return Refused("undo-not-applied", f"change {change_id} was never applied in this account")
    last = max(applied, key=lambda record: str(record["seq"]))
    digest = audit_details(last).get("digest")
    if not isinstance(digest, str):
        return Refused("undo-not-applied", f"the applied record of change {change_id} names no digest")
    undo_id = Undo.change_id_of(change_id, digest)
    undone = applied_records(change_trail(audit, undo_id), undo_id, account_id)
    if undone and max(str(record["seq"]) for record in undone) > str(last["seq"]):
        return Refused("undo-already-undone", f"change {change_id} was undone after it was last applied")
    return None


def request_undo(
    audit: Any, events: Any, change_id: str, requested_by: str, *, account_id: str, undo_enabled: bool, bus_name: str
) -> dict[str, str]:
    """`{change_id, event_id, mission_id}` of the undo mission requested; Refused or BadRequest otherwise."""
    require_change_id(change_id)
    if not re.fullmatch(REQUESTER_PATTERN, requested_by):
        raise BadRequest("the caller's subject cannot be recorded as the requester of an undo")
    refused = refusal(audit, change_id, account_id=account_id, undo_enabled=undo_enabled)
    if refused is not None:
        raise refused
    detail = {"change_id": change_id, "requested_by": requested_by}
    return {"change_id": change_id, **put_event(events, bus_name, UNDO_SOURCE, UNDO_DETAIL_TYPE, detail)}
