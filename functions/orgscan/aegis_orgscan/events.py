"""The two payloads the organization-scan state machine sends (statemachine/organization.asl.json), as pydantic
models; anything else is `OrgScan.MalformedEvent`, with a message that names fields, never values.

- ListAccounts: `{action: "list", org_scan_id: <execution name>, request: <execution input>}`; the execution input
  is what the agent started the scan with, `{org_scan_id, regions, checks, dry_run, requested_at}`, and must name the
  same organization scan as the execution.
- Summarize: `{action: "summarize", org_scan_id, failure?}`, `failure` being the Map's error name when it failed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError

from aegis.catalogue.base import REGION_PATTERN
from aegis.missions_keys import ORG_SCAN_ID_PATTERN
from aegis.secrets_guard import error_location
from aegis_orgscan.errors import MalformedEvent

# The agent's own bounds on an aegis.scan request (aegis_agent.events): the same request, passed on.
CHECK_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)+$"
MAX_REGIONS = 40
MAX_CHECKS = 100
# A Step Functions error name (States.*, Lambda.*, a function's own): letters, digits, dots.
ERROR_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"

Region = Annotated[str, Field(pattern=REGION_PATTERN)]
CheckId = Annotated[str, Field(pattern=CHECK_ID_PATTERN)]
OrgScanId = Annotated[str, Field(pattern=ORG_SCAN_ID_PATTERN)]


class OrgScanRequest(BaseModel):
    """The org-scan execution's input, as the agent starts it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_scan_id: OrgScanId
    regions: list[Region] | None = Field(default=None, min_length=1, max_length=MAX_REGIONS)
    checks: list[CheckId] | None = Field(default=None, min_length=1, max_length=MAX_CHECKS)
    dry_run: StrictBool | None = None
    requested_at: str | None = Field(default=None, max_length=64)


class ListAccountsTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["list"]
    org_scan_id: OrgScanId
    request: OrgScanRequest


class SummarizeTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["summarize"]
    org_scan_id: OrgScanId
    failure: str | None = Field(default=None, pattern=ERROR_NAME_PATTERN)


OrgScanTask = Annotated[ListAccountsTask | SummarizeTask, Field(discriminator="action")]
_TASK: TypeAdapter[ListAccountsTask | SummarizeTask] = TypeAdapter(OrgScanTask)


def parse_task(event: Any) -> ListAccountsTask | SummarizeTask:
    if not isinstance(event, dict):
        raise MalformedEvent("the event is not a JSON object")
    try:
        task = _TASK.validate_python(event)
    except ValidationError as exc:
        fields = sorted({error_location(error["loc"]) or "(event)" for error in exc.errors()})
        raise MalformedEvent(f"not an org-scan task (fields: {', '.join(fields)})") from None
    if isinstance(task, ListAccountsTask) and task.request.org_scan_id != task.org_scan_id:
        # The execution is named after its organization scan: an input naming another is not the agent's.
        raise MalformedEvent("the execution input names another organization scan than the execution")
    return task
