"""The halt flag in the Control table. The agent, approval and executor functions read it on entry (the executor
again before every attempt of a mutating call); only the kill switch writes it."""

from __future__ import annotations

from typing import Any

HALT_ITEM = "halt"


class Halted(RuntimeError):
    """The kill switch is engaged: no mission may proceed."""


def halt_state(control_table: Any) -> dict[str, Any] | None:
    """The halt item if the kill switch is engaged, else None. Strongly consistent: a halt must be seen at once."""
    item = control_table.get_item(Key={"name": HALT_ITEM}, ConsistentRead=True).get("Item")
    if item and item.get("engaged"):
        return dict(item)
    return None


def ensure_not_halted(control_table: Any) -> None:
    state = halt_state(control_table)
    if state is not None:
        raise Halted(f"kill switch engaged at {state.get('engaged_at', '?')} by {state.get('engaged_by', '?')}")
