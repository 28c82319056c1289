"""`POST /scans`: request a scan (or a dry run) now, by putting the `aegis.scan` event the agent's `ScanRequestRule`
delivers. The body is held to the agent's own schema for that event (`aegis_agent.events.ScanRequestDetail`):
`dry_run` (required here: the caller says which), `regions` and `checks` (optional; checks must be in the
catalogue), `organization` (optional: scan every account of the organization, one mission each), nothing else. An
organization scan is named at once too: `org_scan_id` instead of `mission_id`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from aegis.catalogue.base import REGION_PATTERN
from aegis.checks import CHECKS
from aegis.missions_keys import org_scan_id_for_event
from aegis_ops.errors import BadRequest
from aegis_ops.events import SCAN_DETAIL_TYPE, SCAN_SOURCE, put_event

# The agent's bounds (aegis_agent.events).
MAX_REGIONS = 40
MAX_CHECKS = 100
MAX_BODY_CHARS = 16_384

Region = Annotated[str, Field(pattern=REGION_PATTERN)]


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: StrictBool
    regions: list[Region] | None = Field(default=None, min_length=1, max_length=MAX_REGIONS)
    checks: list[str] | None = Field(default=None, min_length=1, max_length=MAX_CHECKS)
    organization: StrictBool = False


def parse_scan_request(body: str | None) -> ScanRequest:
    document = json_body(body)
    try:
        request = ScanRequest.model_validate(document)
    except ValidationError as exc:
        raise BadRequest(
            f"the body must be {{dry_run, regions?, checks?, organization?}} with region names (fields: {_fields(exc)})"
        ) from None
    unknown = [check for check in request.checks or () if check not in CHECKS]
    if unknown:
        # The catalogue's ids are public; the caller's text is not echoed.
        raise BadRequest(f"checks must be ids of the catalogue: {', '.join(sorted(CHECKS))}")
    return request


def request_scan(events: Any, bus_name: str, request: ScanRequest) -> dict[str, str]:
    detail: dict[str, Any] = {"dry_run": request.dry_run}
    if request.regions:
        detail["regions"] = list(dict.fromkeys(request.regions))
    if request.checks:
        detail["checks"] = list(dict.fromkeys(request.checks))
    if not request.organization:
        return put_event(events, bus_name, SCAN_SOURCE, SCAN_DETAIL_TYPE, detail)
    detail["organization"] = True
    put = put_event(events, bus_name, SCAN_SOURCE, SCAN_DETAIL_TYPE, detail)
    # The agent starts the org-scan execution named after the event; its accounts' missions follow from it.
    return {"event_id": put["event_id"], "org_scan_id": org_scan_id_for_event(put["event_id"])}


def json_body(body: str | None) -> Any:
    """The request's JSON body (an empty body is an empty object); BadRequest if it is not JSON."""
    if body is None or not body.strip():
        return {}
    if len(body) > MAX_BODY_CHARS:
        raise BadRequest(f"the body is longer than {MAX_BODY_CHARS} characters")
    try:
        return json.loads(body)
    except ValueError:
        raise BadRequest("the body is not JSON") from None


def _fields(exc: ValidationError) -> str:
    return ", ".join(sorted({".".join(str(p) for p in err["loc"]) or "(body)" for err in exc.errors()}))
