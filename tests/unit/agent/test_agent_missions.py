"""Missions end to end through the agent's service, on moto tables, with a scanner double: interrupt in one
invocation, resume in a fresh one from DynamoDB; events parsed strictly; one mission per event; dry run, caps,
exemptions, halt flag; failures named and audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig

from aegis.audit import read_trail
from aegis.missions_keys import mission_id_for_event
from aegis.models import ScanError
from aegis_agent.errors import (
    CheckpointRefused,
    GraphFailed,
    MalformedEvent,
    MalformedResume,
    MissionNotFound,
    MissionNotResumable,
)
from aegis_agent.graph import load_plan, plan_digest
from aegis_agent.missions import MissionStore
from aegis_agent.state import Suppression
from tests.support.agent_world import (
    EBS_CHECK,
    REGION,
    STATE_MACHINE_ARN,
    FakeScanner,
    all_items,
    approved,
    bucket_finding,
    build_service,
    ebs_finding,
    executions,
    raw_text,
    root_keys_finding,
    scan_event,
    scheduled_event,
)
from tests.support.agent_world import settings as world_settings


def settings(**overrides: Any) -> Any:
    """The deployment of these missions trusts `aegis:exempt` tags (TRUST_EXEMPTION_TAGS); one test below shows
    that without it a tag alone exempts nothing."""
    return world_settings(**({"trust_exemption_tags": True} | overrides))


def standard_findings() -> list[Any]:
    return [
        bucket_finding("open-data"),
        bucket_finding("website", tags={"aegis:exempt": "public website by design"}),
        ebs_finding(),
        root_keys_finding(),
    ]


def read_report(tables: dict[str, Any], mission_id: str) -> Any:
    report = MissionStore(tables["Missions"]).read_report(mission_id)
    assert report is not None
    return report


def actions(tables: dict[str, Any], mission_id: str) -> list[str]:
    return [item["action"] for item in sorted(read_trail(tables["Audit"], mission_id), key=lambda i: i["seq"])]


def start(aws: Any, scanner: FakeScanner, event: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    return build_service(aws, scanner, settings(**overrides)).start_mission(event or scheduled_event(), "req-1")


def test_a_scheduled_scan_plans_interrupts_and_starts_one_execution_named_after_the_mission(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner(standard_findings())
    outcome = start(aws, scanner)
    mission_id = mission_id_for_event(scheduled_event()["id"])
    assert outcome["mission_id"] == mission_id
    assert outcome["status"] == "awaiting_approval"
    assert outcome["changes"] == 2

    [execution] = executions(sfn)
    assert execution["name"] == mission_id
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    payload = json.loads(described["input"])
    assert payload["mission_id"] == mission_id
    assert sorted(c["resource_arn"] for c in payload["changes"]) == [
        "arn:aws:ec2:us-east-1:123456789012:volume/*",
        "arn:aws:s3:::open-data",
    ]

    mission = tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert mission["status"] == "awaiting_approval"
    assert mission["execution_arn"] == execution["executionArn"]
    assert mission["counts"]["findings"] == 4
    assert mission["counts"]["exemptions"] == 1
    assert mission["by_cis_v5"] == {"1.3": 1, "2.1.4": 2, "5.1.1": 1}
    assert actions(tables, mission_id) == ["mission.created", "approval.requested"]


def test_the_interrupt_carries_metadata_only(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    service = build_service(aws, FakeScanner(standard_findings()), settings())
    started = service.start_mission(scheduled_event())
    mission_id = mission_id_for_event(scheduled_event()["id"])
    snapshot = service.graph.get_state({"configurable": {"thread_id": mission_id}})
    [pending] = snapshot.interrupts
    request = pending.value
    assert set(request) == {"mission_id", "plan_digest", "change_ids", "plan_document"}
    assert request["mission_id"] == mission_id
    # What is asked is exactly what the state machine was started with, bound by the digest the audit recorded.
    payload = json.loads(sfn.describe_execution(executionArn=started["execution_arn"])["input"])
    assert request["change_ids"] == [c["change_id"] for c in payload["changes"]]
    [requested] = [i for i in read_trail(tables["Audit"], mission_id) if i["action"] == "approval.requested"]
    assert request["plan_digest"] == json.loads(requested["details"])["plan_digest"]
    # The changes themselves (resources, risk, diff) are in the plan document the interrupt names, unchanged.
    assert request["plan_document"] == snapshot.values["plan"].document.model_dump(mode="json")
    plan = load_plan(snapshot.values, MissionStore(tables["Missions"]))
    assert [c.model_dump(mode="json") for c in plan.changes] == payload["changes"]
    assert plan_digest(plan.changes) == request["plan_digest"]


def test_resume_in_a_fresh_service_rescans_reports_and_audits(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner(standard_findings())
    start(aws, scanner)
    mission_id = mission_id_for_event(scheduled_event()["id"])
    payload = json.loads(sfn.describe_execution(executionArn=executions(sfn)[0]["executionArn"])["input"])
    by_arn = {c["resource_arn"]: c["change_id"] for c in payload["changes"]}
    bucket_change, ebs_change = by_arn["arn:aws:s3:::open-data"], by_arn[f"arn:aws:ec2:{REGION}:123456789012:volume/*"]

    scanner.fix("arn:aws:s3:::open-data")  # the executor applied the bucket change; EBS was denied
    results = [
        *approved([bucket_change]),
        {"change_id": ebs_change, "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"},
    ]
    fresh = build_service(aws, scanner, settings())  # a new Lambda container: new saver, serializer and graph
    outcome = fresh.resume_mission({"mission_id": mission_id, "results": results})
    assert outcome == {
        "mission_id": mission_id,
        "status": "completed",
        "plan_status": "proposed",
        "findings": 4,
        "changes": 2,
    }
    # The re-scan ran only the checks of the changes, read-only, over the mission's regions.
    assert scanner.calls == [((REGION,), None), ((REGION,), tuple(sorted(["s3-bucket-public", EBS_CHECK])))]

    mission = tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert mission["status"] == "completed"
    report = read_report(tables, mission_id)
    changes = {c.change_id: c for c in report.changes}
    assert (changes[bucket_change].decision, changes[bucket_change].outcome, changes[bucket_change].verified) == (
        "approved",
        "applied",
        "fixed",
    )
    assert (changes[ebs_change].decision, changes[ebs_change].reason, changes[ebs_change].verified) == (
        "denied",
        "Approval.Denied",
        "still_failing",
    )
    assert report.totals.applied == 1
    assert report.totals.verified_fixed == 1
    assert actions(tables, mission_id) == [
        "mission.created",
        "approval.requested",
        "change.result",
        "change.result",
        "mission.exemptions",
        "mission.report",
        "mission.completed",
    ]
    assert len(executions(sfn)) == 1


def test_the_interrupting_node_has_no_side_effect_when_it_reruns_on_resume(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner([bucket_finding("b")])
    service = build_service(aws, scanner, settings())
    service.start_mission(scheduled_event())
    mission_id = mission_id_for_event(scheduled_event()["id"])
    config: RunnableConfig = {"configurable": {"thread_id": mission_id}}
    asked = service.graph.get_state(config).interrupts[0]
    [change_id] = asked.value["change_ids"]

    fresh = build_service(aws, scanner, settings())
    assert fresh.graph.get_state(config).interrupts[0] == asked  # recomputed from state, identical
    fresh.resume_mission({"mission_id": mission_id, "results": approved([change_id])})
    assert len(scanner.calls) == 2  # scan and re-scan; the re-run of request_approval scanned nothing
    assert actions(tables, mission_id).count("approval.requested") == 1
    assert len(executions(sfn)) == 1
    # A repeated resume (a retried Lambda invoke) changes nothing.
    again = fresh.resume_mission({"mission_id": mission_id, "results": approved([change_id])})
    assert again["resumed"] is False
    assert len(scanner.calls) == 2


def test_no_findings_completes_with_a_report_and_no_execution(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    outcome = start(aws, FakeScanner([root_keys_finding()]))
    assert outcome["status"] == "completed"
    assert outcome["plan_status"] == "empty"
    assert executions(sfn) == []
    report = read_report(tables, outcome["mission_id"])
    assert [(f.check_id, f.disposition) for f in report.findings] == [("iam-root-access-keys", "notify-only")]


MALFORMED = {
    "not an object": ["aws.events"],
    "unknown source": scheduled_event() | {"source": "aws.s3"},
    "schedule with detail": scheduled_event() | {"detail": {"regions": ["us-east-1"]}},
    "missing id": {k: v for k, v in scheduled_event().items() if k != "id"},
    "wrong detail-type": scheduled_event() | {"detail-type": "Object Created"},
    "region not a region": scan_event(regions=["mars-north-1"]),
    "unknown detail field": scan_event(regions=["us-east-1"], approve_all=True),
    "dry_run not a boolean": scan_event(dry_run="yes"),
    "empty check list": scan_event(checks=[]),
    "unknown check": scan_event(checks=["ec2-open-everything"]),
}


@pytest.mark.parametrize("event", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_event_is_a_named_error_and_writes_nothing(
    aws: Any, tables: dict[str, Any], sfn: Any, event: Any
) -> None:
    scanner = FakeScanner(standard_findings())
    with pytest.raises(MalformedEvent) as raised:
        build_service(aws, scanner, settings()).start_mission(event)
    assert type(raised.value).__name__ == "Agent.MalformedEvent"
    assert scanner.calls == []
    assert all(all_items(table) == [] for table in tables.values())
    assert executions(sfn) == []


def test_a_duplicate_event_returns_the_existing_mission_without_a_second_scan_or_execution(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner(standard_findings())
    first = start(aws, scanner)
    second = start(aws, scanner)
    assert second == {"mission_id": first["mission_id"], "status": "awaiting_approval", "created": False}
    assert len(scanner.calls) == 1
    assert [i["mission_id"] for i in all_items(tables["Missions"]) if "record" not in i] == [first["mission_id"]]
    assert len(executions(sfn)) == 1
    assert actions(tables, first["mission_id"]).count("mission.duplicate_event") == 1
    other = start(aws, scanner, scheduled_event("another-event-id"))
    assert other["mission_id"] != first["mission_id"]


def test_a_redelivered_event_finishes_a_mission_stopped_between_interrupt_and_execution(
    aws: Any, tables: dict[str, Any], sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = FakeScanner([bucket_finding("b")])
    crashing = build_service(aws, scanner, settings())

    def lambda_timed_out(*args: Any, **kwargs: Any) -> str:
        raise TimeoutError("Task timed out")

    monkeypatch.setattr(crashing, "_start_execution", lambda_timed_out)
    with pytest.raises(TimeoutError):
        crashing.start_mission(scheduled_event())
    assert executions(sfn) == []

    outcome = build_service(aws, scanner, settings()).start_mission(scheduled_event())
    assert outcome["status"] == "awaiting_approval"
    assert len(executions(sfn)) == 1
    assert len(scanner.calls) == 1


def test_dry_run_from_the_event_or_the_setting_plans_without_starting_anything(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner(standard_findings())
    by_event = start(aws, scanner, scan_event(dry_run=True))
    by_setting = start(aws, scanner, scan_event("second-event"), dry_run=True)
    for outcome in (by_event, by_setting):
        assert outcome["status"] == "completed"
        assert outcome["plan_status"] == "dry_run"
        assert outcome["changes"] == 2
        report = read_report(tables, outcome["mission_id"])
        assert {c.decision for c in report.changes} == {"not-requested"}
        assert report.dry_run is True
    assert executions(sfn) == []


def test_a_cap_stops_the_plan_and_the_report_says_why(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    findings = [bucket_finding(f"b{i}") for i in range(5)]
    outcome = start(aws, FakeScanner(findings), max_changes_per_mission=3)
    assert (outcome["status"], outcome["plan_status"], outcome["changes"]) == ("completed", "capped", 0)
    assert executions(sfn) == []
    mission = tables["Missions"].get_item(Key={"mission_id": outcome["mission_id"]})["Item"]
    assert mission["plan_stop_reason"].startswith("MAX_CHANGES_PER_MISSION: 5 changes proposed")
    report = read_report(tables, outcome["mission_id"])
    assert report.totals.findings == 5  # the scan is complete; only the plan stopped
    assert {f.disposition for f in report.findings} == {"capped"}
    assert any("blast-radius cap" in note for note in report.notes)


def test_exempt_and_suppressed_findings_are_recorded_with_their_reasons(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    suppression = Suppression(check_id=EBS_CHECK, resource_arn="*", reason="EBS governed by SCP")
    outcome = start(aws, FakeScanner(standard_findings()), dry_run=True, suppressions=(suppression,))
    report = read_report(tables, outcome["mission_id"])
    dispositions = {(f.resource_arn, f.disposition, f.reason) for f in report.findings}
    assert ("arn:aws:s3:::website", "exempt", "public website by design") in dispositions
    assert (f"arn:aws:ec2:{REGION}:123456789012:volume/*", "suppressed", "EBS governed by SCP") in dispositions
    [audit] = [i for i in read_trail(tables["Audit"], outcome["mission_id"]) if i["action"] == "mission.exemptions"]
    details = json.loads(audit["details"])
    assert (details["part"], details["parts"]) == (1, 1)
    recorded = details["exemptions"]
    assert sorted(recorded, key=lambda e: e["source"]) == [
        {"finding_id": ebs_finding().finding_id, "source": "suppression", "reason": "EBS governed by SCP"},
        {"finding_id": bucket_finding("website").finding_id, "source": "tag", "reason": "public website by design"},
    ]


def test_without_trusted_tags_an_exempt_tag_is_a_claim_the_report_shows_and_the_finding_is_planned(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    outcome = start(aws, FakeScanner(standard_findings()), dry_run=True, trust_exemption_tags=False)
    report = read_report(tables, outcome["mission_id"])
    website = next(f for f in report.findings if f.resource_arn == "arn:aws:s3:::website")
    assert (website.disposition, website.reason) == (
        "dry-run",
        "exemption claimed by tag, not confirmed: public website by design",
    )
    assert website.change_id in {c.change_id for c in report.changes}
    trail = read_trail(tables["Audit"], outcome["mission_id"])
    [claims] = [json.loads(i["details"]) for i in trail if i["action"] == "mission.exemption_claims"]
    assert claims["claims"] == [
        {"finding_id": bucket_finding("website").finding_id, "reason": "public website by design"}
    ]
    assert not [i for i in trail if i["action"] == "mission.exemptions"]


def engage_halt(tables: dict[str, Any]) -> None:
    tables["Control"].put_item(Item={"name": "halt", "engaged": True, "engaged_by": "oncall"})


def test_halted_on_entry_creates_no_mission(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    engage_halt(tables)
    scanner = FakeScanner(standard_findings())
    outcome = start(aws, scanner)
    assert outcome["status"] == "halted"
    assert all_items(tables["Missions"]) == []
    assert scanner.calls == []
    assert actions(tables, outcome["mission_id"]) == ["mission.refused"]


def test_halted_before_the_execution_starts_marks_the_mission_halted(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    class HaltDuringScan(FakeScanner):
        def scan(self, regions: Any, check_ids: Any) -> Any:
            engage_halt(tables)
            return super().scan(regions, check_ids)

    outcome = start(aws, HaltDuringScan([bucket_finding("b")]))
    assert outcome["status"] == "halted"
    assert executions(sfn) == []
    assert tables["Missions"].get_item(Key={"mission_id": outcome["mission_id"]})["Item"]["status"] == "halted"


def test_halted_at_resume_records_the_results_and_does_not_rescan(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([bucket_finding("b")])
    outcome = start(aws, scanner)
    engage_halt(tables)
    change_id = json.loads(sfn.describe_execution(executionArn=outcome["execution_arn"])["input"])["changes"][0][
        "change_id"
    ]
    resumed = build_service(aws, scanner, settings()).resume_mission(
        {"mission_id": outcome["mission_id"], "results": approved([change_id], outcome="halted")}
    )
    assert resumed["status"] == "halted"
    assert len(scanner.calls) == 1
    halted = [i for i in read_trail(tables["Audit"], outcome["mission_id"]) if i["action"] == "mission.halted"]
    assert json.loads(halted[0]["details"])["results"][0]["change_id"] == change_id


def pending_change_ids(sfn: Any, execution_arn: str) -> list[str]:
    return [c["change_id"] for c in json.loads(sfn.describe_execution(executionArn=execution_arn)["input"])["changes"]]


@pytest.mark.parametrize(
    "results",
    [
        [{"change_id": "chg-00000000000000000000", "decision": "approved", "outcome": "applied", "reason": ""}],
        [],
    ],
    ids=["unknown change id", "missing results"],
)
def test_results_that_do_not_match_the_plan_fail_the_mission_by_name(
    aws: Any, tables: dict[str, Any], sfn: Any, results: list[dict[str, Any]]
) -> None:
    outcome = start(aws, FakeScanner([bucket_finding("b")]))
    with pytest.raises(MalformedResume):
        build_service(aws, FakeScanner([]), settings()).resume_mission(
            {"mission_id": outcome["mission_id"], "results": results}
        )
    mission = tables["Missions"].get_item(Key={"mission_id": outcome["mission_id"]})["Item"]
    assert (mission["status"], mission["error"]) == ("failed", "Agent.MalformedResume")


@pytest.mark.parametrize(
    "event",
    [
        {"mission_id": "m-00000000000000000000"},
        {"mission_id": "not-a-mission", "results": []},
        {"mission_id": "m-00000000000000000000", "results": [{"change_id": "chg-1", "decision": "maybe"}]},
        {
            "mission_id": "m-00000000000000000000",
            "results": [{"change_id": "c", "decision": "approved", "access_token": "x"}],
        },
        {"mission_id": "m-00000000000000000000", "results": [], "token": "x"},
    ],
    ids=["no results", "bad mission id", "bad decision shape", "token in a result", "extra field"],
)
def test_a_malformed_resume_payload_is_a_named_error_and_writes_nothing(
    aws: Any, tables: dict[str, Any], sfn: Any, event: dict[str, Any]
) -> None:
    with pytest.raises(MalformedResume):
        build_service(aws, FakeScanner([]), settings()).resume_mission(event)
    assert all(all_items(table) == [] for table in tables.values())


def test_resume_of_an_unknown_or_unfinished_mission_is_refused(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    service = build_service(aws, FakeScanner([]), settings())
    with pytest.raises(MissionNotFound):
        service.resume_mission({"mission_id": "m-00000000000000000000", "results": []})
    outcome = start(aws, FakeScanner([root_keys_finding()]), dry_run=True)
    tables["Missions"].update_item(
        Key={"mission_id": outcome["mission_id"]},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "failed"},
    )
    with pytest.raises(MissionNotResumable):
        service.resume_mission({"mission_id": outcome["mission_id"], "results": []})


def test_a_node_error_fails_the_mission_by_name_without_its_text(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([], fail_with=ConnectionError("endpoint sts.us-east-1.amazonaws.com unreachable"))
    with pytest.raises(GraphFailed) as raised:
        start(aws, scanner)
    assert type(raised.value).__name__ == "Agent.GraphFailed"
    mission_id = mission_id_for_event(scheduled_event()["id"])
    mission = tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert (mission["status"], mission["error"]) == ("failed", "Agent.GraphFailed")
    [failed] = [i for i in read_trail(tables["Audit"], mission_id) if i["action"] == "mission.failed"]
    assert json.loads(failed["details"]) == {"error": "Agent.GraphFailed", "error_type": "ConnectionError"}
    assert "unreachable" not in json.dumps([*all_items(tables["Missions"]), *all_items(tables["Audit"])])


def test_scan_errors_are_reported_and_the_mission_goes_on(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    error = ScanError(check_id=EBS_CHECK, region=REGION, error="ThrottlingException", message="Rate exceeded")
    outcome = start(aws, FakeScanner([bucket_finding("b")], errors=[error]), dry_run=True)
    report = read_report(tables, outcome["mission_id"])
    assert report.scan_errors == [error]
    assert report.totals.changes == 1


def test_the_execution_input_is_exactly_the_contract(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    from aegis.catalogue import parse_change

    outcome = start(aws, FakeScanner([bucket_finding("b"), ebs_finding()]))
    described = sfn.describe_execution(executionArn=outcome["execution_arn"])
    assert described["stateMachineArn"] == STATE_MACHINE_ARN
    payload = json.loads(described["input"])
    assert set(payload) == {"mission_id", "changes"}
    for change in payload["changes"]:
        assert parse_change(change).model_dump(mode="json") == change


def test_a_secret_in_a_resume_value_is_refused_audited_and_never_stored(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    outcome = start(aws, FakeScanner([bucket_finding("b")]))
    [change_id] = pending_change_ids(sfn, outcome["execution_arn"])
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJhdXRoMHxhcHByb3ZlciJ9.c2lnbmF0dXJlLXN0dWZm"
    with pytest.raises(CheckpointRefused):
        build_service(aws, FakeScanner([]), settings()).resume_mission(
            {
                "mission_id": outcome["mission_id"],
                "results": [{"change_id": change_id, "decision": "approved", "outcome": "applied", "reason": token}],
            }
        )
    mission = tables["Missions"].get_item(Key={"mission_id": outcome["mission_id"]})["Item"]
    assert (mission["status"], mission["error"]) == ("failed", "Agent.SecretRefused")
    [failed] = [i for i in read_trail(tables["Audit"], outcome["mission_id"]) if i["action"] == "mission.failed"]
    assert json.loads(failed["details"])["refused"] == "jwt-shaped string"
    assert token not in raw_text(*tables.values())
