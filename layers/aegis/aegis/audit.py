"""The append-only audit trail: one item per event, written with a condition so nothing is ever overwritten (should
the condition fail, the `seq` was taken and nothing was written: the record is written again under a fresh `seq`).

Details are checked for secret-shaped values before writing: the audit trail must be safe to show anyone.

Items are keyed by mission (`mission_id`, `seq`). A record about one change (its details name a `change_id` of the
catalogue's form) also carries that id as a top-level attribute, so the Audit table's `ByChange` index (`change_id`,
`seq`) finds every record of a change across missions: the validator looks there for the `executor.applied`
record an undo must name. The index is eventually consistent; the executor's drift check stays the backstop.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from aegis.ids import CHANGE_ID_PATTERN
from aegis.models import canonical_json, sha256_hex
from aegis.secrets_guard import refuse_secrets

# The Audit table's global secondary index over the records of one change (template.yaml, AuditTable).
CHANGE_INDEX = "ByChange"
CHANGE_ATTRIBUTE = "change_id"
# The Audit table's local secondary index over each mission's linked records, by chain position (aegis.audit_chain).
CHAIN_POSITION_INDEX = "ByChainPosition"
CONDITION_FAILED = "ConditionalCheckFailedException"


# A conditional-check failure on an append means its `seq` was taken (nothing was written): the record is written again
# under a fresh `seq`, at most this many times in all.
APPEND_ATTEMPTS = 3


class AuditLog:
    def __init__(self, table: Any, actor: str) -> None:
        self._table = table
        self._actor = actor

    def append(self, mission_id: str, action: str, outcome: str, **details: Any) -> dict[str, Any]:
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            try:
                return self._append_once(mission_id, action, outcome, details)
            except ClientError as exc:
                if attempt == APPEND_ATTEMPTS or exc.response.get("Error", {}).get("Code") != CONDITION_FAILED:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _append_once(self, mission_id: str, action: str, outcome: str, details: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        item: dict[str, Any] = {
            "mission_id": mission_id,
            "seq": f"{now.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{uuid.uuid4().hex[:12]}",
            "at": now.isoformat(),
            "actor": self._actor,
            "action": action,
            "outcome": outcome,
            "details": canonical_json(details),
        }
        change_id = details.get(CHANGE_ATTRIBUTE)
        if isinstance(change_id, str) and re.fullmatch(CHANGE_ID_PATTERN, change_id):
            item[CHANGE_ATTRIBUTE] = change_id
        refuse_secrets(details, where=f"audit[{action}]")
        item["checksum"] = sha256_hex(canonical_json({k: v for k, v in item.items() if k != "checksum"}))
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(seq)")
        return item


def read_trail(table: Any, mission_id: str) -> list[dict[str, Any]]:
    """Every audit item of a mission, oldest first."""
    return _query_all(table, KeyConditionExpression="mission_id = :m", ExpressionAttributeValues={":m": mission_id})


def change_trail(table: Any, change_id: str) -> list[dict[str, Any]]:
    """Every audit item about one change, in any mission, oldest first (through the ByChange index)."""
    return _query_all(
        table,
        IndexName=CHANGE_INDEX,
        KeyConditionExpression="change_id = :c",
        ExpressionAttributeValues={":c": change_id},
    )


def read_chained_after(table: Any, mission_id: str, position: int) -> list[dict[str, Any]]:
    """The mission's records linked after chain position `position`, in chain order: the incremental reader's cursor.

    Positions are given by the one chainer in the order the table committed the records (aegis.audit_chain), so a
    reader that remembers the last position it saw misses nothing, whereas a cursor on `seq` (the writer's clock) can
    pass a record that a slower concurrent writer commits later with an earlier time. Records appear here once
    linked, a stream delay after they are written."""
    return _query_all(
        table,
        IndexName=CHAIN_POSITION_INDEX,
        KeyConditionExpression="mission_id = :m AND chain_position > :p",
        ExpressionAttributeValues={":m": mission_id, ":p": position},
    )


def _query_all(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of a query. Both the table and ByChange sort on `seq`, a timestamp first: oldest first."""
    items: list[dict[str, Any]] = []
    while True:
        page = table.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
