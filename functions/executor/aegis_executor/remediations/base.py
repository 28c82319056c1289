"""What every remediation is: read the resource, apply the approved change, verify it, undo it.

A remediation acts only through the boto3 Session it is handed (the ephemeral RemediationRole session, narrowed
by a session policy to one change) and only by precise identifiers. It never decides *whether* to act: the
pipeline compares what `read_current` returns with the approved before-state and applies only on a match.

The state predicates (`is_before`, `is_after`, `is_undone`) are per kind because some states are sets that
the change only partly concerns: a change that revokes two rules of a group is about those rules, not about a
third rule someone added since the scan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from boto3.session import Session
from botocore.config import Config

from aegis.catalogue import KINDS, ChangeBase
from aegis.models import Frozen

# Throttling is retried in-process first (standard mode backs off with jitter); only what survives that reaches
# the pipeline, which turns it into Executor.Throttled.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


class NoRemediation(LookupError):
    """A change of a kind that has no registered remediation."""


class RemediationFailed(RuntimeError):
    """AWS accepted the call but reported that part of the change was not made."""


@dataclass(frozen=True)
class Verification:
    ok: bool
    state: Frozen


class Remediation[C: ChangeBase, S: Frozen]:
    """Base class; subclasses register with `@remediation("<kind>")`."""

    kind: ClassVar[str]
    change_type: ClassVar[type[ChangeBase]]

    # --- reading ------------------------------------------------------------------------------------------------
    def read_current(self, session: Session, change: C) -> S:
        """The resource's current state, in the change's state model, read through `session`."""
        raise NotImplementedError

    def is_before(self, current: S, change: C) -> bool:
        """The resource is still in the state the human approved changing."""
        return bool(current == change.before)

    def is_after(self, current: S, change: C) -> bool:
        """The resource is in the state the change promised."""
        return bool(current == change.after)

    def is_undone(self, current: S, change: C) -> bool:
        """The resource is back in the approved before-state (identifiers AWS re-issues may differ)."""
        return self.is_before(current, change)

    # --- acting -------------------------------------------------------------------------------------------------
    def apply(self, session: Session, change: C) -> None:
        raise NotImplementedError

    def undo(self, session: Session, change: C) -> None:
        """Restore `change.before` on a resource that is in `change.after`."""
        raise NotImplementedError

    # --- checking -----------------------------------------------------------------------------------------------
    def verify(self, session: Session, change: C) -> Verification:
        current = self.read_current(session, change)
        return Verification(ok=self.is_after(current, change), state=current)

    def verify_undone(self, session: Session, change: C) -> Verification:
        current = self.read_current(session, change)
        return Verification(ok=self.is_undone(current, change), state=current)

    @staticmethod
    def client(session: Session, service: str, change: ChangeBase) -> Any:
        return session.client(service, region_name=change.region, config=CLIENT_CONFIG)


class SettingRemediation[C: ChangeBase, S: Frozen](Remediation[C, S]):
    """A remediation of a setting whose whole state a change names (a switch, a policy): apply makes it
    `change.after`, undo makes it `change.before` again, both through `write`."""

    def write(self, session: Session, change: C, state: S) -> None:
        """Make the setting exactly `state`."""
        raise NotImplementedError

    def apply(self, session: Session, change: C) -> None:
        self.write(session, change, change.after)

    def undo(self, session: Session, change: C) -> None:
        self.write(session, change, change.before)


REMEDIATIONS: dict[str, Remediation[Any, Any]] = {}


def remediation[R: type[Remediation[Any, Any]]](kind: str) -> Callable[[R], R]:
    """Register a remediation class for a catalogue kind (one instance per kind)."""

    def register(cls: R) -> R:
        if kind not in KINDS or kind == "undo":
            raise NoRemediation(f"{kind!r} is not a forward kind of the catalogue")
        if kind in REMEDIATIONS:
            raise ValueError(f"a remediation for {kind!r} is already registered")
        cls.kind = kind
        cls.change_type = KINDS[kind]
        REMEDIATIONS[kind] = cls()
        return cls

    return register


def remediation_for(change: ChangeBase) -> Remediation[Any, Any]:
    """The remediation of a forward change (an Undo is executed by the remediation of its original)."""
    try:
        return REMEDIATIONS[change.kind]
    except KeyError:
        raise NoRemediation(f"no remediation is registered for kind {change.kind!r}") from None
