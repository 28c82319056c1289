"""Assemble the mission report `aegis-local` writes (`reporting.report.MissionReportDocument`, the product's report
page plus the leak audit) from what the mission persisted.

The assembly itself is the product's (`aegis.reporting.assembly`, which the ops API uses too): the agent's stored
report, the mission item and the audit trail. What only the local stack can add stays here: a mission the kill switch
stopped never resumes (its execution ends instead), so it has no agent report; then the findings and the plan come
from the mission documents its checkpoint refers to, each change's decision and outcome from the audit trail, and the
touched resources are re-scanned here, read-only, with the agent's own scanner.

Every text comes from places that refuse secrets by construction (report pages, audit items, checkpoints); nothing
here reads a token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aegis.audit import read_trail
from aegis.catalogue import ChangeBase
from aegis.reporting.assembly import AGENT_VERIFICATION, assemble_document, explain, results_from_trail
from aegis.reporting.html import KillSwitchSummary
from aegis_local.reporting.report import MissionReportDocument

__all__ = ["MissionSources", "assemble_report", "explain", "results_from_trail"]

LOCAL_VERIFICATION = (
    "aegis-local's read-only re-scan with the agent's checks (the mission did not resume: its execution was stopped)"
)


@dataclass(frozen=True)
class MissionSources:
    """The stack's tables (boto3 Table resources) and how to get a read-only AWS session for a re-scan."""

    missions: Any
    audit: Any
    checkpoints: Any
    session_factory: Callable[[], Any]


def _checkpoint_values(checkpoints: Any, mission_id: str) -> dict[str, Any] | None:
    from aegis_agent.checkpointer import DynamoDBCheckpointSaver
    from aegis_agent.serializer import SecretRefusingSerializer

    saver = DynamoDBCheckpointSaver(checkpoints, serde=SecretRefusingSerializer())
    found = saver.get_tuple({"configurable": {"thread_id": mission_id, "checkpoint_ns": ""}})
    if found is None:
        return None
    return dict(found.checkpoint.get("channel_values") or {})


def _rescan(session_factory: Callable[[], Any], regions: Sequence[str], changes: Sequence[ChangeBase]) -> list[Any]:
    from aegis.checks.base import PlanConfig
    from aegis_agent.graph import verify
    from aegis_agent.scanner import AwsScanner, screen

    if not changes:
        return []
    scanner = AwsScanner(session_factory, PlanConfig())
    outcome = screen(scanner.scan(regions, sorted({change.check_id for change in changes})))
    return verify(changes, outcome)


def _agent_report(sources: MissionSources, mission_id: str, item: Mapping[str, Any] | None) -> Any:
    from aegis_agent.missions import MissionStore

    if item is None or not int(item.get("report_pages", 0) or 0):
        return None
    return MissionStore(sources.missions).read_report(mission_id)


def _report_from_checkpoint(
    sources: MissionSources, mission_id: str, trail: Sequence[Mapping[str, Any]], status: str, halted: bool
) -> Any:
    from aegis_agent.graph import load_plan, load_scan
    from aegis_agent.missions import MissionStore
    from aegis_agent.report import build_report

    values = _checkpoint_values(sources.checkpoints, mission_id)
    if not values or "plan" not in values or "request" not in values:
        return None
    store = MissionStore(sources.missions)
    # The checkpoint says where the scan's findings and the plan are: documents beside the mission item.
    scan = load_scan(values, store)
    plan = load_plan(values, store)
    request = values["request"]
    results = results_from_trail(plan.changes, trail, halted=halted)
    verification = _rescan(sources.session_factory, request.regions, plan.changes)
    return build_report(
        request=request,
        account_id=scan.account_id,
        findings=scan.findings,
        plan=plan,
        scan_errors=scan.errors,
        withheld=scan.withheld,
        results=results,
        verification=verification,
        finished_at=datetime.now(UTC).isoformat(),
        status=status,
    )


def assemble_report(
    sources: MissionSources,
    mission_id: str,
    *,
    halted: bool = False,
    kill_switch: KillSwitchSummary | None = None,
    out_of_band: Mapping[str, str] | None = None,
    notes: Iterable[str] = (),
    duration_seconds: float | None = None,
) -> MissionReportDocument:
    """The report of one mission, from the stack's tables (see the module docstring).

    `out_of_band` maps change ids to what someone else did to the resource meanwhile (the demo's --drift)."""
    trail = sorted(read_trail(sources.audit, mission_id), key=lambda item: str(item.get("seq", "")))
    item = sources.missions.get_item(Key={"mission_id": mission_id}, ConsistentRead=True).get("Item")
    status = "halted" if halted else str((item or {}).get("status") or "unknown")
    agent_report = _agent_report(sources, mission_id, item)
    verification = AGENT_VERIFICATION
    if agent_report is None:
        agent_report = _report_from_checkpoint(sources, mission_id, trail, status, halted)
        verification = LOCAL_VERIFICATION
    return assemble_document(
        mission_id=mission_id,
        item=item,
        trail=trail,
        agent_report=agent_report,
        status=status,
        verification=verification,
        kill_switch=kill_switch,
        out_of_band=out_of_band,
        notes=notes,
        duration_seconds=duration_seconds,
        document_type=MissionReportDocument,
    )
