"""The mission report as `aegis-local` writes it: the product's report page (`aegis.reporting.html`, which the ops API
serves too) plus what only the local stack knows, the leak audit of everything the mission left behind.
"""

from __future__ import annotations

from aegis.reporting import html
from aegis.reporting.agent_report import EXEMPTION_NOT_CONFIRMED
from aegis.reporting.html import KillSwitchSummary, ReportChange, ReportFinding, TimelineEntry, escape, render_html
from aegis_local.reporting.leak_audit import LeakAuditResult

__all__ = [
    "EXEMPTION_NOT_CONFIRMED",
    "KillSwitchSummary",
    "MissionReportDocument",
    "ReportChange",
    "ReportFinding",
    "TimelineEntry",
    "leak_audit_rows",
    "render_html",
]


class MissionReportDocument(html.MissionReportDocument):
    """The report with the local stack's leak audit: its verdict in the page's summary and the terminal's."""

    leak_audit: LeakAuditResult | None = None

    def extra_summary_rows(self) -> list[str]:
        return leak_audit_rows(self.leak_audit) if self.leak_audit is not None else []

    def extra_terminal_lines(self) -> list[str]:
        return ["  " + self.leak_audit.summary()] if self.leak_audit is not None else []


def leak_audit_rows(audit: LeakAuditResult) -> list[str]:
    verdict = (
        "<span class=ok>no secret found</span>" if audit.clean else f"<span class=bad>{len(audit.hits)} leaks</span>"
    )
    rows = [
        f"<tr><td>Leak audit</td><td>{audit.values_searched} issued secrets searched in "
        f"{audit.places_searched} places: {verdict}</td></tr>"
    ]
    if audit.sources:
        listed = ", ".join(f"{escape(name)}: {count}" for name, count in audit.sources.items())
        rows.append(f"<tr><td>Secrets searched for</td><td>{listed}</td></tr>")
    if audit.places:
        listed = ", ".join(f"{escape(name)}: {count}" for name, count in audit.places.items())
        rows.append(f"<tr><td>Places searched</td><td>{listed}</td></tr>")
    rows += [f"<tr><td></td><td>{escape(note)}</td></tr>" for note in audit.notes]
    rows += [f"<tr><td></td><td class=bad>found in {escape(hit.place)}</td></tr>" for hit in audit.hits]
    return rows
