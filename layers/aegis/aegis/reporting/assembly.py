"""Assemble the mission report a person reads (`aegis.reporting.html.MissionReportDocument`) from what the mission
persisted: the agent's own stored report (`aegis.reporting.agent_report.MissionReport`), the mission item and the
audit trail. The ops API (`GET /missions/{id}`, `/report.html`) and `aegis-local` both build the page this way.

The agent's report is the backbone: findings, plan, decisions, outcomes and its re-scan of the touched resources. The
audit trail adds who approved or denied each change and when, what the executor read right before acting, the
executor's verified after-state, and the whole trail as a timeline. A mission without a stored report (still
running, or stopped by the kill switch before it resumed) shows its timeline only; `aegis-local` can rebuild such a
mission's report from its checkpoint (`aegis_local.reporting.mission_report`), which the ops API cannot read.

Every text comes from places that refuse secrets by construction (report pages, audit items); nothing here reads a
token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aegis.audit_chain import ChainHead, verify_chain
from aegis.catalogue import ChangeBase
from aegis.models import ChangeResult, Decision, Outcome
from aegis.reporting.agent_report import FindingAnalystNote, MissionReport
from aegis.reporting.html import (
    KillSwitchSummary,
    MissionReportDocument,
    ReportChange,
    ReportFinding,
    ReportRequest,
    RequestDecision,
    RequestItem,
    TimelineEntry,
    analyst_line,
)
from aegis.secrets_guard import display_text

__all__ = [
    "AGENT_VERIFICATION",
    "ENDED_NOTE",
    "NO_PLAN_NOTE",
    "RUNNING_NOTE",
    "ChangeFacts",
    "approval_requests",
    "assemble_document",
    "audit_details",
    "change_facts",
    "ended_status",
    "explain",
    "is_push",
    "pushes",
    "request_changes",
    "results_from_trail",
    "timeline_entry",
]

REQUESTED = "approval.requested"
DECIDED = "approval.decided"
# The approval function's audit actor: its `approval.requested` records are the CIBA requests it sent.
APPROVAL_ACTOR = "approval"
AGENT_VERIFICATION = "the agent's re-scan of the touched resources when the mission resumed"
NO_PLAN_NOTE = "The mission stopped before the agent had a plan: there are no findings or changes to show."
RUNNING_NOTE = "The mission is still running: the agent writes its report when it ends."
ENDED_NOTE = "The mission's execution ended before the agent resumed: the agent wrote no report."
# A mission item keeps a running status when its execution ends without resuming the agent; the kill switch records
# the end in the mission's trail (`mission.ended`, outcome the execution's status in lower case), or the halt.
_RUNNING = frozenset({"scanning", "awaiting_approval"})
_ENDED_AS = {"aborted": "stopped", "timed_out": "timed_out", "failed": "failed"}
# Audit details worth a place in the timeline; everything else is ids and digests the report shows elsewhere.
_TIMELINE_KEYS = (
    "approver_sub",
    "approved_at",
    "expires_at",
    "reason",
    "error",
    "role_session_name",
    "requested_by",
    "approvals_failed",
    "hops",
    "status",
)


@dataclass
class ChangeFacts:
    """What the audit trail says about one change."""

    requested_at: str | None = None
    decision: str | None = None
    approver_sub: str | None = None
    decided_at: str | None = None
    decision_reason: str = ""
    state_at_execution: Any = None
    executor_outcome: str | None = None
    executor_reason: str = ""
    verified_after: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)
    # The approval request the change was asked in (`r001`...), and its Merkle root when that was a batch.
    request_id: str | None = None
    batch_root: str | None = None
    # Every approver who approved it (two for a change under the two-person rule), in the order they decided.
    approved_by: list[str] = field(default_factory=list)


def audit_details(item: Mapping[str, Any]) -> dict[str, Any]:
    raw = item.get("details")
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return dict(raw) if isinstance(raw, Mapping) else {}


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def request_changes(trail: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Request id -> the ids of the changes it asks about, from the `approval.requested` records: a batch lists its
    items, a single request names its one change."""
    found: dict[str, list[str]] = {}
    for item in trail:
        if item.get("action") != REQUESTED:
            continue
        details = audit_details(item)
        request_id = _text_or_none(details.get("request_id"))
        if request_id is None or request_id in found:
            continue
        items = details.get("items")
        if isinstance(items, list) and items:
            ids = [
                str(entry.get("change_id")) for entry in items if isinstance(entry, Mapping) and entry.get("change_id")
            ]
        else:
            ids = [details["change_id"]] if isinstance(details.get("change_id"), str) else []
        found[request_id] = ids
    return found


def _record_changes(details: Mapping[str, Any], by_request: Mapping[str, list[str]]) -> list[str]:
    """The changes one audit record is about: its own change id, else every change of the request it names (a
    batch's approval records name the request, not each change)."""
    change_id = details.get("change_id")
    if isinstance(change_id, str):
        return [change_id]
    request_id = _text_or_none(details.get("request_id"))
    return list(by_request.get(request_id, [])) if request_id is not None else []


def change_facts(trail: Sequence[Mapping[str, Any]]) -> dict[str, ChangeFacts]:
    facts: dict[str, ChangeFacts] = {}
    by_request = request_changes(trail)
    for item in trail:
        details = audit_details(item)
        for change_id in _record_changes(details, by_request):
            _add_fact(facts.setdefault(change_id, ChangeFacts()), item, details)
    return facts


def _add_fact(found: ChangeFacts, item: Mapping[str, Any], details: Mapping[str, Any]) -> None:
    action, outcome, at = str(item.get("action")), str(item.get("outcome")), str(item.get("at", ""))
    found.events.append(action)
    request_id = _text_or_none(details.get("request_id"))
    if action == REQUESTED:
        found.requested_at = found.requested_at or at
        found.request_id = found.request_id or request_id
        found.batch_root = found.batch_root or _text_or_none(details.get("merkle_root"))
    elif action == DECIDED:
        found.request_id = found.request_id or request_id
        approver = _text_or_none(details.get("approver_sub"))
        # Under the two-person rule one denial decides, and an approval does not undo it: the first refusal stays.
        if found.decision in (None, Decision.APPROVED.value):
            found.decision = outcome
            found.approver_sub = approver or found.approver_sub
            found.decided_at = details.get("approved_at") or at
            found.decision_reason = str(details.get("reason") or details.get("error") or "")
        if outcome == Decision.APPROVED.value and approver and approver not in found.approved_by:
            found.approved_by.append(approver)
    elif action in ("executor.applying", "executor.applied"):
        found.state_at_execution = details.get("before_state", found.state_at_execution)
    elif action == "executor.drift":
        found.state_at_execution = details.get("current")
    elif action == "executor.result":
        raw_result = details.get("result")
        result: Mapping[str, Any] = raw_result if isinstance(raw_result, Mapping) else {}
        found.executor_outcome = str(result.get("outcome") or outcome)
        found.executor_reason = str(result.get("reason") or "")
        after = result.get("verified_after")
        found.verified_after = dict(after) if isinstance(after, Mapping) else None
    if action.startswith("executor."):
        # The executor knows no request id, only the root it verified the change's proof against.
        found.batch_root = found.batch_root or _text_or_none(details.get("batch_root"))


def pushes(trail: Sequence[Mapping[str, Any]]) -> int:
    """How many requests went to an approver's phone: one `approval.requested` record per CIBA request (a batch asks
    once for all its changes; a two-person request asks each of its two approvers). The agent's own
    `approval.requested` record (the execution started, nothing pushed yet) is no push."""
    return sum(1 for item in trail if is_push(item))


def is_push(item: Mapping[str, Any]) -> bool:
    return item.get("action") == REQUESTED and item.get("actor") == APPROVAL_ACTOR


_SINGLE_ITEM_FIELDS = (
    "kind",
    "resource_arn",
    "region",
    "risk",
    "before_text",
    "after_text",
    "instruction",
    "analyst",  # the analyst's note as the phone showed it (absent when the change had none)
)
_RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def _request_items(details: Mapping[str, Any]) -> list[RequestItem]:
    raw = details.get("items")
    if isinstance(raw, list) and raw:
        return [
            RequestItem(
                change_id=str(entry.get("change_id", "")),
                change_digest=str(entry.get("change_digest", "")),
                **{name: str(entry.get(name) or "") for name in _SINGLE_ITEM_FIELDS},
            )
            for entry in raw
            if isinstance(entry, Mapping)
        ]
    if isinstance(details.get("change_id"), str):
        return [
            RequestItem(
                change_id=details["change_id"],
                change_digest=str(details.get("change_digest") or ""),
                **{name: str(details.get(name) or "") for name in _SINGLE_ITEM_FIELDS},
            )
        ]
    return []


def approval_requests(trail: Sequence[Mapping[str, Any]]) -> list[ReportRequest]:
    """The mission's approval requests, in the order they were first made, from the approval function's records:
    `approval.requested` (what each approver was shown, one record per approver asked) and `approval.decided`. Records
    from before requests had ids (no `request_id`) make no request here; they still count as pushes."""
    requests: dict[str, ReportRequest] = {}
    by_change: dict[str, str] = {}
    for item in trail:
        details = audit_details(item)
        action, at = item.get("action"), str(item.get("at", ""))
        request_id = _text_or_none(details.get("request_id"))
        if action == REQUESTED and request_id is not None:
            request = requests.get(request_id)
            if request is None:
                request = requests[request_id] = _new_request(request_id, details, at)
                for entry in request.items:
                    by_change.setdefault(entry.change_id, request_id)
            request.pushes += 1
            approver = _text_or_none(details.get("approver_sub"))
            if approver and approver not in request.approvers:
                request.approvers.append(approver)
        elif action == DECIDED:
            if request_id is None and isinstance(details.get("change_id"), str):
                request_id = by_change.get(details["change_id"])
            request = requests.get(request_id) if request_id is not None else None
            if request is None:
                continue
            decision = RequestDecision(
                approver_sub=str(details.get("approver_sub") or ""),
                decision=str(item.get("outcome", "")),
                at=str(details.get("approved_at") or at),
                reason=str(details.get("reason") or details.get("error") or ""),
            )
            # A batch's decision is recorded once per change (each findable by its change id): one decision here.
            if not any(
                (d.approver_sub, d.decision) == (decision.approver_sub, decision.decision) for d in request.decisions
            ):
                request.decisions.append(decision)
    for request in requests.values():
        request.decision = _request_decision(request)
    return list(requests.values())


def _new_request(request_id: str, details: Mapping[str, Any], at: str) -> ReportRequest:
    items = _request_items(details)
    root = _text_or_none(details.get("merkle_root"))
    kind = _text_or_none(details.get("request_kind")) or ("batch" if root else "single")
    approvers = details.get("approvers")
    risks = [entry.risk for entry in items if entry.risk in _RISK_ORDER]
    count = details.get("count")
    return ReportRequest(
        request_id=request_id,
        kind=kind,
        root=root,
        review_url=_text_or_none(details.get("review_url")),
        approvers=[str(sub) for sub in approvers] if isinstance(approvers, list) else [],
        count=count if isinstance(count, int) and not isinstance(count, bool) else len(items),
        kinds=str(details.get("kinds") or (items[0].kind if len(items) == 1 else "")),
        risk=str(details.get("risk") or (max(risks, key=_RISK_ORDER.__getitem__) if risks else "")),
        binding_message=str(details.get("binding_message") or ""),
        requested_at=at or None,
        expires_at=_text_or_none(details.get("expires_at")),
        items=items,
    )


def _request_decision(request: ReportRequest) -> str:
    refused = next((d.decision for d in request.decisions if d.decision != Decision.APPROVED.value), None)
    if refused is not None:
        return refused
    approved = {d.approver_sub for d in request.decisions}
    return Decision.APPROVED.value if approved and len(approved) >= max(1, len(request.approvers)) else "pending"


def results_from_trail(
    changes: Sequence[ChangeBase], trail: Sequence[Mapping[str, Any]], *, halted: bool
) -> list[ChangeResult]:
    """The per-change results of a mission that did not resume, from its audit trail.

    The agent's own `mission.halted` record wins when the agent did resume after the kill switch (it carries the
    state machine's results); otherwise each change's approval decision and executor result are read back, and a
    change the mission never got to is "halted" (or "failed" when the mission ended for another reason)."""
    recorded = _agent_halted_results(trail)
    facts = change_facts(trail)
    results = []
    for change in changes:
        if change.change_id in recorded:
            results.append(recorded[change.change_id])
            continue
        found = facts.get(change.change_id, ChangeFacts())
        if found.executor_outcome is not None:
            decision, outcome = Decision.APPROVED, _outcome(found.executor_outcome)
            reason = found.executor_reason
        elif found.decision == Decision.APPROVED.value:
            decision, outcome = Decision.APPROVED, Outcome.HALTED if halted else Outcome.FAILED
            reason = "approved, but the mission was stopped before the executor ran"
        elif found.decision is not None and found.decision in {d.value for d in Decision}:
            decision, outcome = Decision(found.decision), Outcome.SKIPPED
            reason = found.decision_reason or f"Approval.{found.decision.capitalize()}"
        else:
            decision, outcome = (Decision.HALTED if halted else Decision.FAILED), Outcome.SKIPPED
            reason = "never decided: the mission was stopped first"
        results.append(
            ChangeResult(
                change_id=change.change_id,
                decision=decision,
                outcome=outcome,
                reason=reason,
                verified_after=found.verified_after,
            )
        )
    return results


def _outcome(value: str) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        return Outcome.FAILED


def _agent_halted_results(trail: Sequence[Mapping[str, Any]]) -> dict[str, ChangeResult]:
    for item in trail:
        if item.get("actor") == "agent" and item.get("action") == "mission.halted":
            results = audit_details(item).get("results") or []
            parsed = {}
            for raw in results:
                try:
                    result = ChangeResult.model_validate(raw)
                except ValueError:
                    continue
                parsed[result.change_id] = result
            return parsed
    return {}


# The executor's error for an approval whose token expired before its change ran (the end of a long batch).
APPROVAL_EXPIRED_BEFORE_EXECUTION = "Executor.ApprovalExpired"


def explain(
    decision: str,
    outcome: str | None,
    reason: str,
    *,
    approver: str | None,
    out_of_band: str = "",
    at: str | None = None,
) -> str:
    """Why a change ended as it did, in words, with the machine reason kept in brackets."""
    who = approver or "the approver"
    when = f" at {at}" if at else ""
    code = f" [{reason}]" if reason else ""
    if outcome == Outcome.APPLIED.value:
        return ""
    if decision == Decision.DENIED.value:
        return f"denied on the phone by {who}{when}{code}"
    if decision == Decision.EXPIRED.value and reason == APPROVAL_EXPIRED_BEFORE_EXECUTION:
        return f"approved by {who}, but the approval's token expired before the change ran: nothing was applied{code}"
    if decision == Decision.EXPIRED.value:
        return f"the approval request to {who} expired unanswered{code}"
    if outcome == Outcome.DRIFT.value:
        edited = f" ({out_of_band})" if out_of_band else ""
        return f"approved by {who}, but the resource changed before execution{edited}: nothing was applied{code}"
    if decision == Decision.HALTED.value or outcome == Outcome.HALTED.value:
        return f"stopped by the kill switch{code}"
    if outcome == Outcome.FAILED.value or decision == Decision.FAILED.value:
        return f"failed{code}"
    return reason


def assemble_document[D: MissionReportDocument](
    *,
    mission_id: str,
    item: Mapping[str, Any] | None,
    trail: Sequence[Mapping[str, Any]],
    agent_report: MissionReport | None,
    status: str,
    verification: str = AGENT_VERIFICATION,
    kill_switch: KillSwitchSummary | None = None,
    out_of_band: Mapping[str, str] | None = None,
    notes: Iterable[str] = (),
    duration_seconds: float | None = None,
    no_report_note: str = NO_PLAN_NOTE,
    document_type: type[D] = MissionReportDocument,  # type: ignore[assignment]
) -> D:
    """The report page's document of one mission: `item` is its Missions item (None if unknown), `trail` its audit
    records oldest first, `agent_report` the report the agent stored (None if it has none: `no_report_note` says why).

    `out_of_band` maps change ids to what someone else did to the resource meanwhile (the demo's --drift)."""
    extra_notes = list(notes)
    ended = ended_status(status, trail)
    if ended != status and no_report_note == RUNNING_NOTE:
        no_report_note = ENDED_NOTE
    status = ended
    if agent_report is None:
        document = document_type(mission_id=mission_id, status=status, notes=[*extra_notes, no_report_note])
    else:
        facts = change_facts(trail)
        document = _document(agent_report, status, verification, facts, out_of_band or {}, document_type=document_type)
        document.notes = [*agent_report.notes, *extra_notes]
    document.kill_switch = kill_switch
    document.requests = approval_requests(trail)
    document.pushes = pushes(trail)
    document.timeline = [timeline_entry(entry) for entry in trail]
    document.duration_seconds = duration_seconds
    head = ChainHead.of_mission(item)
    # The chainer may be a stream delay behind the last records: not linked yet is not a verdict here.
    chain = verify_chain(mission_id, trail, head, settled=False)
    document.audit_chain = chain.summary()
    document.audit_chain_intact = chain.intact
    document.audit_head = dict(head.as_item()) if head is not None else None
    if item is not None and item.get("error"):
        document.notes.append(f"The mission failed: {item['error']}")
    return document


def ended_status(status: str, trail: Sequence[Mapping[str, Any]]) -> str:
    """The mission's status, once its trail says a mission its item still calls running is over: "halted" by the
    kill switch, "stopped" by hand, or "timed_out" / "failed" as its execution ended."""
    if status not in _RUNNING:
        return status
    if any(item.get("action") == "mission.halted" for item in trail):
        return "halted"
    for item in trail:
        if item.get("actor") == "killswitch" and item.get("action") == "mission.ended":
            outcome = str(item.get("outcome"))
            return _ENDED_AS.get(outcome, outcome)
    return status


def _document[D: MissionReportDocument](
    report: MissionReport,
    status: str,
    verification: str,
    facts: Mapping[str, ChangeFacts],
    out_of_band: Mapping[str, str],
    *,
    document_type: type[D],
) -> D:
    findings = [
        ReportFinding(
            check_id=f.check_id,
            title=f.title,
            cis_v5=f.cis_v5,
            cis_v3=f.cis_v3,
            cis_v6=f.cis_v6,
            cis_v7=f.cis_v7,
            severity=f.severity.value,
            resource_arn=f.resource_arn,
            region=f.region,
            disposition=f.disposition.value,
            reason=f.reason,
            still_failing=f.still_failing,
            change_id=f.change_id,
            exemption_claim=f.exemption_claim,
            analyst=_screened(f.analyst),
            analyst_line=display_text(analyst_line(f.analyst)),
        )
        for f in report.findings
    ]
    changes = []
    approvers: list[str] = []
    for c in report.changes:
        found = facts.get(c.change_id, ChangeFacts())
        outcome = c.outcome.value if c.outcome is not None else None
        approver = found.approver_sub
        for sub in [*found.approved_by, *([approver] if approver else [])]:
            if sub not in approvers:
                approvers.append(sub)
        changes.append(
            ReportChange(
                change_id=c.change_id,
                check_id=c.check_id,
                kind=c.kind,
                title=c.title,
                resource_arn=c.resource_arn,
                region=c.region,
                digest=c.digest,
                risk=c.risk.value,
                binding_message=c.binding_message,
                before=c.before,
                after=c.after,
                before_text=c.before_text,
                after_text=c.after_text,
                decision=c.decision,
                approver_sub=approver,
                decided_at=found.decided_at,
                requested_at=found.requested_at,
                outcome=outcome,
                reason=explain(
                    c.decision,
                    outcome,
                    c.reason,
                    approver=approver,
                    out_of_band=out_of_band.get(c.change_id, ""),
                    at=found.decided_at,
                ),
                # The state machine passes the executor's verified after-state to nobody; the audit trail has it.
                verified_after=c.verified_after if c.verified_after is not None else found.verified_after,
                verified=c.verified.value if c.verified is not None else None,
                verified_detail=c.verified_detail,
                state_at_execution=found.state_at_execution,
                out_of_band=out_of_band.get(c.change_id, ""),
                request_id=found.request_id,
                batch_root=found.batch_root,
                approved_by=list(found.approved_by),
                analyst=_screened(c.analyst),
            )
        )
    started = report.started_at
    return document_type(
        mission_id=report.mission_id,
        status=status,
        account_id=report.account_id,
        regions=list(report.regions),
        cis_version=report.cis_version,
        started_at=started,
        finished_at=report.finished_at,
        findings=findings,
        changes=changes,
        scan_errors=[error.model_dump(mode="json") for error in report.scan_errors],
        trigger=report.trigger,
        dry_run=report.dry_run,
        plan_status=report.plan_status.value,
        plan_stop_reason=report.plan_stop_reason,
        approvers=approvers,
        verification=verification if changes else "",
        analyst=(
            report.analyst.model_copy(update={"summary": display_text(report.analyst.summary)})
            if report.analyst is not None
            else None
        ),
    )


def _screened(note: FindingAnalystNote | None) -> FindingAnalystNote | None:
    """The analyst's note with its model-written rationale as people may read it: the agent already withheld what
    looked like a secret, and the page and the console show text, never markup; this also spells out invisible
    characters, so that a rationale cannot reorder the console's text around it."""
    return None if note is None else note.model_copy(update={"rationale": display_text(note.rationale)})


def timeline_entry(item: Mapping[str, Any]) -> TimelineEntry:
    details = audit_details(item)
    shown = [f"{key}={details[key]}" for key in _TIMELINE_KEYS if details.get(key) not in (None, "", [])]
    result = details.get("result")
    if isinstance(result, Mapping) and result.get("outcome"):
        shown.append(f"outcome={result['outcome']}")
        if result.get("reason"):
            shown.append(f"reason={result['reason']}")
    change_id = details.get("change_id")
    return TimelineEntry(
        at=str(item.get("at", "")),
        actor=str(item.get("actor", "")),
        action=str(item.get("action", "")),
        outcome=str(item.get("outcome", "")),
        change_id=change_id if isinstance(change_id, str) else None,
        detail="; ".join(shown),
    )
