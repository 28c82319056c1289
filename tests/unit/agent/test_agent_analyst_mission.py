"""The analyst inside a mission: a node between scan and plan whose answer the plan can only use to pick among
code-built candidates; its documents are stored by reference, a resume never calls the model again, a pinned
check is never sent, and any failure leaves the deterministic plan."""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.catalogue import ChangeBase
from aegis.checks import CHECKS
from aegis.checks.base import PlanConfig, candidates_of
from aegis.missions_keys import mission_id_for_event
from aegis.models import Finding
from aegis_agent import wiring
from aegis_agent.analyst import AnalysisRecord, AnalystExchange, AnalystSettings, Fallback
from aegis_agent.graph import load_analysis, load_plan
from aegis_agent.missions import MissionStore
from tests.support.agent_world import (
    Clock,
    FakeScanner,
    approved,
    ebs_finding,
    executions,
    raw_text,
    root_keys_finding,
    scheduled_event,
    settings,
)
from tests.support.analyst import StubbedBedrock, acl_public_bucket, data_of, decisions, tool_answer

MODEL = "amazon.nova-lite-v1:0"


@dataclass
class CatalogueScanner(FakeScanner):
    """The test's findings, with the real checks' proposals and candidates under the deployment's PlanConfig."""

    config: PlanConfig = field(default_factory=PlanConfig)

    def __post_init__(self) -> None:
        self.proposer = lambda finding: CHECKS[finding.check_id].propose(finding, self.config)
        # As the scan does (aegis.scan): a finding's remediation is the kind this configuration proposes.
        self.findings = [
            f.model_copy(update={"remediation": change.kind if (change := self.proposer(f)) else None})
            for f in self.findings
        ]

    def candidates(self, finding: Finding) -> list[ChangeBase]:
        return candidates_of(CHECKS[finding.check_id], finding, self.config)


def findings() -> list[Finding]:
    return [acl_public_bucket("photos"), acl_public_bucket("reports"), ebs_finding(), root_keys_finding()]


def service(aws: Any, scanner: FakeScanner, bedrock: StubbedBedrock, **analyst: Any) -> Any:
    return wiring.build_service(
        scanner=scanner,
        settings=settings(analyst=AnalystSettings(model_id=MODEL, **analyst)),
        session=aws,
        clock=Clock(),
        bedrock=bedrock.client,
    )


def mission_id() -> str:
    return mission_id_for_event(scheduled_event()["id"])


def execution_input(sfn: Any) -> dict[str, Any]:
    [execution] = executions(sfn)
    return dict(json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]))


def analysis_of(svc: Any) -> AnalysisRecord:
    values = svc.graph.get_state({"configurable": {"thread_id": mission_id()}}).values
    record = load_analysis(values, svc.missions)
    assert record is not None
    return record


# Findings are sent sorted by (check id, resource): the EBS setting, then the buckets "photos" and "reports".
EBS, PHOTOS, REPORTS = 0, 1, 2


def test_the_plan_takes_the_analysts_choice_among_the_candidates(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    answer = decisions(0, 1, "notify_only", priority=1, rationale="Shared widely; remove only the public grant.")
    bedrock = StubbedBedrock().answer(tool_answer({"summary": "Two public buckets matter most.", "decisions": answer}))
    svc = service(aws, CatalogueScanner(findings()), bedrock)
    outcome = svc.start_mission(scheduled_event(), "req-1")
    assert outcome["status"] == "awaiting_approval"

    (request,) = bedrock.requests
    sent = data_of(request)["findings"]
    # Notify-only findings (root access keys) are never sent: there is nothing to choose.
    assert [f["resource_arn"].rsplit(":", 1)[-1] for f in sent] == ["volume/*", "photos", "reports"]

    plan = load_plan(svc.graph.get_state({"configurable": {"thread_id": mission_id()}}).values, svc.missions)
    kinds = {c.resource_arn: c.kind for c in plan.changes}
    assert kinds == {
        "arn:aws:ec2:us-east-1:123456789012:volume/*": "enable-ebs-default-encryption",
        "arn:aws:s3:::photos": "remove-bucket-acl-public-grants",
    }
    # Every change is one of the candidates code built, byte for byte.
    built = {c.digest for f in findings() if f.remediation for c in CatalogueScanner(findings()).candidates(f)}
    assert {c.digest for c in plan.changes} <= built

    payload = execution_input(sfn)
    notes = payload["analyst_notes"]
    assert set(notes) == {c.change_id for c in plan.changes}
    assert {n["rationale"] for n in notes.values()} == {"Shared widely; remove only the public grant."}

    assert [n.reason for n in plan.notes] == ["analyst-notify-only"]

    record = analysis_of(svc)
    assert record.summary == "Two public buckets matter most."
    assert record.calls[0].outcome == "ok"
    # The exact input and output are mission documents, checked against their digests when read back.
    (call,) = record.calls
    assert call.input_document is not None
    assert call.output_document is not None
    stored_input = svc.missions.read_document(mission_id(), call.input_document, AnalystExchange)
    assert stored_input.payload == json.loads(json.dumps(request))
    stored_output = svc.missions.read_document(mission_id(), call.output_document, AnalystExchange)
    assert stored_output.payload["output"]["message"]["content"][0]["toolUse"]["input"]["decisions"] == answer
    [decided] = [i for i in read_trail(tables["Audit"], mission_id()) if i["action"] == "analyst.decided"]
    assert json.loads(decided["details"])["calls"] == 1


def test_the_report_shows_what_the_analyst_skipped_beside_the_deterministic_choice(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    answer = decisions(0, "needs_human", "notify_only", rationale="Looks intentional.")
    bedrock = StubbedBedrock().answer(tool_answer({"summary": "Check the buckets.", "decisions": answer}))
    scanner = CatalogueScanner(findings())
    svc = service(aws, scanner, bedrock)
    svc.start_mission(scheduled_event(), "req-1")
    [change] = execution_input(sfn)["changes"]

    # A resume is a new container: its model client has no answer queued, so any call would fail the test.
    fresh = service(aws, scanner, StubbedBedrock())
    fresh.resume_mission({"mission_id": mission_id(), "results": approved([change["change_id"]])})
    report = MissionStore(tables["Missions"]).read_report(mission_id())
    assert report is not None
    reasons = {f.resource_arn: f.reason for f in report.findings}
    deterministic = "deterministic choice: enable-bucket-public-access-block"
    assert reasons["arn:aws:s3:::photos"] == f"analyst asked for a human ({deterministic})"
    assert reasons["arn:aws:s3:::reports"] == f"analyst chose notify-only ({deterministic})"
    assert report.analyst is not None
    assert (report.analyst.model_id, report.analyst.summary, report.analyst.calls) == (MODEL, "Check the buckets.", 1)
    (reported,) = report.changes
    assert reported.analyst is not None
    assert reported.analyst.rationale == "Looks intentional."


def test_a_pinned_check_is_never_sent_to_the_analyst(
    aws: Any, tables: dict[str, Any], sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATION_CHOICES", "s3-bucket-public=remove-bucket-acl-public-grants")
    config = PlanConfig.from_env()
    bedrock = StubbedBedrock().answer(tool_answer({"decisions": decisions("notify_only")}))
    svc = service(aws, CatalogueScanner(findings(), config=config), bedrock)
    svc.start_mission(scheduled_event(), "req-1")
    (request,) = bedrock.requests
    assert [f["check_id"] for f in data_of(request)["findings"]] == ["ec2-ebs-default-encryption-off"]
    kinds = sorted(c["kind"] for c in execution_input(sfn)["changes"])
    # The pin stands for both buckets; the analyst's notify-only applies only to what it was sent.
    assert kinds == ["remove-bucket-acl-public-grants", "remove-bucket-acl-public-grants"]


@pytest.mark.parametrize(
    "failure",
    [
        lambda b: b.fail("ThrottlingException", 429),
        lambda b: b.answer(tool_answer({"decisions": "all"})),
        lambda b: b.answer(tool_answer({"decisions": decisions(9, 9, 9)})),
    ],
    ids=["throttled", "malformed", "invalid-index"],
)
def test_a_failing_analyst_leaves_the_deterministic_plan(
    aws: Any, tables: dict[str, Any], sfn: Any, failure: Any
) -> None:
    svc = service(aws, CatalogueScanner(findings()), failure(StubbedBedrock()))
    assert svc.start_mission(scheduled_event(), "req-1")["status"] == "awaiting_approval"
    kinds = sorted(c["kind"] for c in execution_input(sfn)["changes"])
    assert kinds == [
        "enable-bucket-public-access-block",
        "enable-bucket-public-access-block",
        "enable-ebs-default-encryption",
    ]
    assert "analyst_notes" not in execution_input(sfn)
    assert all(f.note.fallback for f in analysis_of(svc).findings)


def test_a_secret_echoed_by_the_model_is_stored_nowhere(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    key = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    bedrock = StubbedBedrock().answer(
        tool_answer({"summary": key, "decisions": decisions(1, 1, 1, rationale=f"Here: {key}")})
    )
    svc = service(aws, CatalogueScanner(findings()), bedrock)
    assert svc.start_mission(scheduled_event(), "req-1")["status"] == "awaiting_approval"
    assert key not in raw_text(*tables.values())
    assert key not in json.dumps(execution_input(sfn))
    assert {f.note.fallback for f in analysis_of(svc).findings} == {Fallback.SECRET_IN_OUTPUT}
