"""What a trigger or a re-arm did, step by step: the answer to the operator and the record in the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from aegis.secrets_guard import secret_kind

Operation = Literal["trigger", "rearm"]
MAX_REASON_CHARS = 500


class StepOutcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    ok: bool
    reason: str
    details: dict[str, JsonValue] = Field(default_factory=dict)


class OperationRequest(BaseModel):
    """One trigger or re-arm: who asked, why, and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: Operation
    operation_id: str
    requested_by: str
    reason: str
    at: str


class KillSwitchReport(OperationRequest):
    # Whether the halt flag is engaged after this operation, read back from the Control table; None if unreadable.
    halted: bool | None
    steps: list[StepOutcome]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failed_steps(self) -> list[str]:
        return [step.step for step in self.steps if not step.ok]

    @property
    def halt_engaged(self) -> int:
        """The `Halted` metric after this operation: 0 only when the halt flag was read back clear, else 1. A flag
        that could not be read back counts as engaged: a halt that cannot be confirmed lifted must not look lifted
        (the HaltEngagedAlarm keeps its state from one operation to the next)."""
        return 0 if self.halted is False else 1

    def as_response(self) -> dict[str, JsonValue]:
        body: dict[str, JsonValue] = {"ok": self.ok, **self.model_dump(mode="json")}
        body["failed_steps"] = list(self.failed_steps)
        return body


def failed_step(step: str, summary: str, failures: Mapping[str, str], details: dict[str, Any]) -> StepOutcome:
    """A step that failed for some of what it handles: `summary`, then each failure as `what: why` (also kept in the
    details, under `failures`)."""
    return StepOutcome(
        step=step,
        ok=False,
        reason=summary + "; ".join(f"{what}: {why}" for what, why in failures.items()),
        details={**details, "failures": dict(failures)},
    )


def error_code(error: BaseException) -> str:
    """What a call failed with, in one word that names no resource and carries no message: the AWS error code
    (`AccessDenied`, `NoSuchEntity`), or the exception's class (`ConnectTimeoutError`) for a failure AWS never
    answered."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code[:100]
    return type(error).__name__


def describe_error(error: BaseException) -> str:
    """A short, log-safe description of why a call failed. Never the request, never a body we sent."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        text = f"{info.get('Code', 'ClientError')}: {info.get('Message', '')}".rstrip(": ")
    else:
        message = str(error)
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if secret_kind(text):
        return f"{type(error).__name__} (message withheld: it contained a credential-shaped value)"
    return text[:MAX_REASON_CHARS]
