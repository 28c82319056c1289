"""The kill switch's halt flag, read before a mission is requested: while it is engaged the agent refuses every new
mission (`mission.refused` / `halted`), so the ops API says so at once instead of answering 202 for nothing."""

from __future__ import annotations

from typing import Any

from aegis.control import halt_state
from aegis_ops.errors import Refused

HALTED = "halted"


def refuse_while_halted(control: Any) -> None:
    state = halt_state(control)
    if state is not None:
        raise Refused(HALTED, f"the kill switch is engaged (since {state.get('engaged_at', '?')}): re-arm it first")
