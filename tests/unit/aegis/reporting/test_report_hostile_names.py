"""The report a person reads, with hostile names and an unconfirmed exemption tag: the claim is shown as such, names
are shown as identifiers in the diff, and no control or bidirectional character reaches the page or the terminal."""

from __future__ import annotations

import json

from aegis.models import Finding
from aegis.reporting.agent_report import EXEMPTION_NOT_CONFIRMED
from aegis.reporting.assembly import assemble_document
from aegis.reporting.html import MissionReportDocument, render_html
from aegis.secrets_guard import WITHHELD
from aegis_agent.plan import make_plan
from aegis_agent.state import Plan, PlanPolicy, PlanStatus
from tests.support import planted_secrets
from tests.support.agent_world import bucket_finding, propose, report_of
from tests.support.changes import detach_admin_policy_from

# A user name shaped like an access key id (generated: no key-shaped literal in the repository).
ACCESS_KEY_SHAPED = planted_secrets.access_key_id()
RLO = "\u202e"
POLICY = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0)


def _document_of(findings: list[Finding], plan: Plan) -> MissionReportDocument:
    report = report_of(findings, plan, POLICY)
    return assemble_document(mission_id=report.mission_id, item=None, trail=[], agent_report=report, status="completed")


def test_an_unconfirmed_exemption_tag_is_shown_as_a_claim() -> None:
    claimed = bucket_finding("site", tags={"aegis:exempt": f"public website {RLO}lmth.xedni"})
    document = _document_of([claimed], make_plan([claimed], POLICY, propose))

    [finding] = document.findings
    assert finding.disposition == "planned"
    assert finding.exemption_claim == "public website \\u202elmth.xedni"
    html = render_html(document)
    assert EXEMPTION_NOT_CONFIRMED in html
    assert RLO not in html
    assert f"{EXEMPTION_NOT_CONFIRMED}: 1" in document.terminal_summary()
    assert json.loads(document.model_dump_json())["findings"][0]["exemption_claim"] == finding.exemption_claim


def test_hostile_names_are_identifiers_in_the_diff_and_inert_everywhere_on_the_page() -> None:
    change = detach_admin_policy_from(ACCESS_KEY_SHAPED, f"ops{RLO}nimda", "bell\x07user")
    document = _document_of([], Plan(status=PlanStatus.PROPOSED, changes=(change,)))

    [reported] = document.changes
    assert reported.before == {
        "roles": [],
        "users": [ACCESS_KEY_SHAPED, f"ops{RLO}nimda", "bell\x07user"],
        "groups": [],
    }
    assert WITHHELD in reported.before_text
    html = render_html(document)
    assert ACCESS_KEY_SHAPED in html  # the diff shows the identifier itself
    assert RLO not in html
    assert "\x07" not in html
    assert "ops\\u202enimda" in html
    assert RLO not in document.terminal_summary()
