"""The organization-wide blast-radius cap (MAX_CHANGES_PER_ORG_SCAN): the plans of one organization scan's accounts
together propose at most `max_changes` changes.

The organization scan's own item (`org#<org scan id>`, written by OrgScanFunction with `max_changes` and
`reserved_changes: 0`) holds the running total. An account's plan reserves what it proposes with one conditional
UpdateItem that can never take `reserved_changes` past `max_changes` (DynamoDB evaluates the condition and the ADD
atomically, so accounts planning at the same time cannot overshoot together). It is granted the most of its changes
that still fit, whole findings only (a finding split into several changes for the approver's screen is never half
planned); the grant is then recorded on the mission item, so that planning the same mission again reuses it instead
of reserving twice. A crash between the two writes leaves a reservation nobody uses: fewer changes, never more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from aegis.missions_keys import org_scan_key

GRANT_ATTRIBUTE = "org_changes_granted"
# Optimistic retries when other accounts reserve between our read and our write; each retry re-reads the total.
MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class OrgGrant:
    granted: int  # changes this mission may propose
    requested: int  # changes its plan had
    max_changes: int  # the organization scan's cap (0 when the organization scan has no item)
    reserved_before: int  # what other accounts had reserved when this grant was made


def fitting(group_sizes: Sequence[int], remaining: int) -> int:
    """The most changes, in plan order and whole groups only, that fit in `remaining`."""
    total = 0
    for size in group_sizes:
        if total + size > remaining:
            break
        total += size
    return total


class OrgCap:
    def __init__(self, missions_table: Any) -> None:
        self._table = missions_table

    def reserve(self, org_scan_id: str, mission_id: str, group_sizes: Sequence[int]) -> OrgGrant:
        """Reserve this mission's changes (`group_sizes`: changes per finding, in plan order) on the organization
        scan; the grant, recorded on the mission item."""
        requested = sum(group_sizes)
        mission = self._table.get_item(Key={"mission_id": mission_id}, ConsistentRead=True).get("Item") or {}
        org_key = org_scan_key(org_scan_id)
        if GRANT_ATTRIBUTE in mission:
            org = self._org_item(org_key)
            return OrgGrant(int(mission[GRANT_ATTRIBUTE]), requested, _int(org, "max_changes"), -1)
        for _ in range(MAX_ATTEMPTS):
            org = self._org_item(org_key)
            if org is None:
                # No organization scan recorded (OrgScanFunction writes it before any account is scanned): nothing
                # can be counted against its cap, so nothing is granted.
                return self._record(mission_id, OrgGrant(0, requested, 0, 0))
            maximum, reserved = _int(org, "max_changes"), _int(org, "reserved_changes")
            granted = fitting(group_sizes, max(0, maximum - reserved))
            if granted == 0:
                return self._record(mission_id, OrgGrant(0, requested, maximum, reserved))
            try:
                self._table.update_item(
                    Key={"mission_id": org_key},
                    UpdateExpression="ADD reserved_changes :n",
                    ConditionExpression="attribute_exists(mission_id) AND reserved_changes <= :limit",
                    ExpressionAttributeValues={":n": granted, ":limit": maximum - granted},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue  # another account reserved first: read the total again
            return self._record(mission_id, OrgGrant(granted, requested, maximum, reserved))
        # Contended beyond reason: fail closed, this account proposes nothing.
        return self._record(mission_id, OrgGrant(0, requested, 0, 0))

    def _org_item(self, key: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"mission_id": key}, ConsistentRead=True).get("Item")
        return dict(item) if item is not None else None

    def _record(self, mission_id: str, grant: OrgGrant) -> OrgGrant:
        self._table.update_item(
            Key={"mission_id": mission_id},
            UpdateExpression="SET #g = :g",
            ConditionExpression="attribute_exists(mission_id)",
            ExpressionAttributeNames={"#g": GRANT_ATTRIBUTE},
            ExpressionAttributeValues={":g": grant.granted},
        )
        return grant


def _int(item: Any, name: str) -> int:
    return int((item or {}).get(name) or 0)
