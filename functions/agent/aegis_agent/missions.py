"""The Missions table: one item per mission, created idempotently on the triggering event's id, and the mission's
documents beside it.

A mission item is metadata only: status, what was asked, counts, a CIS/check summary, the execution ARN, a named
error, and where its report is. A document (the scan's findings, the plan, the approval results, the re-scan's
verdicts, the report) is JSON text cut into pages, one item per page keyed `<mission id>#<name>#<page>`, so that no
mission of any size meets DynamoDB's item limit; the graph's state refers to it by page count and SHA-256. Every
write is checked for secret-shaped values first (and refused, never scrubbed). A document is checked as the model it
is: a resource name where the model declares one (e.g. an IAM user name in a change) is an identifier, however it
looks, and is stored; the same value anywhere else refuses the document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from aegis.missions_keys import (
    ACCOUNT_ATTRIBUTE,
    LISTING_ATTRIBUTE,
    MISSION_LISTING,
    ORG_SCAN_ATTRIBUTE,
    latest_findings_key,
)
from aegis.models import sha256_hex
from aegis.secrets_guard import refuse_secrets
from aegis_agent.errors import DocumentInvalid, MissionNotFound, MissionNotResumable
from aegis_agent.report import MissionReport
from aegis_agent.state import DocumentRef, MissionRequest, PlanSummary, ScanSummary

MISSION_ID_PREFIX = "m-"
REPORT_DOCUMENT = "report"
REPORT_PAGE_RECORD = f"{REPORT_DOCUMENT}-page"
# At most 4 bytes per character in UTF-8: a page stays under 256 KB whatever the text.
DOCUMENT_PAGE_CHARS = 64_000
REPORT_PAGE_CHARS = DOCUMENT_PAGE_CHARS


class MissionStatus(StrEnum):
    SCANNING = "scanning"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    HALTED = "halted"
    # An organization scan's account whose AegisScanRole could not be assumed: nothing was scanned (the AWS error
    # code is on the item and in the audit trail).
    UNREACHABLE = "unreachable"


def mission_summary(scan: ScanSummary, plan: PlanSummary) -> dict[str, Any]:
    """Counts and the check/CIS summary of a mission, for its item (small, metadata only)."""
    return {
        "account_id": scan.account_id,
        "plan_status": plan.status.value,
        "plan_stop_reason": plan.stop_reason,
        "counts": {
            "findings": scan.finding_count,
            "changes": len(plan.change_ids),
            "exemptions": plan.exemption_count,
            "plan_notes": plan.note_count,
            "scan_errors": scan.error_count,
            "withheld": scan.withheld_count,
            "api_calls": scan.api_calls,
        },
        "by_severity": dict(sorted(scan.by_severity.items())),
        "by_cis_v5": dict(sorted(scan.by_cis_v5.items())),
        "by_check": dict(sorted(scan.by_check.items())),
        "change_ids": list(plan.change_ids),
    }


class MissionStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, request: MissionRequest, now: datetime) -> tuple[dict[str, Any], bool]:
        """Create the mission if this event has not been seen; else return the existing item and False."""
        item = {
            "mission_id": request.mission_id,
            # Mission items only (never document pages or latest-findings items): the ByCreated index lists them.
            LISTING_ATTRIBUTE: MISSION_LISTING,
            "status": MissionStatus.SCANNING.value,
            "trigger": request.trigger.value,
            "regions": list(request.regions),
            "check_ids": list(request.check_ids) if request.check_ids else None,
            "dry_run": request.policy.dry_run,
            "created_at": now.isoformat(),
            "updated_at": now.isoformat(),
        }
        if request.undo is not None:
            item |= {"undo_of": request.undo.change_id, "requested_by": request.undo.requested_by}
        if request.account_id:
            # The scanned account: the ByOrgScan index's range key, and the account the validator lets this
            # mission's changes name.
            item[ACCOUNT_ATTRIBUTE] = request.account_id
        if request.org_scan:
            item[ORG_SCAN_ATTRIBUTE] = request.org_scan
        refuse_secrets(item, where="mission")
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(mission_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self.get(request.mission_id), False
        return item, True

    def get(self, mission_id: str) -> dict[str, Any]:
        item = self._table.get_item(Key={"mission_id": mission_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise MissionNotFound(f"no mission {mission_id}")
        return dict(item)

    def update(
        self,
        mission_id: str,
        status: MissionStatus,
        now: datetime,
        *,
        expected: Sequence[MissionStatus] | None = None,
        **fields: Any,
    ) -> None:
        """Set the status and fields; with `expected`, only from one of those statuses (else MissionNotResumable)."""
        values: dict[str, Any] = {"status": status.value, "updated_at": now.isoformat(), **fields}
        refuse_secrets(values, where="mission")
        names = {f"#f{i}": key for i, key in enumerate(values)}
        placeholders = {f":v{i}": value for i, value in enumerate(values.values())}
        request: dict[str, Any] = {
            "Key": {"mission_id": mission_id},
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": placeholders,
            "ConditionExpression": "attribute_exists(mission_id)",
        }
        if expected:
            names["#status"] = "status"
            allowed = {f":s{i}": s.value for i, s in enumerate(expected)}
            placeholders.update(allowed)
            request["ConditionExpression"] += f" AND #status IN ({', '.join(allowed)})"
        try:
            self._table.update_item(**request)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise MissionNotResumable(f"mission {mission_id} is not in a state that allows {status.value}") from None

    # --- documents: JSON text in pages, so that no mission of any size meets DynamoDB's item limit ---------------
    def write_document(self, mission_id: str, name: str, document: BaseModel) -> DocumentRef:
        """Store `document` as page items beside the mission item (rewriting the same pages if a node runs again)
        and return its reference. A secret-shaped string anywhere in it refuses the whole document."""
        refuse_secrets(document, where=f"mission.{name}")
        dumped = document.model_dump(mode="json")
        text = json.dumps(dumped, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        pages = [text[start : start + DOCUMENT_PAGE_CHARS] for start in range(0, len(text), DOCUMENT_PAGE_CHARS)]
        # One PutItem per page: the agent's role may put and get mission items, nothing broader.
        for index, body in enumerate(pages):
            self._table.put_item(
                Item={
                    "mission_id": document_page_key(mission_id, name, index),
                    "record": f"{name}-page",
                    "mission": mission_id,
                    "page": index,
                    "pages": len(pages),
                    "body": body,
                }
            )
        return DocumentRef(name=name, pages=len(pages), digest=sha256_hex(text))

    def read_document[T: BaseModel](self, mission_id: str, ref: DocumentRef, model: type[T]) -> T:
        """The document `ref` names, as `model`; DocumentInvalid if a page is missing or the text is not exactly the
        one the reference was made from."""
        bodies = []
        for index in range(ref.pages):
            page = self._table.get_item(
                Key={"mission_id": document_page_key(mission_id, ref.name, index)}, ConsistentRead=True
            ).get("Item")
            if page is None:
                raise DocumentInvalid(f"page {index} of the {ref.name} document of {mission_id} is missing")
            bodies.append(str(page["body"]))
        text = "".join(bodies)
        if sha256_hex(text) != ref.digest:
            raise DocumentInvalid(f"the {ref.name} document of {mission_id} does not match its digest")
        try:
            return model.model_validate_json(text)
        except ValidationError:
            raise DocumentInvalid(f"the {ref.name} document of {mission_id} is not a {model.__name__}") from None

    def read_unreferenced_document[T: BaseModel](self, mission_id: str, name: str, model: type[T]) -> T | None:
        """A document whose reference this reader does not hold (another mission's plan, read for an undo): every
        page its first page counts, as `model`; None when it has no first page, DocumentInvalid when a page is
        missing or the text is not a `model`. No digest vouches for the whole text, so the caller must check what it
        takes from it (an undo checks the change's own digest against the audited one)."""
        first = self._table.get_item(
            Key={"mission_id": document_page_key(mission_id, name, 0)}, ConsistentRead=True
        ).get("Item")
        if first is None:
            return None
        pages = int(first.get("pages", 0))
        if pages < 1:
            raise DocumentInvalid(f"the {name} document of {mission_id} counts no pages")
        bodies = [str(first["body"])]
        for index in range(1, pages):
            page = self._table.get_item(
                Key={"mission_id": document_page_key(mission_id, name, index)}, ConsistentRead=True
            ).get("Item")
            if page is None:
                raise DocumentInvalid(f"page {index} of the {name} document of {mission_id} is missing")
            bodies.append(str(page["body"]))
        try:
            return model.model_validate_json("".join(bodies))
        except ValidationError:
            raise DocumentInvalid(f"the {name} document of {mission_id} is not a {model.__name__}") from None

    def record_latest_findings(self, request: MissionRequest, check_ids: Sequence[str], recorded_at: str) -> int:
        """Name this mission, for each check it ran, as the newest whose report covers it: one
        `latest-findings#<check id>` item each, put only if none is newer (`recorded_at`, ISO 8601 UTC, compares as
        text). The ops API's GET /findings reads these and the reports they name. Returns how many were put."""
        put = 0
        for check_id in sorted(set(check_ids)):
            item = {
                "mission_id": latest_findings_key(check_id),
                "check_id": check_id,
                "latest_mission_id": request.mission_id,
                "regions": list(request.regions),
                "dry_run": request.policy.dry_run,
                "recorded_at": recorded_at,
            }
            refuse_secrets(item, where="mission.latest_findings")
            try:
                self._table.put_item(
                    Item=item,
                    ConditionExpression="attribute_not_exists(mission_id) OR recorded_at < :recorded_at",
                    ExpressionAttributeValues={":recorded_at": recorded_at},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue  # a newer mission's report already covers this check
            put += 1
        return put

    def write_report(self, report: MissionReport) -> tuple[int, str]:
        """Store the report as the mission's `report` document; return (pages, SHA-256 of the JSON text)."""
        ref = self.write_document(report.mission_id, REPORT_DOCUMENT, report)
        return ref.pages, ref.digest

    def read_report(self, mission_id: str) -> MissionReport | None:
        """The mission's report (None before it has one), checked against the digest the mission item records."""
        item = self.get(mission_id)
        pages = int(item.get("report_pages", 0))
        if not pages:
            return None
        try:
            ref = DocumentRef(name=REPORT_DOCUMENT, pages=pages, digest=str(item.get("report_digest", "")))
        except ValidationError:
            raise DocumentInvalid(f"the mission item of {mission_id} records no valid report digest") from None
        return self.read_document(mission_id, ref, MissionReport)


def document_page_key(mission_id: str, name: str, index: int) -> str:
    return f"{mission_id}#{name}#{index:03d}"


def report_page_key(mission_id: str, index: int) -> str:
    return document_page_key(mission_id, REPORT_DOCUMENT, index)
