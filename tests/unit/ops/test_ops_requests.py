"""POST /scans and POST /changes/{change_id}/undo: the events that start a mission, put on the default bus with the
mission id known at once; the refusals (409 with a named reason) before anything is put; and GET /me."""

from __future__ import annotations

import json

import pytest

from aegis.catalogue import Undo
from aegis.missions_keys import mission_id_for_event
from tests.support.agent_world import bucket_finding, propose
from tests.unit.ops.world import OPERATOR, OpsWorld


def test_a_scan_request_puts_the_aegis_scan_event_and_names_its_mission(world: OpsWorld) -> None:
    answer = world.call(
        "POST", "/scans", body={"dry_run": True, "regions": ["us-east-1"], "checks": ["s3-bucket-public"]}
    )

    assert answer.status == 202, answer.body
    requested = answer.json()
    assert requested["mission_id"] == mission_id_for_event(requested["event_id"])
    [entry] = world.put_events
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "aegis.scan",
        "Aegis Scan Requested",
        "default",
    )
    assert json.loads(entry["Detail"]) == {"dry_run": True, "regions": ["us-east-1"], "checks": ["s3-bucket-public"]}


def test_the_scan_detail_is_what_the_agent_accepts(world: OpsWorld) -> None:
    from aegis_agent.events import CustomScanEvent, parse_scan_event

    assert world.call("POST", "/scans", body={"dry_run": False}).status == 202
    [entry] = world.put_events
    event = {
        "version": "0",
        "id": "evt-1",
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "account": "123456789012",
        "time": "2026-03-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }
    assert isinstance(parse_scan_event(event), CustomScanEvent)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("not json", "the body is not JSON"),
        ({}, "the body must be"),
        ({"dry_run": "yes"}, "the body must be"),
        ({"dry_run": True, "regions": ["Mars-1"]}, "the body must be"),
        ({"dry_run": True, "regions": []}, "the body must be"),
        ({"dry_run": True, "extra": 1}, "the body must be"),
        ({"dry_run": True, "checks": ["no-such-check"]}, "checks must be ids of the catalogue"),
    ],
)
def test_a_bad_scan_request_is_a_400_and_puts_nothing(world: OpsWorld, body: object, named: str) -> None:
    answer = world.call("POST", "/scans", body=body)
    assert answer.status == 400
    assert answer.json()["message"].startswith(named)
    assert world.put_events == []


def test_while_halted_nothing_is_requested(world: OpsWorld) -> None:
    world.control.put_item(Item={"name": "halt", "engaged": True, "engaged_at": "2026-03-01T12:00:00Z"})
    answer = world.call("POST", "/scans", body={"dry_run": True})
    assert (answer.status, answer.json()["reason"]) == (409, "halted")
    assert world.call("POST", "/changes/chg-0123456789abcdef0123/undo").json()["reason"] == "halted"
    assert world.put_events == []


def applied_change(world: OpsWorld, event_id: str = "evt-applied") -> tuple[str, str]:
    mission_id, [change] = world.completed_mission(event_id, [bucket_finding("site")])
    return mission_id, change.change_id


def test_an_undo_of_an_applied_change_puts_the_aegis_undo_event(world: OpsWorld) -> None:
    _, change_id = applied_change(world)

    answer = world.call("POST", f"/changes/{change_id}/undo")

    assert answer.status == 202, answer.body
    requested = answer.json()
    assert requested["change_id"] == change_id
    assert requested["mission_id"] == mission_id_for_event(requested["event_id"])
    [entry] = world.put_events
    assert (entry["Source"], entry["DetailType"]) == ("aegis.undo", "Undo Requested")
    assert json.loads(entry["Detail"]) == {"change_id": change_id, "requested_by": OPERATOR}


def test_an_undo_of_a_change_never_applied_here_is_refused(world: OpsWorld) -> None:
    mission_id = world.mission("evt-elsewhere")
    change = propose(bucket_finding("elsewhere"))
    assert change is not None
    # Applied in another account only: not this deployment's to undo.
    world.applied(mission_id, change, account="210987654321")
    for change_id in (change.change_id, "chg-00000000000000000000"):
        answer = world.call("POST", f"/changes/{change_id}/undo")
        assert (answer.status, answer.json()["reason"]) == (409, "undo-not-applied")
    assert world.put_events == []


def test_an_undo_already_applied_since_the_change_is_refused(world: OpsWorld) -> None:
    mission_id, [change] = world.completed_mission("evt-undone", [bucket_finding("site")])
    undo = Undo.of(change)
    world.applied(mission_id, undo)

    answer = world.call("POST", f"/changes/{change.change_id}/undo")

    assert (answer.status, answer.json()["reason"]) == (409, "undo-already-undone")
    # Applied again after the undo: it can be undone again.
    world.applied(mission_id, change)
    assert world.call("POST", f"/changes/{change.change_id}/undo").status == 202


def test_without_an_undo_connection_an_undo_is_refused(world: OpsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    _, change_id = applied_change(world)
    monkeypatch.setenv("UNDO_ENABLED", "false")
    world.app.dependencies.cache_clear()
    answer = world.call("POST", f"/changes/{change_id}/undo")
    assert (answer.status, answer.json()["reason"]) == (409, "undo-disabled")


def test_a_malformed_change_id_is_a_400(world: OpsWorld) -> None:
    answer = world.call("POST", "/changes/chg-xyz/undo")
    assert answer.status == 400
    assert answer.json()["message"].startswith("change_id")


def test_me_answers_the_callers_subject_scopes_and_safe_claims_never_the_token(world: OpsWorld) -> None:
    token = world.issuer.token(scope="aegis:read aegis:audit", permissions=["aegis:read"], custom="internal")
    answer = world.call("GET", "/me", token=token)
    assert answer.status == 200
    me = answer.json()
    assert me["sub"] == OPERATOR
    assert me["scopes"] == ["aegis:audit", "aegis:read"]
    assert me["api_scopes"] == [
        "aegis:read",
        "aegis:audit",
        "aegis:scan",
        "aegis:undo",
        "aegis:killswitch",
        "aegis:rearm",
    ]
    assert me["claims"]["iss"] == world.issuer.issuer
    assert "custom" not in me["claims"]
    assert "email" not in me["claims"]
    assert token not in answer.body
