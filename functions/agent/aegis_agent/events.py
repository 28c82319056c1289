"""The events the agent accepts, as Powertools Parser models.

- The schedule: EventBridge `source: aws.events`, `detail-type: Scheduled Event`.
- An on-demand scan: a custom event `source: aegis.scan` with `detail: {regions?, checks?, dry_run?}`; with
  `organization: true` it asks for an organization scan (the org-scan state machine, one mission per account).
- An account scan of an organization scan: the org-scan state machine's Distributed Map item,
  `{org_scan_id, account_id, regions, checks, dry_run}` (not an EventBridge event).
- An undo request: a custom event `source: aegis.undo`, `detail-type: Undo Requested` with
  `detail: {change_id, requested_by}` (the ops API puts it for `POST /changes/{change_id}/undo`).
- The resume call from the state machine's last state: `{mission_id, results: [[ChangeResult...]...]}`, one list
  per approval request (the Map over requests), or the flat `{mission_id, results: [ChangeResult...]}` a refused
  plan is answered with. Either way the results are flattened, in the order received.
Anything else is `Agent.MalformedEvent` / `Agent.MalformedResume`, with a message that names fields, never values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from aegis.catalogue.base import ACCOUNT_ID_PATTERN, CHANGE_ID_PATTERN
from aegis.missions_keys import ORG_SCAN_ID_PATTERN
from aegis.models import ChangeResult
from aegis.secrets_guard import error_location, secret_kind
from aegis_agent.errors import MalformedEvent, MalformedResume

REGION_PATTERN = r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$"
CHECK_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)+$"
MISSION_ID_PATTERN = r"^m-[0-9a-f]{20}$"
MAX_REGIONS = 40
MAX_CHECKS = 100
# The most results a resume carries: the validator's bound on a plan's changes is far below it.
MAX_RESULTS = 1000
UNDO_SOURCE = "aegis.undo"
UNDO_DETAIL_TYPE = "Undo Requested"
# An identity provider's subject (Auth0: `auth0|...`, `google-oauth2|...`, `<client id>@clients`): printable, no
# spaces, bounded. It is stored in the mission item and the audit trail, so a credential-shaped one is refused.
REQUESTER_PATTERN = r"^[A-Za-z0-9|@._:+\-]{1,128}$"

Region = Annotated[str, Field(pattern=REGION_PATTERN)]
CheckId = Annotated[str, Field(pattern=CHECK_ID_PATTERN)]


class ScanRequestDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: list[Region] | None = Field(default=None, min_length=1, max_length=MAX_REGIONS)
    checks: list[CheckId] | None = Field(default=None, min_length=1, max_length=MAX_CHECKS)
    dry_run: StrictBool | None = None
    # An organization scan: the agent starts the org-scan execution instead of a mission of its own account.
    organization: StrictBool = False


class AccountScanRequest(BaseModel):
    """One account of an organization scan, as the org-scan state machine's Map passes it (the item OrgScanFunction
    wrote). `regions`/`checks`/`dry_run` may be null: the deployment's defaults then apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_scan_id: str = Field(pattern=ORG_SCAN_ID_PATTERN)
    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN)
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


def _not_credential_shaped(value: str) -> str:
    if secret_kind(value):
        # Named, never echoed: the value may be a token pasted where a subject belongs.
        raise ValueError("requested_by looks like a credential")
    return value


Requester = Annotated[str, Field(pattern=REQUESTER_PATTERN), AfterValidator(_not_credential_shaped)]


class UndoRequestDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    change_id: str = Field(pattern=CHANGE_ID_PATTERN)
    requested_by: Requester


class UndoRequestEvent(EventBridgeModel):
    id: str = Field(min_length=1, max_length=128)
    source: Literal["aegis.undo"]
    detail_type: Literal["Undo Requested"] = Field(alias="detail-type")
    detail: UndoRequestDetail


ScanEvent = Annotated[ScheduledScanEvent | CustomScanEvent | UndoRequestEvent, Field(discriminator="source")]


class ResumeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mission_id: str = Field(pattern=MISSION_ID_PATTERN)
    results: list[ChangeResult] = Field(max_length=MAX_RESULTS)

    @field_validator("results", mode="before")
    @classmethod
    def _flatten_requests(cls, value: Any) -> Any:
        """The Map over approval requests answers one list of results per request; a refused plan answers one flat
        list. Only a list made of lists is flattened (so a list nested anywhere else stays invalid), and the flat
        list is bounded as the flat form is."""
        if isinstance(value, list) and value and all(isinstance(group, list) for group in value):
            if sum(len(group) for group in value) > MAX_RESULTS:
                raise ValueError(f"more than {MAX_RESULTS} results")
            return [result for group in value for result in group]
        return value


def _fields(exc: ValidationError) -> str:
    return ", ".join(sorted({error_location(err["loc"]) or "(event)" for err in exc.errors()}))


def parse_scan_event(event: Any) -> ScheduledScanEvent | CustomScanEvent | UndoRequestEvent | AccountScanRequest:
    """The scan entry's event: a schedule tick, an `aegis.scan` or an `aegis.undo` request (all three rules target
    the scan function), or an organization scan's account item (the org-scan state machine invokes it with one);
    MalformedEvent naming the fields otherwise."""
    if not isinstance(event, dict):
        raise MalformedEvent("the event is not a JSON object")
    if "org_scan_id" in event and "source" not in event:
        # No EventBridge event has `org_scan_id` at its top level, nor an account item a `source`.
        try:
            return AccountScanRequest.model_validate(event)
        except ValidationError as exc:
            raise MalformedEvent(
                f"not an account scan {{org_scan_id, account_id, regions, checks, dry_run}} (fields: {_fields(exc)})"
            ) from None
    try:
        # A discriminated union is a valid Parser model; the stub only types plain classes.
        return parse(event=event, model=ScanEvent)  # type: ignore[call-overload]
    except ValidationError as exc:
        raise MalformedEvent(f"not a scheduled, aegis.scan or aegis.undo event (fields: {_fields(exc)})") from None


def parse_resume_event(event: Any) -> ResumeEvent:
    if not isinstance(event, dict):
        raise MalformedResume("the resume payload is not a JSON object")
    try:
        return parse(event=event, model=ResumeEvent)
    except ValidationError as exc:
        raise MalformedResume(f"not {{mission_id, results}} (fields: {_fields(exc)})") from None
