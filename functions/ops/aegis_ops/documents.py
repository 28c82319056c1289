"""The reports the agent stored, read back with its rules (`aegis_agent.missions.MissionStore`): a document is JSON
text in pages keyed `<mission id>#report#<page>`, and is used only if every page is there and the text's SHA-256 is
the digest the mission item records. Reads only: GetItem for one mission, BatchGetItem for many (the findings of
every check), never a scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from aegis.missions_keys import REPORT_DOCUMENT, document_page_key
from aegis.models import sha256_hex
from aegis.reporting.agent_report import MissionReport
from aegis_ops.errors import DocumentInvalid

# BatchGetItem takes at most 100 keys per call.
BATCH_GET_MAX_KEYS = 100
# A mission's report pages: the agent's pages are 64,000 characters, so this is a report of 64 MB.
MAX_REPORT_PAGES = 1000


@dataclass(frozen=True)
class ReportRef:
    """Where a mission's stored report is, as its mission item records it."""

    mission_id: str
    pages: int
    digest: str

    @classmethod
    def of_item(cls, item: Mapping[str, Any] | None) -> ReportRef | None:
        """The report a mission item names; None when the mission has no report (yet)."""
        if item is None:
            return None
        pages = int(item.get("report_pages", 0) or 0)
        if pages <= 0:
            return None
        mission_id = str(item["mission_id"])
        digest = str(item.get("report_digest", ""))
        if pages > MAX_REPORT_PAGES or len(digest) != 64:
            raise DocumentInvalid(f"the mission item of {mission_id} records no valid report reference")
        return cls(mission_id=mission_id, pages=pages, digest=digest)

    def page_keys(self) -> list[str]:
        return [document_page_key(self.mission_id, REPORT_DOCUMENT, index) for index in range(self.pages)]


def read_report(table: Any, ref: ReportRef) -> MissionReport:
    """One mission's report, page by page (strongly consistent reads)."""
    bodies = []
    for index, key in enumerate(ref.page_keys()):
        page = table.get_item(Key={"mission_id": key}, ConsistentRead=True).get("Item")
        if page is None:
            raise DocumentInvalid(f"page {index} of the report of {ref.mission_id} is missing")
        bodies.append(str(page["body"]))
    return _parse(ref, bodies)


def read_reports(dynamodb: Any, table_name: str, refs: Sequence[ReportRef]) -> dict[str, MissionReport]:
    """Several missions' reports, by mission id, with BatchGetItem (100 pages a call)."""
    wanted = [key for ref in refs for key in ref.page_keys()]
    pages = batch_get(dynamodb, table_name, wanted)
    reports = {}
    for ref in refs:
        bodies = []
        for index, key in enumerate(ref.page_keys()):
            page = pages.get(key)
            if page is None:
                raise DocumentInvalid(f"page {index} of the report of {ref.mission_id} is missing")
            bodies.append(str(page["body"]))
        reports[ref.mission_id] = _parse(ref, bodies)
    return reports


def batch_get(dynamodb: Any, table_name: str, mission_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The Missions items of `mission_ids` that exist, by id. Keys DynamoDB leaves unprocessed (throttling) are asked
    again until none remain."""
    keys = list(dict.fromkeys(mission_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), BATCH_GET_MAX_KEYS):
        request: dict[str, Any] = {
            table_name: {
                "Keys": [{"mission_id": key} for key in keys[start : start + BATCH_GET_MAX_KEYS]],
                "ConsistentRead": True,
            }
        }
        while request:
            answer = dynamodb.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(table_name, []):
                found[str(item["mission_id"])] = dict(item)
            request = answer.get("UnprocessedKeys") or {}
    return found


def _parse(ref: ReportRef, bodies: list[str]) -> MissionReport:
    text = "".join(bodies)
    if sha256_hex(text) != ref.digest:
        raise DocumentInvalid(f"the report of {ref.mission_id} does not match its digest")
    try:
        return MissionReport.model_validate_json(text)
    except ValidationError:
        raise DocumentInvalid(f"the report of {ref.mission_id} is not a mission report") from None
