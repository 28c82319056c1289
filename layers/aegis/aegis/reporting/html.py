"""The mission report a person reads: JSON for machines, one self-contained HTML page (no CDN, no script) for people.
The ops API serves the page (`GET /missions/{id}/report.html`) and `aegis-local` writes it, both from the stored
documents (`aegis.reporting.assembly`).

The HTML page is the product's infrastructure diff viewer: every change with its before/after state side by side,
who decided and when, what happened, and what the re-scan saw afterwards. Every value is escaped: resource names and
tags are attacker-controlled. Control and bidirectional characters are spelled out (`\\u202e`), so that a name
cannot reorder or hide what the reader sees around it.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from html import escape as html_escape
from typing import Any

from pydantic import BaseModel, Field, JsonValue

from aegis.cis import BENCHMARK_NAMES, CisVersion, cis_id_of, cis_sort_key
from aegis.reporting.agent_report import (
    EXEMPTION_NOT_CONFIRMED,
    AnalystChoice,
    FindingAnalystNote,
    ReportAnalyst,
)
from aegis.secrets_guard import display_text, visible


class ReportFinding(BaseModel):
    check_id: str
    title: str
    cis_v5: str
    cis_v3: str = ""
    cis_v6: str = ""
    cis_v7: str = ""
    severity: str
    resource_arn: str
    region: str = ""
    disposition: str  # planned | exempt | suppressed | notify-only | capped | dry-run
    reason: str = ""
    still_failing: bool | None = None  # from the re-scan; None when not re-scanned
    change_id: str | None = None
    # An `aegis:exempt` tag's reason the deployment did not confirm (the finding was treated as any other).
    exemption_claim: str | None = None
    # The analyst's word on the finding (None when no analyst ran or it was not asked), and, when it did not take
    # the deterministic choice, the line that says so beside that choice (`FindingAnalystNote.describe`).
    analyst: FindingAnalystNote | None = None
    analyst_line: str = ""


class ReportChange(BaseModel):
    change_id: str
    check_id: str
    kind: str
    title: str = ""
    resource_arn: str
    digest: str
    risk: str
    binding_message: str = ""
    before: JsonValue = None
    after: JsonValue = None
    before_text: str = ""
    after_text: str = ""
    decision: str = "pending"  # approved | denied | expired | halted | failed | pending
    approver_sub: str | None = None
    decided_at: str | None = None
    outcome: str | None = None  # applied | drift | failed | halted | denied | expired | skipped
    reason: str = ""
    verified_after: JsonValue = None
    region: str = ""
    requested_at: str | None = None  # when the approval request went to the approver's phone
    verified: str | None = None  # the re-scan's verdict: fixed | still_failing | unverified
    verified_detail: str = ""
    state_at_execution: JsonValue = None  # what the executor read right before applying (or found, on drift)
    out_of_band: str = ""  # what someone else did to the resource meanwhile (e.g. the demo's --drift)
    request_id: str | None = None  # the approval request it was asked in (`r001`...)
    batch_root: str | None = None  # that request's Merkle root, when it was a batch
    approved_by: list[str] = Field(default_factory=list)  # every approver who approved it (two-person rule: two)
    # The analyst's priority and rationale for the finding this change fixes: model-written, advisory.
    analyst: FindingAnalystNote | None = None

    @property
    def request_label(self) -> str:
        if self.request_id is None:
            return ""
        return f"{self.request_id} #{self.batch_root[:ROOT_PREFIX_CHARS]}" if self.batch_root else self.request_id


class RequestItem(BaseModel):
    """One change of an approval request, as the approval function recorded what the approver was shown."""

    change_id: str
    change_digest: str
    kind: str = ""
    resource_arn: str = ""
    region: str = ""
    risk: str = ""
    before_text: str = ""
    after_text: str = ""
    instruction: str = ""
    analyst: str = ""  # the analyst's note as the phone showed it (`P1: ...`), when the change had one


class RequestDecision(BaseModel):
    approver_sub: str = ""
    decision: str  # approved | denied | expired | halted | failed
    at: str = ""
    reason: str = ""


class ReportRequest(BaseModel):
    """One approval request of the mission (`r001`...): a single change, or a batch the approver approved with one
    tap on the Merkle root of its changes' digests."""

    request_id: str
    kind: str  # single | batch
    root: str | None = None  # a batch's Merkle root (SHA-256, canonical leaf order)
    review_url: str | None = None
    approvers: list[str] = Field(default_factory=list)
    count: int = 0
    kinds: str = ""
    risk: str = ""  # the highest risk of its changes
    binding_message: str = ""
    requested_at: str | None = None
    expires_at: str | None = None
    pushes: int = 0  # CIBA requests sent for it: one per approver asked
    decision: str = "pending"  # approved (by every approver asked) | the first refusal | pending
    decisions: list[RequestDecision] = Field(default_factory=list)
    items: list[RequestItem] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """`r002` for a single request, `r002 #1a2b3c` for a batch (the root's prefix the phone shows)."""
        return f"{self.request_id} #{self.root[:ROOT_PREFIX_CHARS]}" if self.root else self.request_id


class TimelineEntry(BaseModel):
    """One item of the mission's audit trail, as the report shows it."""

    at: str
    actor: str
    action: str
    outcome: str
    change_id: str | None = None
    detail: str = ""


class KillSwitchSummary(BaseModel):
    operation_id: str = ""
    requested_by: str = ""
    reason: str = ""
    triggered_at: str = ""
    after_applied: int | None = None
    ok: bool = True
    steps: list[dict[str, JsonValue]] = Field(default_factory=list)


class MissionReportDocument(BaseModel):
    mission_id: str
    status: str
    account_id: str = ""
    regions: list[str] = Field(default_factory=list)
    # The CIS AWS Foundations version findings are grouped by (reports before it was recorded grouped by v5).
    cis_version: CisVersion = "v5"
    started_at: str = ""
    finished_at: str = ""
    duration_seconds: float | None = None
    findings: list[ReportFinding] = Field(default_factory=list)
    changes: list[ReportChange] = Field(default_factory=list)
    scan_errors: list[dict[str, str]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    trigger: str = ""
    dry_run: bool = False
    plan_status: str = ""
    plan_stop_reason: str | None = None
    approvers: list[str] = Field(default_factory=list)
    verification: str = ""  # who re-scanned the touched resources afterwards
    kill_switch: KillSwitchSummary | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # The audit trail's hash chain as verified when the report was made (aegis.audit_chain), and its stored head.
    audit_chain: str = ""
    audit_chain_intact: bool = True
    audit_head: dict[str, JsonValue] | None = None
    # The approval requests (each push to a phone is one CIBA request; a batch asks about many changes at once).
    requests: list[ReportRequest] = Field(default_factory=list)
    pushes: int = 0
    # The analyst's summary and figures (None when the deployment has no analyst): model-written, advisory.
    analyst: ReportAnalyst | None = None

    def approvals_line(self) -> str:
        """`5 pushes for 13 changes: 2 batches, 3 single requests` ("" when nothing was asked)."""
        if not self.pushes:
            return ""
        batches = sum(1 for request in self.requests if request.kind == "batch")
        singles = len(self.requests) - batches
        asked = sum(request.count for request in self.requests) or len(self.changes)
        parts = [f"{batches} batch{'' if batches == 1 else 'es'}"] if batches else []
        if singles:
            parts.append(f"{singles} single request{'' if singles == 1 else 's'}")
        return f"{self.pushes} push{'' if self.pushes == 1 else 'es'} for {asked} change{'' if asked == 1 else 's'}" + (
            f": {', '.join(parts)}" if parts else ""
        )

    def outcome_counts(self) -> Counter[str]:
        return Counter(change.outcome or change.decision for change in self.changes)

    def severity_counts(self) -> list[tuple[str, int]]:
        """How many findings of each severity, the most severe first."""
        counts = Counter(f.severity for f in self.findings)
        return sorted(counts.items(), key=lambda kv: _SEVERITY_ORDER.get(kv[0], 9))

    def extra_summary_rows(self) -> list[str]:
        """Rows a subclass adds to the page's summary table (HTML it escaped); none here."""
        return []

    def extra_terminal_lines(self) -> list[str]:
        """Lines a subclass adds to the terminal summary; none here."""
        return []

    def terminal_summary(self) -> str:
        lines = [
            f"Mission {self.mission_id}: {self.status}",
            f"  findings: {len(self.findings)} (" + ", ".join(f"{n} {s}" for s, n in self.severity_counts()) + ")",
            f"  changes:  {len(self.changes)} ("
            + ", ".join(f"{n} {o}" for o, n in sorted(self.outcome_counts().items()))
            + ")",
        ]
        if self.pushes:
            lines.append(f"  approvals: {self.approvals_line()}")
        for change in self.changes:
            approvers = change.approved_by or ([change.approver_sub] if change.approver_sub else [])
            who = f" by {' and '.join(approvers)}" if approvers else ""
            if change.request_label:
                who += f" in {change.request_label}"
            rescan = f" [re-scan: {change.verified.replace('_', ' ')}]" if change.verified else ""
            lines.append(
                f"    {change.outcome or change.decision:<8} {change.check_id:<36} {change.resource_arn}"
                f"{who}{rescan}{' - ' + change.reason if change.reason else ''}"
            )
        claims = [f for f in self.findings if f.exemption_claim is not None]
        if claims:
            lines.append(f"  {EXEMPTION_NOT_CONFIRMED}: {len(claims)} (planned like any other finding)")
        if self.kill_switch is not None:
            lines.append(
                f"  kill switch: triggered by {self.kill_switch.requested_by} at {self.kill_switch.triggered_at}"
                + ("" if self.kill_switch.ok else " (some steps failed)")
            )
        lines += analyst_terminal_lines(self)
        lines += self.extra_terminal_lines()
        if self.audit_chain:
            lines.append("  " + self.audit_chain)
        # A terminal obeys control and bidirectional characters too.
        return "\n".join(visible(line) for line in lines)


def analyst_line(note: FindingAnalystNote | None) -> str:
    """`analyst chose notify-only (deterministic choice: <kind>)` when the analyst's answer did not simply take the
    deterministic choice (another candidate, no change, a human, or a fallback); "" when it agreed or did not run."""
    if note is None:
        return ""
    if note.choice == AnalystChoice.CANDIDATE and note.chosen_kind == note.deterministic_kind:
        return ""
    return note.describe()


def analyst_note_text(note: FindingAnalystNote | None) -> str:
    """`P1: <rationale>`, the analyst's note on a change as people read it (model text, screened), or ""."""
    if note is None or (note.priority is None and not note.rationale):
        return ""
    priority = f"P{note.priority}" if note.priority is not None else "P?"
    return display_text(f"{priority}: {note.rationale}" if note.rationale else priority)


def analyst_figures(analyst: ReportAnalyst) -> str:
    """`2 calls, 5120 input + 830 output tokens, fallbacks: analyst-timeout 3`."""
    calls = f"{analyst.calls} call{'' if analyst.calls == 1 else 's'}"
    tokens = f"{analyst.input_tokens} input + {analyst.output_tokens} output tokens"
    fallbacks = ", ".join(f"{reason} {count}" for reason, count in sorted(analyst.fallbacks.items()))
    return f"{calls}, {tokens}" + (f", fallbacks: {fallbacks}" if fallbacks else ", no fallback")


def analyst_terminal_lines(report: MissionReportDocument) -> list[str]:
    """The analyst's part for the terminal: model, figures, summary (marked as model-written), and each finding
    where it did not take the deterministic choice."""
    analyst = report.analyst
    if analyst is None:
        return []
    lines = [f"  analyst:  {analyst.model_id}: {analyst_figures(analyst)}"]
    if analyst.summary:
        lines.append(f"    summary (model-written, advisory): {display_text(analyst.summary)}")
    lines += [f"    {f.check_id} {f.resource_arn}: {f.analyst_line}" for f in report.findings if f.analyst_line]
    return lines


_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
# How many characters of a batch's Merkle root the phone's binding message shows (`Approve 12 changes #1a2b3c`).
ROOT_PREFIX_CHARS = 6
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#1d2330}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
.meta{color:#5b6475}.pill{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.8rem;font-weight:600}
.critical{background:#fde2e1;color:#9b1c1c}.high{background:#feecdc;color:#8a2c0d}
.medium{background:#fdf6b2;color:#723b13}
.low{background:#e1effe;color:#1e429f}.applied{background:#def7ec;color:#03543f}.denied,.expired,.halted,.failed,.drift
{background:#fde8e8;color:#9b1c1c}.pending,.skipped{background:#eef;color:#445}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eef;vertical-align:top}
th{background:#f6f7fb;font-weight:600}code{font:12px ui-monospace,Menlo,Consolas,monospace}
.change{border:1px solid #dde;border-radius:.5rem;padding:1rem;margin:1rem 0}.change h3{margin:0 0 .4rem;font-size:1rem}
table.diff{font:12px ui-monospace,Menlo,Consolas,monospace}table.diff td{white-space:pre-wrap;
word-break:break-word;border:0;padding:0 .4rem;width:48%}table.diff td.diff_header{color:#889;width:2.5rem;
text-align:right}table.diff th{width:auto}.diff_next{display:none}
.diff_add{background:#d8f5dd}.diff_chg{background:#fff3c4}.diff_sub{background:#fbd9d9}td.diff_next{display:none}
.summary td:first-child{width:14rem;color:#5b6475}.ok{color:#03543f;font-weight:600}.bad{color:#9b1c1c;font-weight:600}
.fixed{background:#def7ec;color:#03543f}.still_failing{background:#fde8e8;color:#9b1c1c}.unverified{background:#eef;color:#445}
.timeline td{font-size:12px}
.analyst{border-left:3px solid #a4cafe;background:#f5f9ff;padding:.4rem .7rem;margin:.5rem 0;white-space:pre-wrap}
.advisory{color:#5b6475;font-size:.85rem}
"""


def escape(text: str) -> str:
    """HTML-escaped, with invisible characters spelled out: what every value of the page goes through."""
    return html_escape(visible(text))


def _pill(text: str) -> str:
    return f'<span class="pill {escape(text)}">{escape(text)}</span>'


def _pretty(value: Any) -> list[str]:
    if value is None:
        return ["(none)"]
    # HtmlDiff escapes the markup; an invisible character becomes its JSON escape, which reads the same.
    return [visible(line) for line in json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()]


def _diff_table(before: Any, after: Any) -> str:
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(_pretty(before), _pretty(after), "before", "after")
    # HtmlDiff escapes the content itself; it only adds its own markup.
    return table


def render_html(report: MissionReportDocument) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>AegisCloud mission {escape(report.mission_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Mission <code>{escape(report.mission_id)}</code> {_pill(report.status)}</h1>",
        f"<p class=meta>account {escape(report.account_id)} · regions {escape(', '.join(report.regions))} · "
        f"{escape(report.started_at)} → {escape(report.finished_at)}"
        + (f" · {report.duration_seconds:.1f} s" if report.duration_seconds is not None else "")
        + "</p>",
        *_summary_section(report),
        *_analyst_section(report),
        *_findings_sections(report),
        *_requests_section(report),
        "<h2>Changes</h2>",
        *(line for change in report.changes for line in _change_section(change)),
        *_scan_errors_section(report),
        *_kill_switch_section(report),
    ]
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>")
    parts += _timeline_section(report)
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_section(report: MissionReportDocument) -> list[str]:
    parts = [
        "<table class=summary>",
        f"<tr><td>Findings</td><td>{len(report.findings)} "
        + " ".join(f"{_pill(s)} {n}" for s, n in report.severity_counts())
        + "</td></tr>",
        f"<tr><td>Changes</td><td>{len(report.changes)} "
        + " ".join(f"{_pill(o)} {n}" for o, n in sorted(report.outcome_counts().items()))
        + "</td></tr>",
    ]
    if report.pushes:
        parts.append(f"<tr><td>Approval pushes</td><td>{escape(report.approvals_line())}</td></tr>")
    parts += report.extra_summary_rows()
    if report.audit_chain:
        verdict = "ok" if report.audit_chain_intact else "bad"
        parts.append(f"<tr><td>Audit chain</td><td><span class={verdict}>{escape(report.audit_chain)}</span></td></tr>")
    if report.approvers:
        parts.append(f"<tr><td>Approvers</td><td>{escape(', '.join(report.approvers))}</td></tr>")
    if report.verification:
        parts.append(f"<tr><td>Verified by</td><td>{escape(report.verification)}</td></tr>")
    if report.kill_switch is not None:
        kill = report.kill_switch
        parts.append(
            f"<tr><td>Kill switch</td><td>{_pill('halted')} triggered by {escape(kill.requested_by)} at "
            f"{escape(kill.triggered_at)}: {escape(kill.reason)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _analyst_section(report: MissionReportDocument) -> list[str]:
    """The analyst's part: which model, its figures, its summary, and how many findings it did not take the
    deterministic choice for. Everything it wrote is model output: escaped (and screened) like any hostile text,
    and labelled as advisory, never as a finding of the product."""
    analyst = report.analyst
    if analyst is None:
        return []
    parts = [
        "<h2 id=analyst>Analyst</h2>",
        f"<p class=meta>model <code>{escape(analyst.model_id)}</code> · {escape(analyst_figures(analyst))}</p>",
    ]
    if analyst.summary:
        parts += [
            "<p class=advisory>Summary written by the model: advisory, not checked by AegisCloud. The changes "
            "below are built by code; the model only chose among them.</p>",
            f"<div class=analyst id=analyst-summary>{escape(display_text(analyst.summary))}</div>",
        ]
    overruled = [f for f in report.findings if f.analyst_line]
    if overruled:
        parts.append(
            f"<p>{len(overruled)} finding{'' if len(overruled) == 1 else 's'} where the analyst did not take the "
            "deterministic choice (shown beside each finding below).</p>"
        )
    return parts


def _findings_sections(report: MissionReportDocument) -> list[str]:
    version = report.cis_version
    column = f"CIS {version}"
    controls = Counter((_cis(f, version), f.title) for f in report.findings)
    by_control = [
        [escape(cis), escape(title), str(count)]
        for (cis, title), count in sorted(controls.items(), key=lambda kv: cis_sort_key(kv[0][0]))
    ]
    findings = sorted(report.findings, key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.check_id, f.resource_arn))
    return [
        *_table(f"Findings by CIS control ({BENCHMARK_NAMES[version]})", (column, "Control", "Count"), by_control),
        *_table(
            "Findings",
            ("Severity", column, "Check", "Resource", "Disposition", "After re-scan"),
            (_finding_cells(f, version) for f in findings),
        ),
    ]


def _cis(f: ReportFinding, version: CisVersion) -> str:
    # A report written before the checks carried v6/v7 ids still groups by the v5 id it has.
    return cis_id_of(f, version) or f.cis_v5


def _finding_cells(f: ReportFinding, version: CisVersion) -> list[str]:
    rescan = "" if f.still_failing is None else ("still failing" if f.still_failing else "fixed")
    claim = ""
    if f.exemption_claim is not None and EXEMPTION_NOT_CONFIRMED not in f.reason:
        claim = f" · {EXEMPTION_NOT_CONFIRMED}: {escape(f.exemption_claim)}"
    analyst = f"<br><span class=advisory>{escape(display_text(f.analyst_line))}</span>" if f.analyst_line else ""
    return [
        _pill(f.severity),
        escape(_cis(f, version)),
        escape(f.check_id),
        f"<code>{escape(f.resource_arn)}</code>",
        f"{escape(f.disposition)}{' - ' + escape(f.reason) if f.reason else ''}{claim}{analyst}",
        escape(rescan),
    ]


def _change_section(c: ReportChange) -> list[str]:
    approvers = c.approved_by or ([c.approver_sub] if c.approver_sub else [])
    decided = f" by {' and '.join(f'<code>{escape(sub)}</code>' for sub in approvers)}" if approvers else ""
    if c.request_id:
        what = f"batch <code>{escape(c.request_label)}</code>" if c.batch_root else f"request {escape(c.request_id)}"
        decided += f" in {what}"
    when = f" at {escape(c.decided_at)}" if c.decided_at else ""
    parts = [
        f"<div class=change id={escape(c.change_id)}><h3>{escape(c.title or c.kind)} "
        f"{_pill(c.outcome or c.decision)}</h3>",
        f"<p class=meta><code>{escape(c.resource_arn)}</code> · risk {_pill(c.risk)} · check "
        f"{escape(c.check_id)} · change <code>{escape(c.change_id)}</code> · digest "
        f"<code>{escape(c.digest[:16])}…</code></p>",
        f"<p>Approver saw: <code>{escape(c.binding_message)}</code>. Decision: <b>{escape(c.decision)}</b>"
        f"{decided}{when}.{' Reason: ' + escape(c.reason) if c.reason else ''}</p>",
    ]
    note = analyst_note_text(c.analyst)
    if note:
        parts.append(
            f"<p class=analyst>AI analyst (advisory): {escape(note)}"
            + (f" <span class=advisory>· {escape(display_text(c.analyst.describe()))}</span>" if c.analyst else "")
            + "</p>"
        )
    parts.append(_diff_table(c.before, c.after))
    if c.out_of_band:
        parts.append(f"<p class=bad>Changed by someone else meanwhile: {escape(c.out_of_band)}</p>")
    if c.state_at_execution is not None:
        parts.append(
            "<p class=meta>State the executor read before acting: "
            f"<code>{escape(json.dumps(c.state_at_execution, sort_keys=True))}</code></p>"
        )
    if c.verified_after is not None:
        parts.append(f"<p class=meta>Verified after: <code>{escape(json.dumps(c.verified_after))}</code></p>")
    if c.verified:
        detail = f" {escape(c.verified_detail)}" if c.verified_detail else ""
        parts.append(f"<p>Re-scan: {_pill(c.verified)}{detail}</p>")
    parts.append("</div>")
    return parts


def _requests_section(report: MissionReportDocument) -> list[str]:
    if not report.requests:
        return []
    rows = (
        [
            f"<code>{escape(request.request_id)}</code>",
            escape(request.kind),
            str(request.count),
            f"<code>{escape(request.root)}</code>" if request.root else "",
            escape(request.kinds),
            escape(", ".join(request.approvers)),
            str(request.pushes),
            _pill(request.decision),
        ]
        for request in report.requests
    )
    return _table(
        "Approval requests",
        ("Request", "Kind", "Changes", "Merkle root", "By kind", "Approvers", "Pushes", "Decision"),
        rows,
    )


def _scan_errors_section(report: MissionReportDocument) -> list[str]:
    if not report.scan_errors:
        return []
    rows = (
        [
            escape(error.get("check_id", "")),
            escape(error.get("region", "")),
            f"{escape(error.get('error', ''))}: {escape(error.get('message', ''))}",
        ]
        for error in report.scan_errors
    )
    return _table("Scan errors", ("Check", "Region", "Error"), rows)


def _kill_switch_section(report: MissionReportDocument) -> list[str]:
    if report.kill_switch is None or not report.kill_switch.steps:
        return []
    rows = (
        [
            escape(str(step.get("step", ""))),
            _pill("applied" if step.get("ok") else "failed"),
            escape(str(step.get("reason", ""))),
        ]
        for step in report.kill_switch.steps
    )
    return _table("Kill switch", ("Step", "Result", "Detail"), rows)


def _timeline_section(report: MissionReportDocument) -> list[str]:
    if not report.timeline:
        return []
    rows = (
        [
            escape(entry.at),
            escape(entry.actor),
            escape(entry.action),
            escape(entry.outcome),
            f"<code>{escape(entry.change_id or '')}</code>",
            escape(entry.detail),
        ]
        for entry in report.timeline
    )
    return _table("Audit trail", ("At", "Actor", "Action", "Outcome", "Change", "Detail"), rows, "timeline")


def _table(title: str, headers: Sequence[str], rows: Iterable[Sequence[str]], table_class: str = "") -> list[str]:
    """A titled table, one line per row: `headers` are plain text, each row's cells HTML the caller escaped."""
    attributes = f" class={table_class}" if table_class else ""
    head = "".join(f"<th>{header}</th>" for header in headers)
    return [
        f"<h2>{title}</h2><table{attributes}><tr>{head}</tr>",
        *("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows),
        "</table>",
    ]
