"""The remediation catalogue: the only changes AegisCloud can ever propose or apply.

A closed pydantic discriminated union on `kind`. The agent builds members of it; the approval half shows them to a
human; the executor applies exactly the approved member. No free-form API call exists anywhere.

This package is the plumbing: the registry (`KINDS`), parsing, digests and the IAM actions the kinds declare. Each
kind lives in its own module, `aegis.catalogue.kinds.<kind>`, which callers import the kind's classes from; state
models that several kinds share are in `aegis.catalogue.states`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from aegis.catalogue.base import ApprovalTextTooLong, ChangeBase, RegionScope, WideningChange
from aegis.catalogue.forward import FORWARD_KINDS, ForwardChange
from aegis.catalogue.undo import Undo
from aegis.models import canonical_json, sha256_hex
from aegis.secrets_guard import error_location, error_message

ProposedChange = Annotated[ForwardChange | Undo, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ProposedChange)

_EVERY_KIND: tuple[type[ChangeBase], ...] = (*FORWARD_KINDS, Undo)
KINDS: dict[str, type[ChangeBase]] = {cls.model_fields["kind"].default: cls for cls in _EVERY_KIND}


class InvalidChange(ValueError):
    """Input that is not an exact member of the catalogue (unknown kind, extra field, forged id, widening).

    `where` is the path of the first field at fault: safe to record, unlike the message, which may quote input."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


def parse_change(data: Any) -> ChangeBase:
    """Validate untrusted input (a dict or JSON text) into a catalogue member."""
    try:
        if isinstance(data, str | bytes):
            return _ADAPTER.validate_json(data)
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = error_location(first.get("loc", ()))
        raise InvalidChange(f"not a valid ProposedChange: {where}: {error_message(first)}", where=where) from None


def forward_target(change: ChangeBase) -> ChangeBase:
    """The forward change whose resource and remediation a change concerns: itself, or what an Undo undoes."""
    return change.original if isinstance(change, Undo) else change


Direction = Literal["forward", "undo"]


def declared_actions(direction: Direction | None = None) -> frozenset[str]:
    """The IAM actions the remediation kinds declare for one direction: exactly what RemediationRole ("forward":
    apply and read) or UndoRole ("undo": undo and read) grants. Without a direction, both together."""
    directions: tuple[Direction, ...] = (direction,) if direction else ("forward", "undo")
    actions: set[str] = set()
    for kind in FORWARD_KINDS:
        actions.update(kind.READ_ACTIONS)
        if "forward" in directions:
            actions.update(kind.APPLY_ACTIONS)
        if "undo" in directions:
            actions.update(kind.UNDO_ACTIONS)
    return frozenset(actions)


def direction_of(change: ChangeBase) -> Direction:
    """Which remediation role a change needs: an undo may widen access, so it has a role of its own."""
    return "undo" if isinstance(change, Undo) else "forward"


def plan_digest(changes: Sequence[ChangeBase]) -> str:
    """One digest for a whole plan: SHA-256 over the canonical list of (change id, change digest). The agent's
    approval request commits to it, and the validator's verdict names the same digest for the plan it accepted."""
    return sha256_hex(canonical_json([[c.change_id, c.digest] for c in changes]))


__all__ = [
    "FORWARD_KINDS",
    "KINDS",
    "ApprovalTextTooLong",
    "ChangeBase",
    "Direction",
    "ForwardChange",
    "InvalidChange",
    "ProposedChange",
    "RegionScope",
    "Undo",
    "WideningChange",
    "declared_actions",
    "direction_of",
    "forward_target",
    "parse_change",
    "plan_digest",
]
