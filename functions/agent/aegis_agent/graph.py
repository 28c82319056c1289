"""The mission graph:

    scan -> plan -> (proposed) request_approval -> rescan -> report -> audit -> END
                 -> (empty, capped or dry run)                report -> audit -> END

`request_approval` stops the run with `interrupt()` carrying metadata only (ids, ARNs, risk, digests, diff texts).
It re-runs from its start when the mission resumes, so it has no side effect: it only computes the request from
the state and validates the answer. The answer is the state machine's opaque per-change results, never a token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from pydantic import ValidationError

from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase
from aegis.models import ChangeResult, Finding, ScanError, canonical_json, sha256_hex
from aegis_agent.errors import MalformedResume
from aegis_agent.missions import MissionStore
from aegis_agent.plan import make_plan
from aegis_agent.report import ReportSummary, build_report, display_text
from aegis_agent.scanner import Scanner, ScanOutcome, screen
from aegis_agent.state import (
    MissionRequest,
    Plan,
    PlanStatus,
    ScanSummary,
    Verification,
    VerifiedState,
    WithheldNote,
)

SCAN, PLAN, REQUEST_APPROVAL, RESCAN, REPORT, AUDIT = "scan", "plan", "request_approval", "rescan", "report", "audit"


class MissionState(TypedDict, total=False):
    request: MissionRequest
    scan: ScanSummary
    findings: list[Finding]
    scan_errors: list[ScanError]
    withheld: list[WithheldNote]
    plan: Plan
    results: list[ChangeResult]
    verification: list[Verification]
    rescan_withheld: list[WithheldNote]
    report: ReportSummary


@dataclass
class AgentDeps:
    scanner: Scanner
    audit: AuditLog
    missions: MissionStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def build_graph(deps: AgentDeps, checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(MissionState)
    graph.add_node(SCAN, lambda state: scan_node(state, deps))
    graph.add_node(PLAN, lambda state: plan_node(state, deps))
    graph.add_node(REQUEST_APPROVAL, request_approval_node)
    graph.add_node(RESCAN, lambda state: rescan_node(state, deps))
    graph.add_node(REPORT, lambda state: report_node(state, deps))
    graph.add_node(AUDIT, lambda state: audit_node(state, deps))
    graph.add_edge(START, SCAN)
    graph.add_edge(SCAN, PLAN)
    graph.add_conditional_edges(PLAN, route_after_plan, [REQUEST_APPROVAL, REPORT])
    graph.add_edge(REQUEST_APPROVAL, RESCAN)
    graph.add_edge(RESCAN, REPORT)
    graph.add_edge(REPORT, AUDIT)
    graph.add_edge(AUDIT, END)
    return graph.compile(checkpointer=checkpointer)


# --- nodes ---------------------------------------------------------------------------------------------------------
def scan_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    request = state["request"]
    outcome = screen(deps.scanner.scan(request.regions, request.check_ids))
    return {
        "scan": ScanSummary(
            account_id=outcome.account_id,
            finding_count=len(outcome.findings),
            error_count=len(outcome.errors),
            withheld_count=len(outcome.withheld),
            api_calls=outcome.api_calls,
            resource_counts=outcome.resource_counts,
        ),
        "findings": outcome.findings,
        "scan_errors": outcome.errors,
        "withheld": outcome.withheld,
    }


def plan_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    plan = make_plan(state["findings"], state["request"].policy, deps.scanner.propose, state["scan"].resource_counts)
    return {"plan": plan}


def route_after_plan(state: MissionState) -> str:
    return REQUEST_APPROVAL if state["plan"].status == PlanStatus.PROPOSED else REPORT


def request_approval_node(state: MissionState) -> dict[str, Any]:
    changes = state["plan"].changes
    answer = interrupt(approval_request(state["request"].mission_id, changes))
    return {"results": parse_results(answer, changes)}


def rescan_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    changes = state["plan"].changes
    check_ids = sorted({change.check_id for change in changes})
    outcome = screen(deps.scanner.scan(state["request"].regions, check_ids))
    return {"verification": verify(changes, outcome), "rescan_withheld": outcome.withheld}


def report_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    report = build_report(
        request=state["request"],
        account_id=state["scan"].account_id,
        findings=state["findings"],
        plan=state["plan"],
        scan_errors=state["scan_errors"],
        withheld=[*state["withheld"], *state.get("rescan_withheld", [])],
        results=state.get("results", []),
        verification=state.get("verification", []),
        finished_at=deps.clock().isoformat(),
        status="completed",
    )
    # The report is stored beside the mission (rewriting the same pages if this node runs again); the state keeps
    # only its summary, so the checkpoint does not hold the mission twice.
    pages, digest = deps.missions.write_report(report)
    return {"report": ReportSummary(plan_status=report.plan_status, totals=report.totals, pages=pages, digest=digest)}


def audit_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    mission_id = state["request"].mission_id
    plan = state["plan"]
    results = {r.change_id: r for r in state.get("results", [])}
    verified = {v.change_id: v for v in state.get("verification", [])}
    for change in plan.changes:
        result = results.get(change.change_id)
        verification = verified.get(change.change_id)
        deps.audit.append(
            mission_id,
            "change.result",
            _change_outcome(result, plan.status),
            change_id=change.change_id,
            digest=change.digest,
            resource_arn=change.resource_arn,
            decision=result.decision.value if result else None,
            reason=result.reason if result else "",
            verified=verification.state.value if verification else None,
        )
    summary = state["report"]
    deps.audit.append(
        mission_id,
        "mission.report",
        plan.status.value,
        totals=summary.totals.model_dump(mode="json"),
        report_pages=summary.pages,
        report_digest=summary.digest,
        plan_stop_reason=plan.stop_reason,
        exemptions=[{"finding_id": e.finding_id, "source": e.source, "reason": e.reason} for e in plan.exemptions],
        withheld=[note.model_dump(mode="json") for note in (*state["withheld"], *state.get("rescan_withheld", []))],
    )
    return {}


def _change_outcome(result: ChangeResult | None, status: PlanStatus) -> str:
    if result is None:
        return "not-requested" if status == PlanStatus.DRY_RUN else "pending"
    return result.outcome.value if result.outcome else result.decision.value


# --- helpers -------------------------------------------------------------------------------------------------------
def plan_digest(changes: Sequence[ChangeBase]) -> str:
    """One digest for the whole plan: SHA-256 over the canonical list of (change id, change digest)."""
    return sha256_hex(canonical_json([[c.change_id, c.digest] for c in changes]))


def approval_request(mission_id: str, changes: Sequence[ChangeBase]) -> dict[str, Any]:
    """The interrupt payload: what a human is asked to approve, as metadata only."""
    return {
        "mission_id": mission_id,
        "plan_digest": plan_digest(changes),
        "changes": [
            {
                "change_id": c.change_id,
                "kind": c.kind,
                "check_id": c.check_id,
                "resource_arn": c.resource_arn,
                "region": c.region,
                "risk": c.risk.value,
                "digest": c.digest,
                # Withheld here like in the report when a name recombined outside its ARN looks like a secret;
                # the structured before/after travel with the change itself.
                "before": display_text(c, "before_text", c.describe_before(), []),
                "after": display_text(c, "after_text", c.describe_after(), []),
            }
            for c in changes
        ],
    }


def parse_results(answer: Any, changes: Sequence[ChangeBase]) -> list[ChangeResult]:
    """Validate the resume answer: `{"results": [ChangeResult...]}` for exactly the changes of this plan, one each.
    Errors name the problem, never echo the input."""
    if not isinstance(answer, Mapping) or set(answer) != {"results"} or not isinstance(answer["results"], list):
        raise MalformedResume("the resume value must be {results: [...]}")
    try:
        results = [ChangeResult.model_validate(item) for item in answer["results"]]
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise MalformedResume(f"invalid per-change result (fields: {', '.join(fields)})") from None
    expected = {c.change_id for c in changes}
    received = [r.change_id for r in results]
    if len(received) != len(set(received)):
        raise MalformedResume("a change has more than one result")
    if set(received) != expected:
        unknown = len(set(received) - expected)
        missing = len(expected - set(received))
        raise MalformedResume(f"results do not match the plan ({unknown} unknown, {missing} missing change ids)")
    order = {c.change_id: i for i, c in enumerate(changes)}
    return sorted(results, key=lambda r: order[r.change_id])


def verify(changes: Sequence[ChangeBase], outcome: ScanOutcome) -> list[Verification]:
    """The re-scan's verdict per change: fixed, still failing, or unverified when its check could not run."""
    failing = {(f.check_id, f.resource_arn) for f in outcome.findings}
    errors: dict[str, str] = {}
    for error in outcome.errors:
        errors.setdefault(error.check_id, error.error)
    verdicts = []
    for change in changes:
        if change.check_id in errors:
            state, detail = VerifiedState.UNVERIFIED, errors[change.check_id]
        elif (change.check_id, change.resource_arn) in failing:
            state, detail = VerifiedState.STILL_FAILING, ""
        else:
            state, detail = VerifiedState.FIXED, ""
        verdicts.append(
            Verification(
                change_id=change.change_id,
                check_id=change.check_id,
                resource_arn=change.resource_arn,
                state=state,
                detail=detail,
            )
        )
    return verdicts
