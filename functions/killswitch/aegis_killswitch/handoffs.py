"""Purging sealed approvals nobody consumed: every one of them when the kill switch is triggered, and those of one
execution when it ends (an EventBridge rule on the mission state machine's terminal status changes invokes the kill
switch with the event).

The purger finds handoffs through the Handoff table's keys-only index on `execution_arn` and deletes them with
BatchWriteItem, the only calls KillSwitchRole may make on that table and index (template.yaml). Neither can return
a stored attribute beyond the two keys: a keys-only global index never reaches the table's other attributes, and
BatchWriteItem returns no item (unlike DeleteItem, whose ReturnValuesOnConditionCheckFailure no IAM condition key
can forbid). So the kill switch destroys approvals without ever holding a ciphertext, let alone a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aegis_auth.handoff_table import EXECUTION_ATTRIBUTE, EXECUTION_INDEX, HANDOFF_KEY

# BatchWriteItem takes at most 25 requests.
_BATCH = 25
# Unprocessed items (throttling) are sent again this many times, with a growing pause, before they are reported.
_ATTEMPTS = 5
_FIRST_PAUSE_SECONDS = 0.05


@dataclass
class PurgeResult:
    found: int = 0
    deleted: int = 0
    # Handoff ids DynamoDB still left unprocessed after every attempt.
    left: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.left


class HandoffPurger:
    def __init__(self, table: Any, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._table = table
        self._sleep = sleep

    def of_execution(self, execution_arn: str) -> PurgeResult:
        """Delete every handoff sealed for `execution_arn`."""
        return self._delete(self._query(execution_arn))

    def everything(self) -> PurgeResult:
        """Delete every handoff in the table (the kill switch trigger: no approval survives a halt)."""
        return self._delete(self._scan())

    def _query(self, execution_arn: str) -> Iterator[str]:
        request: dict[str, Any] = {
            "IndexName": EXECUTION_INDEX,
            "KeyConditionExpression": "#execution = :execution",
            "ExpressionAttributeNames": {"#execution": EXECUTION_ATTRIBUTE},
            "ExpressionAttributeValues": {":execution": execution_arn},
        }
        yield from self._paged(self._table.query, request)

    def _scan(self) -> Iterator[str]:
        yield from self._paged(self._table.scan, {"IndexName": EXECUTION_INDEX})

    @staticmethod
    def _paged(call: Callable[..., dict[str, Any]], request: dict[str, Any]) -> Iterator[str]:
        while True:
            page = call(**request)
            for item in page.get("Items", []):
                handoff_id = item.get(HANDOFF_KEY)
                if isinstance(handoff_id, str) and handoff_id:
                    yield handoff_id
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    def _delete(self, handoff_ids: Iterable[str]) -> PurgeResult:
        result = PurgeResult()
        batch: list[str] = []
        for handoff_id in handoff_ids:
            if handoff_id in batch:
                continue
            batch.append(handoff_id)
            result.found += 1
            if len(batch) == _BATCH:
                self._write(batch, result)
                batch = []
        if batch:
            self._write(batch, result)
        return result

    def _write(self, handoff_ids: list[str], result: PurgeResult) -> None:
        client = self._table.meta.client
        name = self._table.name
        pending = [{"DeleteRequest": {"Key": {HANDOFF_KEY: handoff_id}}} for handoff_id in handoff_ids]
        pause = _FIRST_PAUSE_SECONDS
        for attempt in range(_ATTEMPTS):
            unprocessed = client.batch_write_item(RequestItems={name: pending}).get("UnprocessedItems") or {}
            left = unprocessed.get(name) or []
            result.deleted += len(pending) - len(left)
            pending = left
            if not pending:
                return
            if attempt < _ATTEMPTS - 1:
                self._sleep(pause)
                pause *= 2
        result.left += [str(request["DeleteRequest"]["Key"][HANDOFF_KEY]) for request in pending]
