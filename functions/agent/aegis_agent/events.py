"""The events the agent accepts, as Powertools Parser models.

- The schedule: EventBridge `source: aws.events`, `detail-type: Scheduled Event`.
- An on-demand scan: a custom event `source: aegis.scan` with `detail: {regions?, checks?, dry_run?}`.
- The resume call from the state machine's last state: `{mission_id, results: [ChangeResult...]}`.
Anything else is `Agent.MalformedEvent` / `Agent.MalformedResume`, with a message that names fields, never values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from aegis.models import ChangeResult
from aegis_agent.errors import MalformedEvent, MalformedResume

REGION_PATTERN = r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$"
CHECK_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)+$"
MISSION_ID_PATTERN = r"^m-[0-9a-f]{20}$"
MAX_REGIONS = 40
MAX_CHECKS = 100

Region = Annotated[str, Field(pattern=REGION_PATTERN)]
CheckId = Annotated[str, Field(pattern=CHECK_ID_PATTERN)]


class ScanRequestDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: list[Region] | None = Field(default=None, min_length=1, max_length=MAX_REGIONS)
    checks: list[CheckId] | None = Field(default=None, min_length=1, max_length=MAX_CHECKS)
    dry_run: StrictBool | None = None


class ScheduledScanEvent(EventBridgeModel):
    id: str = Field(min_length=1, max_length=128)
    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    detail: dict[str, Any] = Field(max_length=0)


class CustomScanEvent(EventBridgeModel):
    id: str = Field(min_length=1, max_length=128)
    source: Literal["aegis.scan"]
    detail: ScanRequestDetail


ScanEvent = Annotated[ScheduledScanEvent | CustomScanEvent, Field(discriminator="source")]


class ResumeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mission_id: str = Field(pattern=MISSION_ID_PATTERN)
    results: list[ChangeResult] = Field(max_length=1000)


def _fields(exc: ValidationError) -> str:
    return ", ".join(sorted({".".join(str(p) for p in err["loc"]) or "(event)" for err in exc.errors()}))


def parse_scan_event(event: Any) -> ScheduledScanEvent | CustomScanEvent:
    if not isinstance(event, dict):
        raise MalformedEvent("the event is not a JSON object")
    try:
        # A discriminated union is a valid Parser model; the stub only types plain classes.
        return parse(event=event, model=ScanEvent)  # type: ignore[call-overload]
    except ValidationError as exc:
        raise MalformedEvent(f"not a scheduled or aegis.scan event (fields: {_fields(exc)})") from None


def parse_resume_event(event: Any) -> ResumeEvent:
    if not isinstance(event, dict):
        raise MalformedResume("the resume payload is not a JSON object")
    try:
        return parse(event=event, model=ResumeEvent)
    except ValidationError as exc:
        raise MalformedResume(f"not {{mission_id, results}} (fields: {_fields(exc)})") from None
