"""The two ways to ask: a direct invocation event, and the JSON body of an HTTP call. Both are untrusted input."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aegis.secrets_guard import secret_kind
from aegis_killswitch.report import MAX_REASON_CHARS

MAX_REQUESTER_CHARS = 200
DEFAULT_KILL_REASON = "no reason given"


class InvalidKillSwitchRequest(ValueError):
    """The event or body is not a kill switch request; the message says which field is wrong."""

    @classmethod
    def from_validation(cls, error: ValidationError) -> InvalidKillSwitchRequest:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'request'}: {item['msg']}" for item in error.errors()
        )
        return cls(f"invalid kill switch request: {problems}")


def _no_secret(value: str) -> str:
    # Reasons and names go to the audit trail, which refuses credentials: reject them here, with a clear answer.
    kind = secret_kind(value)
    if kind:
        raise ValueError(f"looks like a credential ({kind}); never paste one here")
    return value


class DirectRequest(BaseModel):
    """`{"action": "trigger"|"rearm", "reason", "requested_by"}`: invoking the function is authorised by IAM."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal["trigger", "rearm"]
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)
    requested_by: str = Field(min_length=1, max_length=MAX_REQUESTER_CHARS)

    @field_validator("reason", "requested_by")
    @classmethod
    def _refuse_credentials(cls, value: str) -> str:
        return _no_secret(value)


class KillBody(BaseModel):
    """Body of `POST /kill`; may be empty, because a kill switch must not fail for want of a reason."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(default=DEFAULT_KILL_REASON, min_length=1, max_length=MAX_REASON_CHARS)

    @field_validator("reason")
    @classmethod
    def _refuse_credentials(cls, value: str) -> str:
        return _no_secret(value)


class RearmBody(BaseModel):
    """Body of `POST /rearm`: re-arming is deliberate, so it states why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)

    @field_validator("reason")
    @classmethod
    def _refuse_credentials(cls, value: str) -> str:
        return _no_secret(value)
