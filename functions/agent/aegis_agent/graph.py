"""The mission graph:

    scan -> [analyse] -> plan -> (proposed) request_approval -> rescan -> report -> audit -> END
                              -> (empty, capped or dry run)                report -> audit -> END

`analyse` is there only when the deployment has an analyst (ANALYST_MODEL_ID): a language model that chooses among
the fixes code built for each finding and writes a rationale and a summary (`aegis_agent.analyst`). Its answer is the
`analysis` document, written before the interrupt, so a resume never calls the model again; the exact input and
output of each call are the `analyst-input-<n>` / `analyst-output-<n>` documents.

An undo mission (`request.undo`) runs the same graph: its scan covers the original change's check, and its plan is
`[Undo.of(original)]` or a named refusal (`aegis_agent.undo`).

The state is the mission's control state only; every collection that grows with the account or the plan is a
mission document in the Missions table, written by the node that produces it and referenced from the state by page
count and digest (see `state`): the scan's findings (`scan`), the plan (`plan`), the approval results (`results`),
the re-scan's verdicts (`rescan`) and the report. A node that needs one reads it back, checked against its digest.

`request_approval` stops the run with `interrupt()` carrying metadata only (mission id, plan digest, change ids and
where the plan document is). It re-runs from its start when the mission resumes, so before the interrupt it has no
side effect: it only computes the request from the state. The answer refers to the state machine's opaque per-change
results (never a token), which the service validated against the plan and stored as the `results` document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from pydantic import ValidationError

from aegis.approvals.policy import ApprovalPolicy
from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase, plan_digest
from aegis.models import ChangeResult, Finding, ScanError
from aegis.reporting.agent_report import ReportSummary
from aegis_agent.analyst import AnalysisRecord, Analyst, AnalystExchange, AnalystItem, overview
from aegis_agent.errors import AccountUnreachable, MalformedResume
from aegis_agent.missions import MissionStore
from aegis_agent.orgcap import OrgCap
from aegis_agent.plan import analysed_proposer, cap_to_grant, change_groups, is_exempt, make_plan
from aegis_agent.report import build_report
from aegis_agent.scanner import Scanner, ScanOutcome, screen
from aegis_agent.state import (
    AnalysisSummary,
    ApprovalResults,
    DocumentRef,
    MissionRequest,
    Plan,
    PlanStatus,
    PlanSummary,
    RescanRecord,
    ScanRecord,
    ScanSummary,
    Verification,
    VerifiedState,
)
from aegis_agent.undo import plan_undo

SCAN, ANALYSE, PLAN, REQUEST_APPROVAL, RESCAN, REPORT, AUDIT = (
    "scan",
    "analyse",
    "plan",
    "request_approval",
    "rescan",
    "report",
    "audit",
)
# Mission documents, by the node that writes them (the report document is the MissionStore's own).
SCAN_DOCUMENT, PLAN_DOCUMENT, RESULTS_DOCUMENT, RESCAN_DOCUMENT = "scan", "plan", "results", "rescan"
ANALYSIS_DOCUMENT = "analysis"
# Entries per audit item for account-sized lists: at ~150 bytes each, a part stays near 40 KB.
AUDIT_PART_ENTRIES = 250


class MissionState(TypedDict, total=False):
    request: MissionRequest
    scan: ScanSummary
    analysis: AnalysisSummary
    plan: PlanSummary
    results: DocumentRef  # ApprovalResults
    rescan: DocumentRef  # RescanRecord
    report: ReportSummary


@dataclass
class AgentDeps:
    scanner: Scanner
    audit: AuditLog
    missions: MissionStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # The deployment's approval policy: planning leaves out what it cannot have approved (None: the validator alone
    # refuses such a plan).
    approval: ApprovalPolicy | None = None
    # The scanner of the mission's account (aegis_agent.accounts: the agent's own, or a member's scan role); None:
    # `scanner` scans every mission.
    scanner_for: Callable[[MissionRequest], Scanner] | None = None
    # The organization-wide cap an organization scan's account plans under (None: no organization scans).
    org_cap: OrgCap | None = None
    # The analyst (None: plans are deterministic), and the checks whose fix the deployment pinned
    # (REMEDIATION_CHOICES): their findings are never sent to it.
    analyst: Analyst | None = None
    pinned_checks: frozenset[str] = frozenset()

    def scanner_of(self, request: MissionRequest) -> Scanner:
        return self.scanner_for(request) if self.scanner_for is not None else self.scanner


def build_graph(deps: AgentDeps, checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(MissionState)
    graph.add_node(SCAN, lambda state: scan_node(state, deps))
    if deps.analyst is not None:
        graph.add_node(ANALYSE, lambda state: analyse_node(state, deps))
    graph.add_node(PLAN, lambda state: plan_node(state, deps))
    graph.add_node(REQUEST_APPROVAL, lambda state: request_approval_node(state, deps))
    graph.add_node(RESCAN, lambda state: rescan_node(state, deps))
    graph.add_node(REPORT, lambda state: report_node(state, deps))
    graph.add_node(AUDIT, lambda state: audit_node(state, deps))
    graph.add_edge(START, SCAN)
    if deps.analyst is not None:
        graph.add_edge(SCAN, ANALYSE)
        graph.add_edge(ANALYSE, PLAN)
    else:
        graph.add_edge(SCAN, PLAN)
    graph.add_conditional_edges(PLAN, route_after_plan, [REQUEST_APPROVAL, REPORT])
    graph.add_edge(REQUEST_APPROVAL, RESCAN)
    graph.add_edge(RESCAN, REPORT)
    graph.add_edge(REPORT, AUDIT)
    graph.add_edge(AUDIT, END)
    return graph.compile(checkpointer=checkpointer)


# --- the mission's documents, read back from the state's references ------------------------------------------------
def load_scan(values: Mapping[str, Any], missions: MissionStore) -> ScanRecord:
    """The scan's findings, errors and withheld notes of the mission whose state (channel values) is `values`."""
    return missions.read_document(values["request"].mission_id, values["scan"].document, ScanRecord)


def load_plan(values: Mapping[str, Any], missions: MissionStore) -> Plan:
    """The plan (changes, exemptions, notes) of the mission whose state is `values`."""
    return missions.read_document(values["request"].mission_id, values["plan"].document, Plan)


def load_analysis(values: Mapping[str, Any], missions: MissionStore) -> AnalysisRecord | None:
    """The analyst's decisions and summary, or None when no analyst ran for the mission."""
    if values.get("analysis") is None:
        return None
    return missions.read_document(values["request"].mission_id, values["analysis"].document, AnalysisRecord)


def load_results(values: Mapping[str, Any], missions: MissionStore) -> tuple[ChangeResult, ...]:
    """The per-change approval results, or none before the mission was resumed."""
    if "results" not in values:
        return ()
    return missions.read_document(values["request"].mission_id, values["results"], ApprovalResults).results


def load_rescan(values: Mapping[str, Any], missions: MissionStore) -> RescanRecord:
    """The re-scan's verdicts, or an empty record when there was no re-scan."""
    if "rescan" not in values:
        return RescanRecord(verification=())
    return missions.read_document(values["request"].mission_id, values["rescan"], RescanRecord)


# --- nodes ---------------------------------------------------------------------------------------------------------
def scan_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    request = state["request"]
    outcome = screen(deps.scanner_of(request).scan(request.regions, request.check_ids))
    record = ScanRecord(
        account_id=outcome.account_id,
        findings=tuple(outcome.findings),
        errors=tuple(outcome.errors),
        withheld=tuple(outcome.withheld),
    )
    document = deps.missions.write_document(request.mission_id, SCAN_DOCUMENT, record)
    return {
        "scan": ScanSummary(
            account_id=outcome.account_id,
            finding_count=len(outcome.findings),
            error_count=len(outcome.errors),
            withheld_count=len(outcome.withheld),
            api_calls=outcome.api_calls,
            resource_counts=outcome.resource_counts,
            by_severity=dict(Counter(f.severity.value for f in outcome.findings)),
            by_cis_v5=dict(Counter(f.cis_v5 for f in outcome.findings)),
            by_check=dict(Counter(f.check_id for f in outcome.findings)),
            document=document,
        )
    }


def analyse_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    """The analyst's decisions over the findings it may decide (a fix exists, nothing exempts them, their check is
    not pinned), stored as the `analysis` document with the exact input and output of each call. An undo mission
    plans exactly its undo: nothing to decide."""
    request = state["request"]
    assert deps.analyst is not None
    if request.undo is not None:
        return {"analysis": None}
    scan = load_scan(state, deps.missions)
    items = []
    for finding in sorted(scan.findings, key=lambda f: (f.check_id, f.resource_arn)):
        if finding.remediation is None or finding.check_id in deps.pinned_checks or is_exempt(finding, request.policy):
            continue
        item = analyst_item(finding, deps.scanner)
        if item is not None:
            items.append(item)
    run = deps.analyst.analyse(items, overview(scan.findings))
    calls = []
    for exchange in run.exchanges:
        number = exchange.record.number
        stored = {
            f"{side}_document": deps.missions.write_document(
                request.mission_id, f"analyst-{side}-{number}", AnalystExchange(payload=payload)
            )
            for side, payload in (("input", exchange.request), ("output", exchange.response))
        }
        calls.append(exchange.record.model_copy(update=stored))
    record = AnalysisRecord(
        model_id=run.model_id, summary=run.summary, findings=tuple(run.findings), calls=tuple(calls)
    )
    document = deps.missions.write_document(request.mission_id, ANALYSIS_DOCUMENT, record)
    deps.audit.append(
        request.mission_id,
        "analyst.decided",
        "recorded",
        model_id=record.model_id,
        calls=len(record.calls),
        findings=len(record.findings),
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        fallbacks=record.fallbacks(),
        analysis_digest=document.digest,
    )
    return {
        "analysis": AnalysisSummary(
            calls=len(record.calls),
            findings=len(record.findings),
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            document=document,
        )
    }


def analyst_item(finding: Finding, scanner: Scanner) -> AnalystItem | None:
    """The finding with every fix code builds for it and the index of the deterministic one; None when the
    deterministic fix is not among them (nothing for the analyst to choose from)."""
    chosen = scanner.propose(finding)
    if chosen is None:
        return None
    build = getattr(scanner, "candidates", None)
    candidates = tuple(build(finding)) if build is not None else (chosen,)
    digests = [candidate.digest for candidate in candidates]
    if chosen.digest not in digests:
        return None
    return AnalystItem(finding=finding, candidates=candidates, deterministic=digests.index(chosen.digest))


def plan_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    request = state["request"]
    scan = load_scan(state, deps.missions)
    if request.undo is not None:
        # An undo mission plans exactly the undo it was asked for, or refuses by name (UndoRefused).
        plan = plan_undo(request.undo, request.policy, scan, deps.approval)
    else:
        analysis = load_analysis(state, deps.missions)
        plan = make_plan(
            scan.findings,
            request.policy,
            deps.scanner.propose if analysis is None else analysed_proposer(deps.scanner, analysis),
            state["scan"].resource_counts,
            deps.approval,
            analyst=analysis,
        )
        if request.org_scan and plan.status == PlanStatus.PROPOSED:
            plan = _org_capped(request, plan, scan, deps)
    document = deps.missions.write_document(request.mission_id, PLAN_DOCUMENT, plan)
    return {
        "plan": PlanSummary(
            status=plan.status,
            stop_reason=plan.stop_reason,
            change_ids=tuple(change.change_id for change in plan.changes),
            plan_digest=plan_digest(plan.changes),
            exemption_count=len(plan.exemptions),
            note_count=len(plan.notes),
            document=document,
        )
    }


def _org_capped(request: MissionRequest, plan: Plan, scan: ScanRecord, deps: AgentDeps) -> Plan:
    """The plan within what the organization scan still allows (MAX_CHANGES_PER_ORG_SCAN), reserved before the
    plan is written, so the plan document, the state and the report all hold the same (capped) plan."""
    assert request.org_scan is not None
    if deps.org_cap is None:
        # Wired without the cap (never in a deployment): fail closed, an organization scan's account proposes nothing.
        granted, maximum = 0, 0
    else:
        grant = deps.org_cap.reserve(request.org_scan, request.mission_id, change_groups(plan.changes))
        granted, maximum = grant.granted, grant.max_changes
    capped = cap_to_grant(
        plan,
        scan.findings,
        granted,
        f"MAX_CHANGES_PER_ORG_SCAN: the organization scan's {maximum} changes are already proposed by its other "
        "accounts",
    )
    deps.audit.append(
        request.mission_id,
        "plan.org_cap",
        "granted" if granted == len(plan.changes) else "capped",
        org_scan=request.org_scan,
        requested=len(plan.changes),
        granted=granted,
        max_changes=maximum,
    )
    return capped


def route_after_plan(state: MissionState) -> str:
    return REQUEST_APPROVAL if state["plan"].status == PlanStatus.PROPOSED else REPORT


def request_approval_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    mission_id = state["request"].mission_id
    answer = interrupt(approval_request(mission_id, state["plan"]))
    document = parse_answer(answer)
    # The service checked the results before storing them; they are checked again against the plan as stored.
    stored = deps.missions.read_document(mission_id, document, ApprovalResults)
    match_plan(stored.results, load_plan(state, deps.missions).changes)
    return {"results": document}


def rescan_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    request = state["request"]
    changes = load_plan(state, deps.missions).changes
    check_ids = sorted({change.check_id for change in changes})
    try:
        outcome = screen(deps.scanner_of(request).scan(request.regions, check_ids))
    except AccountUnreachable as exc:
        # The member's scan role could not be assumed again after the changes: nothing is verified, by name (the AWS
        # error code), and the report says so per change.
        errors = [
            ScanError(check_id=c, region=r, error=exc.code, message="") for c in check_ids for r in request.regions
        ]
        outcome = ScanOutcome(account_id=request.account_id or "", findings=[], errors=errors)
    record = RescanRecord(verification=tuple(verify(changes, outcome)), withheld=tuple(outcome.withheld))
    return {"rescan": deps.missions.write_document(request.mission_id, RESCAN_DOCUMENT, record)}


def report_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    scan = load_scan(state, deps.missions)
    rescan = load_rescan(state, deps.missions)
    report = build_report(
        request=state["request"],
        account_id=scan.account_id,
        findings=scan.findings,
        plan=load_plan(state, deps.missions),
        scan_errors=scan.errors,
        withheld=[*scan.withheld, *rescan.withheld],
        results=load_results(state, deps.missions),
        verification=rescan.verification,
        analysis=load_analysis(state, deps.missions),
        finished_at=deps.clock().isoformat(),
        status="completed",
    )
    # The report is stored beside the mission (rewriting the same pages if this node runs again); the state keeps
    # only its summary.
    pages, digest = deps.missions.write_report(report)
    # Then, for every check this mission ran, it becomes the newest mission covering that check (unless a newer one
    # already is): what the ops API's GET /findings shows. Only missions that end with a report get here.
    request = state["request"]
    ran = request.check_ids or tuple(deps.scanner.known_check_ids())
    deps.missions.record_latest_findings(request, ran, report.finished_at)
    return {"report": ReportSummary(plan_status=report.plan_status, totals=report.totals, pages=pages, digest=digest)}


def audit_node(state: MissionState, deps: AgentDeps) -> dict[str, Any]:
    mission_id = state["request"].mission_id
    plan = load_plan(state, deps.missions)
    rescan = load_rescan(state, deps.missions)
    results = {r.change_id: r for r in load_results(state, deps.missions)}
    verified = {v.change_id: v for v in rescan.verification}
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
    exemptions = [{"finding_id": e.finding_id, "source": e.source, "reason": e.reason} for e in plan.exemptions]
    _append_in_parts(deps.audit, mission_id, "mission.exemptions", "exemptions", exemptions)
    # Tags that claimed an exemption the deployment did not confirm: their findings were planned anyway.
    claims = [{"finding_id": e.finding_id, "reason": e.reason} for e in plan.claimed_exemptions]
    _append_in_parts(deps.audit, mission_id, "mission.exemption_claims", "claims", claims)
    withheld = [*load_scan(state, deps.missions).withheld, *rescan.withheld]
    _append_in_parts(
        deps.audit, mission_id, "mission.withheld", "withheld", [note.model_dump(mode="json") for note in withheld]
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
    )
    return {}


def _append_in_parts(audit: AuditLog, mission_id: str, action: str, name: str, entries: Sequence[Any]) -> None:
    """Lists that grow with the account (exemptions, withheld notes) are audited in parts of a bounded size, so no
    audit item nears DynamoDB's item limit however many resources an account exempts."""
    parts = [entries[start : start + AUDIT_PART_ENTRIES] for start in range(0, len(entries), AUDIT_PART_ENTRIES)]
    for index, part in enumerate(parts):
        audit.append(mission_id, action, "recorded", part=index + 1, parts=len(parts), **{name: list(part)})


def _change_outcome(result: ChangeResult | None, status: PlanStatus) -> str:
    if result is None:
        return "not-requested" if status == PlanStatus.DRY_RUN else "pending"
    return result.outcome.value if result.outcome else result.decision.value


# --- helpers -------------------------------------------------------------------------------------------------------
def approval_request(mission_id: str, plan: PlanSummary) -> dict[str, Any]:
    """The interrupt payload: what a human is asked to approve, as metadata only. The plan digest commits to every
    change (its id and digest); each change's resource, risk and diff are in the plan document it names."""
    return {
        "mission_id": mission_id,
        "plan_digest": plan.plan_digest,
        "change_ids": list(plan.change_ids),
        "plan_document": plan.document.model_dump(mode="json"),
    }


def parse_results(answer: Any, changes: Sequence[ChangeBase]) -> list[ChangeResult]:
    """Validate the state machine's answer: `{"results": [ChangeResult...]}` for exactly the changes of this plan,
    one each; returned in plan order. Errors name the problem, never echo the input."""
    if not isinstance(answer, Mapping) or set(answer) != {"results"} or not isinstance(answer["results"], list):
        raise MalformedResume("the resume value must be {results: [...]}")
    try:
        results = [ChangeResult.model_validate(item) for item in answer["results"]]
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise MalformedResume(f"invalid per-change result (fields: {', '.join(fields)})") from None
    return match_plan(results, changes)


def match_plan(results: Sequence[ChangeResult], changes: Sequence[ChangeBase]) -> list[ChangeResult]:
    """The results in plan order, if there is exactly one for each change of the plan; else MalformedResume."""
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


def results_answer(document: DocumentRef) -> dict[str, Any]:
    """The resume value: a reference to the stored `results` document. LangGraph persists resume values, so the
    results themselves are persisted once, in their document, and the checkpoint holds only where they are."""
    return {"results_document": document.model_dump(mode="json")}


def parse_answer(answer: Any) -> DocumentRef:
    """The `results` document a resume value refers to; MalformedResume for anything else."""
    if not isinstance(answer, Mapping) or set(answer) != {"results_document"}:
        raise MalformedResume("the resume value must be {results_document: {name, pages, digest}}")
    try:
        document = DocumentRef.model_validate(answer["results_document"])
    except ValidationError:
        raise MalformedResume("the resume value names no valid document") from None
    if document.name != RESULTS_DOCUMENT:
        raise MalformedResume("the resume value names another document than the results")
    return document


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
