"""Undo missions through the agent's service, on moto tables with the template's indexes: an `aegis.undo` event is
planned as `[Undo.of(original)]` from the executor's audited `executor.applied` record and the original mission's
stored plan, or refused by name (the mission ends failed, the refusal audited, nothing started, no exception)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.audit import AuditLog, read_trail
from aegis.catalogue import Undo, parse_change
from aegis.missions_keys import mission_id_for_event
from aegis.models import ScanError
from aegis_agent.errors import MalformedEvent
from aegis_agent.undo import UndoRefusal
from tests.support import planted_secrets
from tests.support.agent_world import (
    ACCOUNT,
    EBS_CHECK,
    OPERATOR_SUB,
    REGION,
    STATE_MACHINE_ARN,
    FakeScanner,
    approved,
    build_service,
    ebs_finding,
    executions,
    scheduled_event,
    settings,
    undo_event,
)

EBS_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*"
EXECUTIONS = STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:")


def record_applied(tables: dict[str, Any], mission_id: str, change: Any, *, execution_arn: str | None = None) -> None:
    """The record the executor writes once it applied `change` in the mission's execution."""
    AuditLog(tables["Audit"], actor="executor").append(
        mission_id,
        "executor.applied",
        "applied",
        change_id=change.change_id,
        execution_arn=execution_arn or f"{EXECUTIONS}:{mission_id}",
        digest=change.digest,
        approver_sub="auth0|approver",
    )


def applied_ebs_change(aws: Any, tables: dict[str, Any], scanner: FakeScanner, **overrides: Any) -> Any:
    """A scheduled mission that planned the EBS change, was approved, applied (audited as the executor does) and
    completed; the scanner no longer finds the finding. Returns the applied change."""
    service = build_service(aws, scanner, settings(**overrides))
    started = service.start_mission(scheduled_event())
    mission_id = started["mission_id"]
    [change] = planned_changes(service, mission_id)
    record_applied(tables, mission_id, change)
    scanner.fix(EBS_ARN)
    build_service(aws, scanner, settings(**overrides)).resume_mission(
        {"mission_id": mission_id, "results": approved([change.change_id])}
    )
    return change


def planned_changes(service: Any, mission_id: str) -> list[Any]:
    """The changes the mission's execution was started with."""
    arn = next(e["executionArn"] for e in executions(service._sfn) if e["name"] == mission_id)
    return [parse_change(c) for c in json.loads(service._sfn.describe_execution(executionArn=arn)["input"])["changes"]]


def actions(tables: dict[str, Any], mission_id: str) -> list[str]:
    return [item["action"] for item in sorted(read_trail(tables["Audit"], mission_id), key=lambda i: i["seq"])]


def mission(tables: dict[str, Any], mission_id: str) -> dict[str, Any]:
    return dict(tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"])


def assert_refused(tables: dict[str, Any], outcome: dict[str, Any], reason: str, change_id: str) -> None:
    """Refused by name: the mission item and the audit trail say why; the answer is normal (no retry)."""
    assert (outcome["status"], outcome["reason"]) == ("failed", reason)
    item = mission(tables, outcome["mission_id"])
    assert (item["status"], item["trigger"], item["error"], item["undo_refused"]) == (
        "failed",
        "undo",
        "Agent.UndoRefused",
        reason,
    )
    assert (item["undo_of"], item["requested_by"]) == (change_id, OPERATOR_SUB)
    trail = sorted(read_trail(tables["Audit"], outcome["mission_id"]), key=lambda i: i["seq"])
    [refusal] = [i for i in trail if i["action"] == "undo.refused"]
    assert refusal["outcome"] == reason
    assert json.loads(refusal["details"])["change_id"] == change_id
    assert trail[-1]["action"] == "mission.failed"
    assert "execution_arn" not in item


# --- the planned undo --------------------------------------------------------------------------------------------
def test_an_applied_change_is_undone_through_the_same_approval_path_as_any_change(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    scanner.calls.clear()

    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))

    mission_id = mission_id_for_event("undo-event-1")
    assert (outcome["mission_id"], outcome["status"], outcome["changes"]) == (mission_id, "awaiting_approval", 1)
    # The plan is exactly the undo of the audited change, started like any plan (the validator comes first there).
    execution = next(e for e in executions(sfn) if e["name"] == mission_id)
    payload = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert payload == {"mission_id": mission_id, "changes": [Undo.of(original).model_dump(mode="json")]}
    # Its scan covered the original's check only, over the scanned regions and the change's own.
    assert scanner.calls == [((REGION,), (EBS_CHECK,))]
    item = mission(tables, mission_id)
    assert (item["trigger"], item["undo_of"], item["requested_by"], item["listing"]) == (
        "undo",
        original.change_id,
        OPERATOR_SUB,
        "mission",
    )
    assert actions(tables, mission_id) == ["mission.created", "approval.requested"]

    # Approved and applied by the executor: the mission resumes, re-scans and reports like any other.
    scanner.fixed.clear()  # the before-state is back: the finding is found again
    undo_id = Undo.of(original).change_id
    resumed = build_service(aws, scanner, settings(undo_enabled=True)).resume_mission(
        {"mission_id": mission_id, "results": approved([undo_id])}
    )
    assert resumed["status"] == "completed"
    report = build_service(aws, scanner, settings(undo_enabled=True)).missions.read_report(mission_id)
    assert report is not None
    [change] = report.changes
    assert (change.kind, change.change_id, change.outcome, change.verified) == (
        "undo",
        undo_id,
        "applied",
        "still_failing",
    )
    assert report.trigger == "undo"


def test_a_redelivered_undo_event_is_the_same_mission(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    first = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))
    again = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))
    assert again == {"mission_id": first["mission_id"], "status": "awaiting_approval", "created": False}
    assert len([e for e in executions(sfn) if e["name"] == first["mission_id"]]) == 1


# --- refusals ----------------------------------------------------------------------------------------------------
def test_without_an_undo_connection_the_undo_is_refused(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner)
    count = len(executions(sfn))
    outcome = build_service(aws, scanner, settings()).start_mission(undo_event(original.change_id))
    assert_refused(tables, outcome, UndoRefusal.DISABLED, original.change_id)
    assert len(executions(sfn)) == count


def test_a_change_never_applied_is_refused(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([ebs_finding()])
    service = build_service(aws, scanner, settings(undo_enabled=True))
    started = service.start_mission(scheduled_event())
    [change_id] = [c.change_id for c in planned_changes(service, started["mission_id"])]
    # Planned and approved, but the executor never recorded applying it.
    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(change_id))
    assert_refused(tables, outcome, UndoRefusal.NOT_APPLIED, change_id)
    assert outcome["mission_id"] not in {e["name"] for e in executions(sfn)}
    assert scanner.calls == [((REGION,), None)]  # the refused undo scanned nothing


def test_an_apply_recorded_by_another_deployments_execution_does_not_count(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner([ebs_finding()])
    service = build_service(aws, scanner, settings(undo_enabled=True))
    started = service.start_mission(scheduled_event())
    [change] = planned_changes(service, started["mission_id"])
    # The same mission and change, but applied by an execution of a state machine in another account.
    foreign = f"arn:aws:states:{REGION}:210987654321:execution:aegis-mission:{started['mission_id']}"
    record_applied(tables, started["mission_id"], change, execution_arn=foreign)
    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(change.change_id))
    assert_refused(tables, outcome, UndoRefusal.NOT_APPLIED, change.change_id)


def test_an_applied_record_whose_digest_no_stored_plan_holds_is_refused(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    # A record naming the change in a mission the agent never planned it in.
    record_applied(tables, "m-00000000000000000000", original)
    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))
    assert_refused(tables, outcome, UndoRefusal.ORIGINAL_UNKNOWN, original.change_id)


def test_a_change_undone_since_it_was_last_applied_is_refused(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    first = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))
    record_applied(tables, first["mission_id"], Undo.of(original))

    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(
        undo_event(original.change_id, event_id="undo-event-2")
    )
    assert_refused(tables, outcome, UndoRefusal.ALREADY_UNDONE, original.change_id)

    # Applied again after the undo: it may be undone again.
    record_applied(tables, mission_id_for_event(scheduled_event()["id"]), original)
    again = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(
        undo_event(original.change_id, event_id="undo-event-3")
    )
    assert again["status"] == "awaiting_approval"


def test_an_undo_of_an_undo_is_refused(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    first = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))
    undo = Undo.of(original)
    record_applied(tables, first["mission_id"], undo)
    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(
        undo_event(undo.change_id, event_id="undo-of-undo")
    )
    assert_refused(tables, outcome, UndoRefusal.NOT_A_FORWARD_CHANGE, undo.change_id)


def test_a_resource_that_moved_on_since_the_change_is_refused(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    scanner.fixed.clear()  # someone turned EBS default encryption off again since
    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))
    assert_refused(tables, outcome, UndoRefusal.RESOURCE_MOVED_ON, original.change_id)
    assert outcome["mission_id"] not in {e["name"] for e in executions(sfn)}


def test_a_resource_the_scan_cannot_read_is_refused(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    scanner.errors.append(ScanError(check_id=EBS_CHECK, region=REGION, error="AccessDenied", message="denied"))
    outcome = build_service(aws, scanner, settings(undo_enabled=True)).start_mission(undo_event(original.change_id))
    assert_refused(tables, outcome, UndoRefusal.RESOURCE_UNREADABLE, original.change_id)


def test_a_deployment_in_dry_run_plans_the_undo_without_asking_anyone(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner([ebs_finding()])
    original = applied_ebs_change(aws, tables, scanner, undo_enabled=True)
    outcome = build_service(aws, scanner, settings(undo_enabled=True, dry_run=True)).start_mission(
        undo_event(original.change_id)
    )
    assert (outcome["status"], outcome["plan_status"], outcome["changes"]) == ("completed", "dry_run", 1)
    assert outcome["mission_id"] not in {e["name"] for e in executions(sfn)}


# --- the event ---------------------------------------------------------------------------------------------------
MALFORMED_UNDO = {
    "change id of another form": {"change_id": "chg-XYZ", "requested_by": OPERATOR_SUB},
    "no requester": {"change_id": "chg-0123456789abcdef0123"},
    "requester with spaces": {"change_id": "chg-0123456789abcdef0123", "requested_by": "an operator"},
    "requester too long": {"change_id": "chg-0123456789abcdef0123", "requested_by": "a" * 129},
    "extra field": {"change_id": "chg-0123456789abcdef0123", "requested_by": OPERATOR_SUB, "force": True},
}


@pytest.mark.parametrize("detail", MALFORMED_UNDO.values(), ids=MALFORMED_UNDO.keys())
def test_a_malformed_undo_event_is_a_named_error_and_writes_nothing(
    aws: Any, tables: dict[str, Any], sfn: Any, detail: dict[str, Any]
) -> None:
    event = undo_event("chg-0123456789abcdef0123") | {"detail": detail}
    with pytest.raises(MalformedEvent):
        build_service(aws, FakeScanner([]), settings(undo_enabled=True)).start_mission(event)
    assert tables["Missions"].scan()["Items"] == []


@pytest.mark.parametrize("make", [planted_secrets.access_key_id, planted_secrets.high_entropy])
def test_a_credential_shaped_requester_is_refused_and_never_echoed(
    aws: Any, tables: dict[str, Any], sfn: Any, make: Any
) -> None:
    token = make()
    event = undo_event("chg-0123456789abcdef0123", requested_by=token)
    with pytest.raises(MalformedEvent) as raised:
        build_service(aws, FakeScanner([]), settings(undo_enabled=True)).start_mission(event)
    assert token not in str(raised.value)
    assert "detail.requested_by" in str(raised.value)
    assert tables["Missions"].scan()["Items"] == []


def test_an_undo_event_of_another_detail_type_is_malformed(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    event = undo_event("chg-0123456789abcdef0123") | {"detail-type": "Aegis Scan Requested"}
    with pytest.raises(MalformedEvent) as raised:
        build_service(aws, FakeScanner([]), settings(undo_enabled=True)).start_mission(event)
    assert "detail-type" in str(raised.value)
    assert tables["Missions"].scan()["Items"] == []
