"""Undo: restore the before-state of a change that was applied. It goes through the same approval and executor
path as any change; it is the one kind that may widen access, because it restores what a human had approved away."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import model_validator

from aegis.catalogue.base import ChangeBase, Phase, change_id_of_identity
from aegis.catalogue.forward import ForwardChange
from aegis.models import Risk


class Undo(ChangeBase):
    kind: Literal["undo"] = "undo"
    original: ForwardChange

    TITLE = "Undo an applied change"

    @classmethod
    def of(cls, original: ChangeBase) -> Undo:
        return cls.propose(
            original=original,
            check_id=original.check_id,
            resource_arn=original.resource_arn,
            account_id=original.account_id,
            region=original.region,
            risk=Risk.HIGH,
        )

    @model_validator(mode="after")
    def _same_resource(self) -> Self:
        o = self.original
        if (self.resource_arn, self.account_id, self.region) != (o.resource_arn, o.account_id, o.region):
            raise ValueError("an undo must name the resource of the change it undoes")
        return self

    def identity(self) -> Any:
        return self.identity_of(self.original.change_id, self.original.digest)

    @staticmethod
    def identity_of(original_change_id: str, original_digest: str) -> dict[str, str]:
        return {"kind": "undo", "original": original_change_id, "digest": original_digest}

    @classmethod
    def change_id_of(cls, original_change_id: str, original_digest: str) -> str:
        """The id of every undo of the change `original_change_id` with `original_digest`, without building one
        (an audit record names the original's id and digest, not the whole change)."""
        return change_id_of_identity(cls.identity_of(original_change_id, original_digest))

    def assert_narrows(self) -> None:
        """Restoring an approved before-state is the point; nothing to check beyond the original's validation."""

    # Derived, not stored: an undo's states are its original's, swapped. (mypy's pydantic plugin sees the base's
    # type-only declaration as a field.)
    @property  # type: ignore[misc]
    def before(self) -> Any:
        return self.original.after

    @property  # type: ignore[misc]
    def after(self) -> Any:
        return self.original.before

    def summary(self) -> str:
        return f"Undo {self.original.summary()}"

    def describe_before(self) -> str:
        return self.original.describe_after()

    def describe_after(self) -> str:
        return self.original.describe_before()

    def actions(self, phase: Phase = "undo") -> tuple[str, ...]:
        return self.original.actions("undo")

    def session_policy_statements(self, phase: Phase = "undo") -> list[dict[str, Any]]:
        return self.original.session_policy_statements("undo")
