"""What the executor already did for one change of one execution, kept beside the Powertools idempotency records.

Powertools Idempotency returns the stored result of a completed invocation. It cannot help when an invocation dies
after changing the resource but before its result was stored (a timeout, a crash, an error on the way out): its
record is then deleted or left to expire, a retry runs again — and the approval is already consumed. So the
pipeline writes here, as it goes, that an apply has started and then its result; a retry finds the result (or the
fact that an apply had started) and returns that instead of failing with a consumed approval or reporting nothing.

Items live in the Idempotency table (key `id`, TTL `expiration`) under their own prefix, so Powertools' keys
(`<function>#<hash>`) never collide with them and the executor needs no further table permission.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aegis.models import canonical_json, sha256_hex

KEY_PREFIX = "executor-ledger#"
LEDGER_TTL_SECONDS = 7 * 24 * 3600
APPLYING = "applying"
DONE = "done"
INTERRUPTED_REASON = (
    "an earlier invocation was interrupted after it started changing the resource; its outcome is unknown until the "
    "resource is scanned again"
)


class Ledger:
    def __init__(
        self, table: Any, *, ttl_seconds: int = LEDGER_TTL_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    @staticmethod
    def key(execution_arn: str, change_id: str) -> str:
        return KEY_PREFIX + sha256_hex(canonical_json([execution_arn, change_id]))

    def recorded_result(self, execution_arn: str, change_id: str) -> dict[str, Any] | None:
        """The result recorded for this change of this execution; a `failed` result if an apply had started and
        never finished; None if nothing had started."""
        item = self._table.get_item(Key={"id": self.key(execution_arn, change_id)}, ConsistentRead=True).get("Item")
        if not item:
            return None
        if item.get("status") == DONE:
            result = json.loads(str(item["result"]))
            return result if isinstance(result, dict) else None
        return {"change_id": change_id, "outcome": "failed", "reason": INTERRUPTED_REASON, "verified_after": None}

    def started(self, execution_arn: str, change_id: str) -> None:
        """Record, before the first mutating call, that this change is being applied."""
        self._put(execution_arn, change_id, {"status": APPLYING})

    def finished(self, execution_arn: str, change_id: str, result: dict[str, Any]) -> None:
        self._put(execution_arn, change_id, {"status": DONE, "result": canonical_json(result)})

    def _put(self, execution_arn: str, change_id: str, attributes: dict[str, Any]) -> None:
        self._table.put_item(
            Item={
                "id": self.key(execution_arn, change_id),
                "expiration": int(self._clock()) + self._ttl_seconds,
                **attributes,
            }
        )
