"""The ways to ask: a direct invocation event, the JSON body of an HTTP call, and the Step Functions status change
EventBridge delivers when a mission's execution ends. All are untrusted input."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aegis.secrets_guard import secret_kind
from aegis_killswitch.errors import InvalidKillSwitchRequest
from aegis_killswitch.report import MAX_REASON_CHARS

MAX_REQUESTER_CHARS = 200
DEFAULT_KILL_REASON = "no reason given"


def parse[M: BaseModel](model: type[M], document: Any, what: str = "event") -> M:
    """`document` as a `model`; InvalidKillSwitchRequest names the field that is wrong."""
    if not isinstance(document, dict):
        raise InvalidKillSwitchRequest(f"the {what} must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidKillSwitchRequest.from_validation(error) from None


class _Request(BaseModel):
    """What an operator sends. Reasons and names go to the audit trail, which refuses credentials: a text field
    that looks like one is refused here, with a clear answer."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _refuse_credentials(cls, value: Any) -> Any:
        kind = secret_kind(value) if isinstance(value, str) else None
        if kind:
            raise ValueError(f"looks like a credential ({kind}); never paste one here")
        return value


class DirectRequest(_Request):
    """`{"action": "trigger"|"rearm", "reason", "requested_by"}`: invoking the function is authorised by IAM."""

    action: Literal["trigger", "rearm"]
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)
    requested_by: str = Field(min_length=1, max_length=MAX_REQUESTER_CHARS)


class KillBody(_Request):
    """Body of `POST /kill`; may be empty, because a kill switch must not fail for want of a reason."""

    reason: str = Field(default=DEFAULT_KILL_REASON, min_length=1, max_length=MAX_REASON_CHARS)


class RearmBody(_Request):
    """Body of `POST /rearm`: re-arming is deliberate, so it states why."""

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


# EventBridge's event for a Standard workflow's execution status change (source aws.states).
STATUS_CHANGE_SOURCE = "aws.states"
STATUS_CHANGE_DETAIL_TYPE = "Step Functions Execution Status Change"
TerminalStatus = Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
TERMINAL_STATUSES: tuple[str, ...] = get_args(TerminalStatus)
_EXECUTION_ARN = r"^arn:aws[\w-]*:states:[\w-]+:\d{12}:execution:[^\s:]+:[^\s:]+$"


def is_status_change(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and event.get("source") == STATUS_CHANGE_SOURCE
        and event.get("detail-type") == STATUS_CHANGE_DETAIL_TYPE
    )


class ExecutionStatusDetail(BaseModel):
    """The part of the status change the purge needs; EventBridge sends more (dates, input, output), ignored."""

    model_config = ConfigDict(extra="ignore")

    # EventBridge spells the fields in camelCase.
    executionArn: str = Field(pattern=_EXECUTION_ARN)
    stateMachineArn: str = Field(min_length=1)
    status: TerminalStatus


class ExecutionEnded(BaseModel):
    """A mission's execution reached a terminal status (template.yaml, MissionEndedRule)."""

    model_config = ConfigDict(extra="ignore")

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusDetail

    @classmethod
    def parse(cls, event: Any, state_machine_arn: str) -> ExecutionEnded:
        """The event, if it is the end of an execution of `state_machine_arn`; InvalidKillSwitchRequest otherwise
        (another state machine's execution is never this function's to purge)."""
        ended = parse(cls, event)
        if ended.detail.stateMachineArn != state_machine_arn:
            raise InvalidKillSwitchRequest("the status change is of another state machine than the mission's")
        prefix = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
        if not ended.detail.executionArn.startswith(prefix):
            raise InvalidKillSwitchRequest("the execution is not one of the mission state machine")
        return ended
