"""State the approval function keeps in the Continuations table between invocations (never in an event payload).

- A *continuation* carries an unfinished approval task to a fresh invocation: the task token, the approval request
  (its JSON as the state machine sent it) and the approver, and either the CIBA request being polled (`auth_req_id`,
  `deadline`, `interval`, `next_poll_at`; phase `polling`) or nothing more when the invocation ran short of time
  while waiting for the approver's pacing slot, before any request was sent (phase `pacing`). The fresh invocation
  gets only `{continuation_id}` and takes the item with a conditional update that also strips the task token and
  auth_req_id, so a duplicated asynchronous delivery finds nothing and stops.
- A *claim* marks a task token as being handled, so a duplicated delivery of the Step Functions event does not send
  the approver a second push.
- A *mission wait* (one per execution) holds when the mission's first change was sent for approval, and whether the
  operator has been told that its changes have waited too long (`mission_waiting`, `notice_waiting`). No single CIBA
  request waits long (at most CibaRequestedExpirySeconds), but a mission whose approver does not answer keeps its
  changes waiting one request after another, several approval invocations at once: the wait is the mission's, so it
  is kept where every one of them finds it. It holds no token and no auth_req_id.

The table is the approval role's alone (template.yaml, ContinuationsTable): a task token answers the approval task
and an auth_req_id can be redeemed for the approver's tokens, so neither may sit where the executor or the kill
switch can read. Item ids carry a prefix (`cont-`, `claim-`, `wait-`, and `pace#` for the pacer's items,
aegis_approval.pacing) and a `kind`, so a continuation id handed to the function is never taken for anything else.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from aegis_approval.ciba import CibaRequest
from aegis_approval.errors import ContinuationInvalid

Clock = Callable[[], float]

KIND_CONTINUATION = "continuation"
KIND_CLAIM = "claim"
KIND_MISSION_WAIT = "mission_wait"
CONTINUATION_PREFIX = "cont-"
CLAIM_PREFIX = "claim-"
MISSION_WAIT_PREFIX = "wait-"
# The Continuations table's key (template.yaml).
ITEM_KEY = "id"
# Items outlive the CIBA request by this much, then DynamoDB TTL removes them.
RETENTION_SECONDS = 3600
# A mission wait outlives the mission's latest approval request by this much (each request moves it on).
MISSION_WAIT_RETENTION_SECONDS = 24 * 3600


PHASE_POLLING = "polling"
PHASE_PACING = "pacing"


@dataclass(frozen=True)
class Continuation:
    """An approval task handed over. `request_json` is the ApprovalRequest as the state machine sent it; `ciba` is
    the CIBA request being polled, or None when none was sent yet (the invocation ran out of time waiting to send)."""

    task_token: str = field(repr=False)
    execution_arn: str
    mission_id: str
    approver_sub: str
    request_json: str
    ciba: CibaRequest | None
    hops: int = 0


@dataclass(frozen=True)
class MissionWait:
    """Since when (epoch seconds) the changes of one mission's execution have been waiting for approval, and whether
    the operator has been told they waited too long."""

    since: float
    noticed: bool


def _number(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def mission_wait_id(execution_arn: str) -> str:
    return MISSION_WAIT_PREFIX + hashlib.sha256(execution_arn.encode()).hexdigest()


class ContinuationStore:
    def __init__(self, table: Any, *, clock: Clock = time.time) -> None:
        self._table = table
        self._clock = clock

    def save(self, continuation: Continuation) -> str:
        continuation_id = CONTINUATION_PREFIX + uuid.uuid4().hex
        ciba = continuation.ciba
        item: dict[str, Any] = {
            ITEM_KEY: continuation_id,
            "kind": KIND_CONTINUATION,
            "task_token": continuation.task_token,
            "execution_arn": continuation.execution_arn,
            "mission_id": continuation.mission_id,
            "approver_sub": continuation.approver_sub,
            "request": continuation.request_json,
            "hops": continuation.hops,
        }
        if ciba is None:
            item |= {"phase": PHASE_PACING, "expires_at": int(self._clock()) + RETENTION_SECONDS}
        else:
            item |= {
                "phase": PHASE_POLLING,
                "auth_req_id": ciba.auth_req_id,
                "deadline": _number(ciba.deadline),
                "interval": _number(ciba.interval),
                "next_poll_at": _number(ciba.next_poll_at),
                "expires_at": int(ciba.deadline) + RETENTION_SECONDS,
            }
        self._table.put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": ITEM_KEY},
        )
        return continuation_id

    def take(self, continuation_id: str) -> Continuation | None:
        """Take the continuation, once; None if it was already taken (a duplicate delivery).

        A conditional UpdateItem marks it taken and removes the task token and auth_req_id in the same step (the
        approval role has no DeleteItem on the Continuations table); the rest expires with the item's TTL.
        """
        if not isinstance(continuation_id, str) or not continuation_id.startswith(CONTINUATION_PREFIX):
            raise ContinuationInvalid("not a continuation id")
        try:
            item = self._table.update_item(
                Key={ITEM_KEY: continuation_id},
                UpdateExpression="SET taken_at = :now REMOVE task_token, auth_req_id",
                ConditionExpression="attribute_exists(#id) AND #kind = :kind AND attribute_not_exists(taken_at)",
                ExpressionAttributeNames={"#id": ITEM_KEY, "#kind": "kind"},
                ExpressionAttributeValues={":kind": KIND_CONTINUATION, ":now": _number(self._clock())},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        if not item:
            return None
        try:
            phase = item["phase"]
            if phase not in (PHASE_POLLING, PHASE_PACING):
                raise ValueError(phase)
            ciba = (
                CibaRequest(
                    auth_req_id=str(item["auth_req_id"]),
                    deadline=float(item["deadline"]),
                    interval=float(item["interval"]),
                    next_poll_at=float(item["next_poll_at"]),
                )
                if phase == PHASE_POLLING
                else None
            )
            return Continuation(
                task_token=str(item["task_token"]),
                execution_arn=str(item["execution_arn"]),
                mission_id=str(item["mission_id"]),
                approver_sub=str(item["approver_sub"]),
                request_json=str(item["request"]),
                ciba=ciba,
                hops=int(item.get("hops", 0)),
            )
        except (KeyError, TypeError, ValueError):
            raise ContinuationInvalid("the continuation item is incomplete") from None

    def mission_waiting(self, execution_arn: str) -> MissionWait:
        """The wait of this execution's changes, started now if this is its first approval request. One conditional
        update, whoever comes first: concurrent requests of one mission all get the first one's time."""
        now = self._clock()
        item = self._table.update_item(
            Key={ITEM_KEY: mission_wait_id(execution_arn)},
            UpdateExpression=(
                "SET #kind = :kind, first_requested_at = if_not_exists(first_requested_at, :now), expires_at = :expires"
            ),
            ConditionExpression="attribute_not_exists(#id) OR #kind = :kind",
            ExpressionAttributeNames={"#id": ITEM_KEY, "#kind": "kind"},
            ExpressionAttributeValues={
                ":kind": KIND_MISSION_WAIT,
                ":now": _number(now),
                ":expires": int(now) + MISSION_WAIT_RETENTION_SECONDS,
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return MissionWait(since=float(item["first_requested_at"]), noticed="noticed_at" in item)

    def notice_waiting(self, execution_arn: str) -> bool:
        """Mark the mission's long wait as told; True for the one caller that marked it (and so tells), False when
        another invocation already did."""
        try:
            self._table.update_item(
                Key={ITEM_KEY: mission_wait_id(execution_arn)},
                UpdateExpression="SET noticed_at = :now",
                ConditionExpression="#kind = :kind AND attribute_not_exists(noticed_at)",
                ExpressionAttributeNames={"#kind": "kind"},
                ExpressionAttributeValues={":kind": KIND_MISSION_WAIT, ":now": _number(self._clock())},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_task(self, task_token: str, hold_seconds: float) -> bool:
        """Claim a task token for this invocation; False if another delivery of the same event claimed it."""
        claim_id = CLAIM_PREFIX + hashlib.sha256(task_token.encode()).hexdigest()
        try:
            self._table.put_item(
                Item={
                    ITEM_KEY: claim_id,
                    "kind": KIND_CLAIM,
                    "expires_at": int(self._clock() + hold_seconds) + RETENTION_SECONDS,
                },
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": ITEM_KEY},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
