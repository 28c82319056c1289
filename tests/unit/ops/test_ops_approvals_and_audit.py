"""GET /approvals/pending (what each waiting approver's phone shows, from the audit trail alone) and GET /audit
(filtered by mission, change or action, since a time, paged)."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.audit import AuditLog
from tests.support.agent_world import bucket_finding, ebs_finding, propose
from tests.unit.ops.world import OpsWorld


def test_pending_approvals_are_those_requested_in_the_window_and_not_yet_decided(world: OpsWorld) -> None:
    mission_id = world.mission("evt-wait")
    waiting, decided, expired = (propose(f) for f in (bucket_finding("a"), bucket_finding("b"), ebs_finding()))
    assert waiting is not None
    assert decided is not None
    assert expired is not None
    world.approval_requested(mission_id, waiting)
    world.approval_requested(mission_id, decided)
    world.approval_decided(mission_id, decided, "denied")
    world.approval_requested(mission_id, expired, expires_in=-5)

    answer = world.call("GET", "/approvals/pending")

    assert answer.status == 200, answer.body
    [pending] = answer.json()["approvals"]
    assert (pending["mission_id"], pending["change_id"], pending["change_digest"]) == (
        mission_id,
        waiting.change_id,
        waiting.digest,
    )
    # Exactly what the phone shows: the binding message and the before/after texts.
    assert pending["binding_message"] == waiting.binding_message()
    assert (pending["before_text"], pending["after_text"]) == (waiting.describe_before(), waiting.describe_after())


def test_pending_approvals_need_the_read_scope(world: OpsWorld) -> None:
    assert world.call("GET", "/approvals/pending", token=world.issuer.token(scope="aegis:audit")).status == 403


def records(world: OpsWorld, **query: str) -> list[dict[str, Any]]:
    """Every record of a filtered audit read, page by page (pages of 2)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        answer = world.call("GET", "/audit", query={**query, "limit": "2", **({"next": cursor} if cursor else {})})
        assert answer.status == 200, answer.body
        found += answer.json()["records"]
        cursor = answer.json()["next"]
        if cursor is None:
            return found


def test_the_audit_trail_reads_by_mission_change_or_action_page_by_page(world: OpsWorld) -> None:
    mission_id, changes = world.completed_mission("evt-audit", [bucket_finding("site"), ebs_finding()])
    other, _ = world.completed_mission("evt-other", [bucket_finding("other")], minutes=5)

    by_mission = records(world, mission=mission_id)
    assert len(by_mission) == 6  # requested, decided, applied for each of two changes
    assert {r["mission_id"] for r in by_mission} == {mission_id}
    assert [r["seq"] for r in by_mission] == sorted(r["seq"] for r in by_mission)
    assert by_mission[0]["details"]["change_id"] in {c.change_id for c in changes}

    by_change = records(world, change=changes[0].change_id)
    assert {r["action"] for r in by_change} == {"approval.requested", "approval.decided", "executor.applied"}
    assert {r["change_id"] for r in by_change} == {changes[0].change_id}

    applied = records(world, action="executor.applied")
    assert {r["mission_id"] for r in applied} == {mission_id, other}
    assert len(records(world, action="executor.applied", mission=other)) == 1


def test_since_keeps_the_records_written_from_that_time(world: OpsWorld) -> None:
    AuditLog(world.audit, "agent").append("m-00000000000000000001", "mission.created", "created")
    later = records(world, mission="m-00000000000000000001", since="2999-01-01T00:00:00Z")
    earlier = records(world, mission="m-00000000000000000001", since="2000-01-01T00:00:00+00:00")
    assert (len(later), len(earlier)) == (0, 1)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({}, "give mission, change or action"),
        ({"mission": "m-1"}, "mission"),
        ({"change": "chg-xyz"}, "change"),
        ({"action": "Drop Table"}, "action"),
        ({"mission": "m-00000000000000000001", "since": "yesterday"}, "since"),
        ({"mission": "m-00000000000000000001", "limit": "1000"}, "limit"),
        ({"mission": "m-00000000000000000001", "next": "eyJhIjoiYiJ9"}, "next"),
    ],
)
def test_bad_audit_filters_are_a_400_naming_them(world: OpsWorld, query: dict[str, str], named: str) -> None:
    answer = world.call("GET", "/audit", query=query)
    assert answer.status == 400
    assert answer.json()["message"].startswith(named)


def test_the_audit_trail_needs_the_audit_scope(world: OpsWorld) -> None:
    token = world.issuer.token(scope="aegis:read")
    assert world.call("GET", "/audit", token=token, query={"mission": "m-00000000000000000001"}).status == 403
