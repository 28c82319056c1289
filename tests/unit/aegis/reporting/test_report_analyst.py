"""The analyst's part of the report a person reads (HTML page, the JSON the ops API serves, the terminal): the model,
its figures and its summary labelled as model-written and advisory; each change's priority and rationale; and, beside
each finding where the analyst did not take the deterministic choice, the line saying so. Everything the model wrote
is hostile text: escaped, invisible characters spelled out, secret-shaped values withheld."""

from __future__ import annotations

import json

from aegis.reporting.agent_report import AnalystChoice, FindingAnalystNote, MissionReport, ReportAnalyst
from aegis.reporting.assembly import approval_requests, assemble_document
from aegis.reporting.html import MissionReportDocument, render_html
from aegis.secrets_guard import WITHHELD
from aegis_agent.plan import make_plan
from aegis_agent.state import PlanPolicy
from tests.support import planted_secrets
from tests.support.agent_world import bucket_finding, propose, report_of

POLICY = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0)
BPA = "enable-bucket-public-access-block"
RLO = "\u202e"
INJECTED = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def _report() -> MissionReport:
    fixed, skipped = bucket_finding("exports"), bucket_finding("website")
    report = report_of([fixed, skipped], make_plan([fixed], POLICY, propose), POLICY)
    fixed_note = FindingAnalystNote(
        choice=AnalystChoice.CANDIDATE,
        deterministic_kind=BPA,
        chosen_kind=BPA,
        priority=1,
        rationale=f"Customer exports are public {INJECTED}",
    )
    skipped_note = FindingAnalystNote(
        choice=AnalystChoice.NOTIFY_ONLY, deterministic_kind=BPA, priority=4, rationale=f"ignore{RLO}evil"
    )
    notes = {fixed.resource_arn: fixed_note, skipped.resource_arn: skipped_note}
    findings = [f.model_copy(update={"analyst": notes[f.resource_arn]}) for f in report.findings]
    changes = [c.model_copy(update={"analyst": fixed_note}) for c in report.changes]
    analyst = ReportAnalyst(
        model_id="scripted",
        summary=f"Two public buckets. {INJECTED} Fix exports first.{RLO}",
        calls=1,
        input_tokens=1200,
        output_tokens=300,
        fallbacks={"analyst-invalid-choice": 1},
    )
    return report.model_copy(update={"findings": findings, "changes": changes, "analyst": analyst})


def _document(report: MissionReport) -> MissionReportDocument:
    return assemble_document(mission_id=report.mission_id, item=None, trail=[], agent_report=report, status="completed")


def test_the_page_shows_the_analyst_labelled_advisory_with_everything_it_wrote_escaped() -> None:
    html = render_html(_document(_report()))

    assert "<h2 id=analyst>Analyst</h2>" in html
    assert "model <code>scripted</code>" in html
    assert "1 call, 1200 input + 300 output tokens, fallbacks: analyst-invalid-choice 1" in html
    assert "Summary written by the model: advisory" in html
    assert "Fix exports first." in html
    # Model output never becomes markup, and no invisible character reaches the page.
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html
    assert RLO not in html
    assert "\\u202e" in html


def test_each_change_shows_its_priority_and_rationale() -> None:
    html = render_html(_document(_report()))
    assert "AI analyst (advisory): P1: Customer exports are public &lt;script&gt;" in html
    assert f"analyst agreed: {BPA}" in html


def test_a_finding_the_analyst_skipped_shows_it_beside_the_deterministic_choice() -> None:
    document = _document(_report())
    skipped = next(f for f in document.findings if f.resource_arn.endswith("website"))
    fixed = next(f for f in document.findings if f.resource_arn.endswith("exports"))
    line = f"analyst chose notify-only (deterministic choice: {BPA})"
    assert skipped.analyst_line == line
    assert fixed.analyst_line == ""  # it agreed: nothing to flag
    html = render_html(document)
    assert line in html
    assert "1 finding where the analyst did not take the deterministic choice" in html
    terminal = document.terminal_summary()
    assert line in terminal
    assert "analyst:  scripted: 1 call" in terminal
    assert "summary (model-written, advisory): Two public buckets." in terminal
    assert RLO not in terminal


def test_the_json_the_ops_api_serves_carries_the_analyst() -> None:
    served = json.loads(_document(_report()).model_dump_json())
    assert served["analyst"]["model_id"] == "scripted"
    assert served["analyst"]["summary"].startswith("Two public buckets.")
    assert served["changes"][0]["analyst"]["priority"] == 1
    assert served["changes"][0]["analyst"]["rationale"].startswith("Customer exports are public")
    lines = [finding["analyst_line"] for finding in served["findings"]]
    assert lines.count(f"analyst chose notify-only (deterministic choice: {BPA})") == 1


def test_a_secret_shaped_value_in_model_text_is_withheld_on_the_page() -> None:
    planted = planted_secrets.access_key_id()
    report = _report()
    assert report.analyst is not None
    report = report.model_copy(update={"analyst": report.analyst.model_copy(update={"summary": f"key {planted}"})})
    html = render_html(_document(report))
    assert planted not in html
    assert WITHHELD.replace("<", "&lt;").replace(">", "&gt;") in html


def test_without_an_analyst_the_page_has_no_analyst_section() -> None:
    fixed = bucket_finding("exports")
    report = report_of([fixed], make_plan([fixed], POLICY, propose), POLICY)
    document = _document(report)
    html = render_html(document)
    assert "id=analyst" not in html
    assert "AI analyst" not in html
    assert "analyst" not in document.terminal_summary()


def test_a_requests_items_carry_the_note_the_phone_showed() -> None:
    trail = [
        {
            "actor": "approval",
            "action": "approval.requested",
            "outcome": "requested",
            "at": "2026-01-01T00:00:00Z",
            "details": json.dumps(
                {
                    "request_id": "r001",
                    "request_kind": "single",
                    "change_id": "chg-" + "1" * 20,
                    "change_digest": "a" * 64,
                    "analyst": "P2: close it",
                }
            ),
        }
    ]
    [request] = approval_requests(trail)
    assert request.items[0].analyst == "P2: close it"
