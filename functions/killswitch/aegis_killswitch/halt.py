"""Writing the halt flag (`aegis.control` reads it). Every write is conditional, so concurrent triggers and
re-arms cannot overwrite each other's record: the first trigger's `engaged_at`/`engaged_by` stay until re-arm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aegis.control import HALT_ITEM

# Approvers the kill switch blocked at Auth0 (and only those: a user an administrator blocked stays blocked).
BLOCKED_APPROVERS = "blocked_approvers"


@dataclass(frozen=True)
class FlagChange:
    changed: bool
    item: dict[str, Any]


def _conditional_failed(table: Any, error: Exception) -> bool:
    return isinstance(error, table.meta.client.exceptions.ConditionalCheckFailedException)


def _read(table: Any) -> dict[str, Any]:
    return dict(table.get_item(Key={"name": HALT_ITEM}, ConsistentRead=True).get("Item") or {})


def engage(table: Any, *, at: str, by: str, reason: str, operation_id: str) -> FlagChange:
    """Engage the flag unless it is engaged already; either way the flag is engaged when this returns."""
    return _write(table, engaged=True, at=at, by=by, reason=reason, operation_id=operation_id)


def release(table: Any, *, at: str, by: str, reason: str, operation_id: str) -> FlagChange:
    """Release the flag if it is engaged; releasing a released flag changes nothing."""
    return _write(table, engaged=False, at=at, by=by, reason=reason, operation_id=operation_id)


def _write(table: Any, *, engaged: bool, at: str, by: str, reason: str, operation_id: str) -> FlagChange:
    # Who engaged (or released) the flag, when and why, in attributes of their own: a release keeps the record of
    # the engagement it ends.
    record = "engaged" if engaged else "released"
    try:
        table.update_item(
            Key={"name": HALT_ITEM},
            UpdateExpression=(
                f"SET engaged = :{record}, {record}_at = :at, {record}_by = :by, {record}_reason = :reason, "
                f"{record}_operation = :operation"
            ),
            ConditionExpression="attribute_not_exists(engaged) OR engaged = :released"
            if engaged
            else "engaged = :engaged",
            ExpressionAttributeValues={
                ":engaged": True,
                ":released": False,
                ":at": at,
                ":by": by,
                ":reason": reason,
                ":operation": operation_id,
            },
        )
        changed = True
    except Exception as error:
        if not _conditional_failed(table, error):
            raise
        changed = False
    return FlagChange(changed=changed, item=_read(table))


def is_engaged(table: Any) -> bool:
    return bool(_read(table).get("engaged"))


def is_engaged_shared(table: Any) -> bool:
    """`is_engaged` safe to call from several threads at once: through the Table's client (clients are thread-safe,
    resources are not), which takes and gives plain Python values as the Table does."""
    item = table.meta.client.get_item(TableName=table.name, Key={"name": HALT_ITEM}, ConsistentRead=True).get("Item")
    return bool((item or {}).get("engaged"))


def remember_blocked_approvers(table: Any, subs: set[str]) -> None:
    _update_blocked(table, "ADD", subs)


def blocked_approvers(table: Any) -> set[str]:
    return set(_read(table).get(BLOCKED_APPROVERS) or set())


def forget_blocked_approvers(table: Any, subs: set[str]) -> None:
    # DELETE removes only these members, so an approver blocked by a concurrent trigger is not forgotten.
    _update_blocked(table, "DELETE", subs)


def _update_blocked(table: Any, action: str, subs: set[str]) -> None:
    if subs:
        table.update_item(
            Key={"name": HALT_ITEM},
            UpdateExpression=f"{action} {BLOCKED_APPROVERS} :subs",
            ExpressionAttributeValues={":subs": subs},
        )
