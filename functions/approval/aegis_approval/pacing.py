"""Pacing of pushes per approver: no approver is sent more than `limit` CIBA requests in any sliding window.

Auth0 accepts at most 5 backchannel authentication requests per user per minute and answers the sixth with 429
`too_many_requests`. Approval invocations run concurrently (a Map of requests, two approvers of a two-person change,
several missions), so the count has to be shared: one item per approver in the Continuations table,
`pace#<sub>`, holds the send times of that approver's last `limit` requests and a version. Taking a slot reads the
item, and writes it back with the new time only if the version is still the one read (optimistic concurrency): of
two invocations that read the same state, one write wins and the other reads again and decides anew, so the log
never holds more than `limit` times within a window.

The approval role may only PutItem and UpdateItem on its table (template.yaml, ApprovalRole): it has no GetItem
there, since the table holds task tokens and auth_req_ids. The read is therefore an UpdateItem that sets nothing
but the item's kind and returns the item (creating it on an approver's first request). The item holds no secret:
an approver id and times.

A slot is taken just before each bc-authorize attempt and is spent even if the attempt fails, since the provider may
have counted it. The window is kept a little longer than the provider's (`margin`), because the time recorded here
is taken before the request travels to the provider, which counts it on arrival.

Time comes from an injectable clock so that tests never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from aegis_approval.continuation import ITEM_KEY

Clock = Callable[[], float]

KIND_PACE = "pace"
PACE_PREFIX = "pace#"
WINDOW_SECONDS = 60.0
# Seconds added to the window: the request reaches the provider after its time is recorded here.
MARGIN_SECONDS = 1.0
# Concurrent invocations that keep winning the race: give up after this many lost writes in a row (each loss means
# another invocation took a slot, so the approver is being asked anyway).
MAX_CONFLICTS = 20
# The item outlives its newest send time by this much, then DynamoDB TTL removes it.
RETENTION_SECONDS = 3600
PUSHES_PER_MINUTE_DEFAULT = 5
PUSHES_PER_MINUTE_RANGE = range(1, 61)


class PacingContended(RuntimeError):
    """Too many concurrent invocations kept taking the approver's slots first: no slot could be recorded."""


def pace_id(approver_sub: str) -> str:
    return PACE_PREFIX + approver_sub


def _number(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class ApproverPacer:
    """Slots of `limit` requests per approver per `window` seconds, shared through the Continuations table."""

    def __init__(
        self,
        table: Any,
        *,
        limit: int = PUSHES_PER_MINUTE_DEFAULT,
        window: float = WINDOW_SECONDS,
        margin: float = MARGIN_SECONDS,
        clock: Clock = time.time,
        max_conflicts: int = MAX_CONFLICTS,
    ) -> None:
        if limit not in PUSHES_PER_MINUTE_RANGE:
            raise ValueError(
                f"the push limit must be {PUSHES_PER_MINUTE_RANGE.start}..{PUSHES_PER_MINUTE_RANGE.stop - 1}"
            )
        self._table = table
        self.limit = limit
        self.window = window + margin
        self._clock = clock
        self._max_conflicts = max_conflicts
        # Lost writes so far (a race with another invocation); tests and logs read it.
        self.conflicts = 0

    def take(self, approver_sub: str) -> float:
        """Take a slot for a request to `approver_sub` sent now: 0.0 when taken; otherwise the seconds until the
        oldest of the approver's last `limit` requests leaves the window (nothing is taken then).

        Raises PacingContended when other invocations won the write `max_conflicts` times in a row."""
        if not approver_sub:
            raise ValueError("an approver is required")
        for _ in range(self._max_conflicts):
            sent, version = self._read(approver_sub)
            now = self._clock()
            recent = sorted(t for t in sent if t > now - self.window)
            if len(recent) >= self.limit:
                # Only the last `limit` are kept, so the oldest kept one is the one that must leave the window.
                return max(recent[len(recent) - self.limit] + self.window - now, 0.001)
            if self._write(approver_sub, [*recent, now][-self.limit :], version, now):
                return 0.0
            self.conflicts += 1
        raise PacingContended(f"no pacing slot could be recorded after {self._max_conflicts} concurrent writes")

    def _read(self, approver_sub: str) -> tuple[list[float], int]:
        """The approver's send times and version. An UpdateItem that changes nothing but makes sure the item exists:
        the approval role has no GetItem on this table."""
        item = self._table.update_item(
            Key={ITEM_KEY: pace_id(approver_sub)},
            UpdateExpression="SET #kind = :kind, #version = if_not_exists(#version, :zero)",
            ConditionExpression="attribute_not_exists(#id) OR #kind = :kind",
            ExpressionAttributeNames={"#id": ITEM_KEY, "#kind": "kind", "#version": "version"},
            ExpressionAttributeValues={":kind": KIND_PACE, ":zero": 0},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        sent = item.get("sent", [])
        return [float(value) for value in sent], int(item["version"])

    def _write(self, approver_sub: str, sent: list[float], version: int, now: float) -> bool:
        """Store `sent` if the item is still at `version`; False if another invocation wrote first."""
        try:
            self._table.update_item(
                Key={ITEM_KEY: pace_id(approver_sub)},
                UpdateExpression="SET sent = :sent, #version = :next, expires_at = :expires",
                ConditionExpression="#kind = :kind AND #version = :version",
                ExpressionAttributeNames={"#kind": "kind", "#version": "version"},
                ExpressionAttributeValues={
                    ":kind": KIND_PACE,
                    ":sent": [_number(t) for t in sent],
                    ":version": version,
                    ":next": version + 1,
                    ":expires": int(now) + RETENTION_SECONDS,
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True
