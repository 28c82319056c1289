"""The mission report: what was found (by CIS control and severity), what was planned and why not, what each change
was (before/after), what the human decided, what the executor did, and what the re-scan saw afterwards.

The models are in the layer (`aegis.reporting.agent_report`), where the ops API reads the stored report too; this
module builds the report from the mission's state.

Resource names are identifiers: a change's before/after states keep them as they are (the report document is
checked as the model it is, `ReportChange.json_identifiers`). The texts derived from them for people to read
(binding message, before/after texts, a tag's claimed reason) withhold what looks like a secret and spell out
invisible characters, so that a name cannot reorder or hide the text around it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from aegis.approvals.policy import NEEDS_SECOND_APPROVER
from aegis.catalogue import ChangeBase
from aegis.cis import CisVersion, cis_id_of, cis_sort_key
from aegis.models import ChangeResult, Finding, Outcome, ScanError, Severity
from aegis.reporting.agent_report import (
    EXEMPTION_NOT_CONFIRMED,
    ControlSummary,
    Disposition,
    FindingAnalystNote,
    MissionReport,
    ReportAnalyst,
    ReportChange,
    ReportFinding,
    Totals,
)
from aegis.secrets_guard import WITHHELD, display_text, secret_kind, visible
from aegis_agent.analyst import AnalysisRecord
from aegis_agent.plan import PlanNoteReason
from aegis_agent.state import (
    Exemption,
    MissionRequest,
    Plan,
    PlanNote,
    PlanStatus,
    Verification,
    VerifiedState,
    WithheldNote,
)

_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


def build_report(
    *,
    request: MissionRequest,
    account_id: str,
    findings: Sequence[Finding],
    plan: Plan,
    scan_errors: Sequence[ScanError],
    withheld: Sequence[WithheldNote],
    results: Sequence[ChangeResult],
    verification: Sequence[Verification],
    finished_at: str,
    status: str,
    analysis: AnalysisRecord | None = None,
) -> MissionReport:
    by_change = {change.change_id: change for change in plan.changes}
    result_by_change = {result.change_id: result for result in results}
    verified_by_change = {v.change_id: v for v in verification}
    change_by_target = {(c.check_id, c.resource_arn): c for c in plan.changes}
    verified_by_target = {(v.check_id, v.resource_arn): v for v in verification}
    exemption_by_finding = {e.finding_id: e for e in plan.exemptions}
    claim_by_finding = {e.finding_id: visible(e.reason) for e in plan.claimed_exemptions}
    note_by_finding = {n.finding_id: n for n in plan.notes}
    capped = set(plan.capped_finding_ids)
    analyst_by_target = _analyst_by_target(analysis)

    report_findings = []
    version = request.policy.cis_version
    ordered = sorted(
        findings,
        key=lambda f: (_SEVERITY_ORDER[f.severity], cis_sort_key(cis_id_of(f, version) or f.cis_v5), f.resource_arn),
    )
    for finding in ordered:
        target = (finding.check_id, finding.resource_arn)
        change = change_by_target.get(target)
        disposition, reason = _disposition(
            finding,
            plan,
            change=change,
            exemption=exemption_by_finding.get(finding.finding_id),
            notes=note_by_finding,
            capped=capped,
        )
        claim = claim_by_finding.get(finding.finding_id)
        analyst = analyst_by_target.get(target)
        if analyst is not None and disposition == Disposition.UNPLANNED and reason in _ANALYST_REASONS:
            # "analyst chose notify-only (deterministic choice: ...)": a human sees what the model skipped.
            reason = analyst.describe()
        if claim is not None and not reason:
            reason = f"{EXEMPTION_NOT_CONFIRMED}: {claim}"
        verified = verified_by_target.get(target)
        report_findings.append(
            ReportFinding(
                finding_id=finding.finding_id,
                check_id=finding.check_id,
                title=finding.title,
                cis_v3=finding.cis_v3,
                cis_v5=finding.cis_v5,
                cis_v6=finding.cis_v6,
                cis_v7=finding.cis_v7,
                severity=finding.severity,
                resource_arn=finding.resource_arn,
                resource_type=finding.resource_type,
                region=finding.region,
                disposition=disposition,
                reason=reason,
                change_id=change.change_id if change else None,
                still_failing=None if verified is None else verified.state != VerifiedState.FIXED,
                exemption_claim=claim,
                analyst=analyst,
            )
        )

    text_notes: list[WithheldNote] = []
    report_changes = [
        _report_change(
            change, result_by_change.get(change_id), verified_by_change.get(change_id), plan.status, text_notes
        ).model_copy(update={"analyst": analyst_by_target.get((change.check_id, change.resource_arn))})
        for change_id, change in by_change.items()
    ]
    withheld = [*withheld, *text_notes]
    dispositions = Counter(f.disposition for f in report_findings)
    totals = Totals(
        findings=len(report_findings),
        changes=len(report_changes),
        exempt=dispositions[Disposition.EXEMPT],
        suppressed=dispositions[Disposition.SUPPRESSED],
        notify_only=dispositions[Disposition.NOTIFY_ONLY],
        unplanned=dispositions[Disposition.UNPLANNED],
        scan_errors=len(scan_errors),
        withheld=len(withheld),
        applied=sum(1 for c in report_changes if c.outcome == Outcome.APPLIED),
        verified_fixed=sum(1 for c in report_changes if c.verified == VerifiedState.FIXED),
    )
    return MissionReport(
        mission_id=request.mission_id,
        status=status,
        account_id=account_id,
        trigger=request.trigger.value,
        regions=list(request.regions),
        dry_run=request.policy.dry_run,
        undo_enabled=request.policy.undo_enabled,
        started_at=request.requested_at,
        finished_at=finished_at,
        plan_status=plan.status,
        plan_stop_reason=plan.stop_reason,
        totals=totals,
        by_severity=_severity_counts(findings),
        controls=_controls(report_findings, version),
        cis_version=version,
        findings=report_findings,
        changes=report_changes,
        exemptions=list(plan.exemptions),
        claimed_exemptions=list(plan.claimed_exemptions),
        plan_notes=list(plan.notes),
        scan_errors=list(scan_errors),
        withheld=list(withheld),
        notes=_notes(plan, request),
        analyst=_report_analyst(analysis),
    )


_ANALYST_REASONS = frozenset({PlanNoteReason.ANALYST_NOTIFY_ONLY, PlanNoteReason.ANALYST_NEEDS_HUMAN})


def _report_analyst(analysis: AnalysisRecord | None) -> ReportAnalyst | None:
    if analysis is None:
        return None
    return ReportAnalyst(
        model_id=analysis.model_id,
        summary=analysis.summary,
        calls=len(analysis.calls),
        input_tokens=analysis.input_tokens,
        output_tokens=analysis.output_tokens,
        fallbacks=analysis.fallbacks(),
    )


def _analyst_by_target(analysis: AnalysisRecord | None) -> dict[tuple[str, str], FindingAnalystNote]:
    """The analyst's note per (check, resource): what a finding and the change that fixes it share."""
    return {(f.check_id, f.resource_arn): f.note for f in analysis.findings} if analysis is not None else {}


def analyst_notes(analysis: AnalysisRecord | None, changes: Sequence[ChangeBase]) -> dict[str, FindingAnalystNote]:
    """The analyst's note for each change whose finding it decided (the approver sees its priority and rationale)."""
    by_target = _analyst_by_target(analysis)
    found = {c.change_id: by_target.get((c.check_id, c.resource_arn)) for c in changes}
    return {change_id: note for change_id, note in found.items() if note is not None and note.rationale}


def _disposition(
    finding: Finding,
    plan: Plan,
    *,
    change: ChangeBase | None,
    exemption: Exemption | None,
    notes: dict[str, PlanNote],
    capped: set[str],
) -> tuple[Disposition, str]:
    if exemption is not None:
        source = Disposition.EXEMPT if exemption.source == "tag" else Disposition.SUPPRESSED
        return source, visible(exemption.reason)
    if change is not None:
        return (Disposition.DRY_RUN if plan.status == PlanStatus.DRY_RUN else Disposition.PLANNED), ""
    if finding.finding_id in capped:
        return Disposition.CAPPED, plan.stop_reason or ""
    if finding.remediation is None:
        # What a human should do instead, as the check says (a control with no fix, or none configured).
        return Disposition.NOTIFY_ONLY, manual_fix(finding.check_id)
    note = notes.get(finding.finding_id)
    return Disposition.UNPLANNED, note.reason if note else ""


def manual_fix(check_id: str) -> str:
    from aegis.checks import CHECKS  # every check module: loaded when a report is built, not with the handler

    check = CHECKS.get(check_id)
    return check.METADATA.manual_fix if check is not None else ""


def shown_text(change: ChangeBase, name: str, text: str, notes: list[WithheldNote]) -> str:
    """A text derived from a change for people to read (summary, before/after). Names recombined outside their
    fields can look like a secret; such a piece is withheld with a note, like any resource data, and invisible
    characters are spelled out."""
    shown = display_text(text)
    if WITHHELD in shown and WITHHELD not in text:
        kind = secret_kind(text) or "secret-shaped"
        notes.append(WithheldNote(check_id=change.check_id, field=f"change[{change.change_id}]:{name}", kind=kind))
    return shown


def _report_change(
    change: ChangeBase,
    result: ChangeResult | None,
    verified: Verification | None,
    plan_status: PlanStatus,
    notes: list[WithheldNote],
) -> ReportChange:
    dumped = change.model_dump(mode="json")
    if result is not None:
        decision = result.decision.value
    elif plan_status == PlanStatus.DRY_RUN:
        decision = "not-requested"
    else:
        decision = "pending"
    return ReportChange(
        change_id=change.change_id,
        check_id=change.check_id,
        kind=change.kind,
        title=change.TITLE,
        resource_arn=change.resource_arn,
        region=change.region,
        risk=change.risk,
        digest=change.digest,
        binding_message=shown_text(change, "binding_message", change.binding_message(), notes),
        before=dumped.get("before"),
        after=dumped.get("after"),
        before_text=shown_text(change, "before_text", change.describe_before(), notes),
        after_text=shown_text(change, "after_text", change.describe_after(), notes),
        decision=decision,
        outcome=result.outcome if result else None,
        reason=result.reason if result else "",
        verified_after=result.verified_after if result else None,
        verified=verified.state if verified else None,
        verified_detail=verified.detail if verified else "",
    )


def _severity_counts(findings: Sequence[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {severity.value: counts[severity] for severity in sorted(counts, key=_SEVERITY_ORDER.__getitem__)}


def _controls(findings: Sequence[ReportFinding], version: CisVersion) -> list[ControlSummary]:
    grouped: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in findings:
        grouped[cis_id_of(finding, version) or finding.cis_v5].append(finding)
    summaries = []
    for cis, members in grouped.items():
        severities = Counter(f.severity for f in members)
        summaries.append(
            ControlSummary(
                cis=cis,
                cis_v5=members[0].cis_v5,
                cis_v3=members[0].cis_v3,
                check_ids=tuple(sorted({f.check_id for f in members})),
                titles=tuple(sorted({f.title for f in members})),
                findings=len(members),
                by_severity={s.value: severities[s] for s in sorted(severities, key=_SEVERITY_ORDER.__getitem__)},
                fixed=sum(1 for f in members if f.still_failing is False),
            )
        )
    return sorted(summaries, key=lambda s: cis_sort_key(s.cis))


UNDO_DISABLED_NOTE = (
    "Undo is disabled in this deployment (no UndoTokenVaultConnection): an applied change cannot be undone through "
    "AegisCloud."
)


def _notes(plan: Plan, request: MissionRequest) -> list[str]:
    notes = []
    if request.org_scan:
        # The report's account_id is the scanned account; an organization scan's report also names the scan it is
        # one account of (the ops API's GET /missions?org_scan= lists them together).
        notes.append(f"Account {request.account_id} of organization scan {request.org_scan}.")
    org_capped = sum(1 for note in plan.notes if note.reason == PlanNoteReason.ORG_CAP_REACHED)
    if org_capped:
        notes.append(
            f"Organization-wide cap reached (MAX_CHANGES_PER_ORG_SCAN): {org_capped} finding(s) got no change because "
            "the organization scan's other accounts had already proposed as many changes as it allows."
        )
    if plan.status == PlanStatus.CAPPED and plan.stop_reason:
        notes.append(f"Plan stopped by a blast-radius cap, no change was proposed: {plan.stop_reason}")
    if plan.status == PlanStatus.DRY_RUN:
        notes.append("Dry run: changes were planned but no approval was requested and nothing was applied.")
    if plan.status == PlanStatus.EMPTY:
        notes.append("Nothing to change: no finding has an applicable remediation.")
    if plan.changes and not request.policy.undo_enabled:
        notes.append(UNDO_DISABLED_NOTE)
    if plan.claimed_exemptions:
        notes.append(
            f"Findings with an {EXEMPTION_NOT_CONFIRMED} (neither SUPPRESSIONS nor TRUST_EXEMPTION_TAGS confirms it): "
            f"{len(plan.claimed_exemptions)}, planned like any other. Anyone allowed to tag a resource can set the "
            "tag."
        )
    second = sum(1 for note in plan.notes if note.reason == NEEDS_SECOND_APPROVER)
    if second:
        notes.append(
            f"Needs a second approver: {second} finding(s) whose change needs two distinct approvers "
            "(APPROVAL_TWO_PERSON_RISK), which the approval policy (APPROVER_SUBS, APPROVER_ROUTING) does not give it. "
            "They were not planned, and never downgraded to one approval."
        )
    if plan.share_unchecked_types:
        notes.append(
            "MAX_SHARE_PER_RESOURCE_TYPE not evaluated (inventory size unknown) for: "
            + ", ".join(plan.share_unchecked_types)
        )
    if request.check_ids:
        notes.append("Scan limited to checks: " + ", ".join(request.check_ids))
    return notes
