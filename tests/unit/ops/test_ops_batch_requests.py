"""Batch approval requests on the ops API: a batch waiting on a phone is listed by GET /approvals/pending with what its
phone shows (count, kinds, root, review link) until its approver's decision is recorded, and GET /missions/{id}
carries every request of the mission with each change's diff (what the console's request page shows and checks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aegis.approvals.merkle import merkle_root
from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase
from tests.support.agent_world import bucket_finding, ebs_finding, propose
from tests.unit.ops.world import OpsWorld

APPROVER = "auth0|approver"


def batch_requested(world: OpsWorld, mission_id: str, request_id: str, changes: list[ChangeBase]) -> str:
    root = merkle_root(c.digest for c in changes)
    expires_at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    AuditLog(world.audit, "approval").append(
        mission_id,
        "approval.requested",
        "requested",
        request_id=request_id,
        request_kind="batch",
        approvers=[APPROVER],
        approver_sub=APPROVER,
        merkle_root=root,
        review_url=f"https://console.example/#/missions/{mission_id}/requests/{request_id}",
        count=len(changes),
        kinds="enable-bucket-public-access-block: 2",
        binding_message=f"Approve {len(changes)} changes #{root[:6]}",
        expires_at=expires_at,
        items=[
            {
                "change_id": c.change_id,
                "change_digest": c.digest,
                "kind": c.kind,
                "resource_arn": c.resource_arn,
                "region": c.region,
                "risk": c.risk.value,
                "before_text": c.describe_before(),
                "after_text": c.describe_after(),
                "instruction": "Approve exactly this AWS change",
            }
            for c in sorted(changes, key=lambda c: c.digest)
        ],
    )
    return root


def decided(
    world: OpsWorld, mission_id: str, request_id: str, outcome: str, approver: str = APPROVER, **more: Any
) -> None:
    AuditLog(world.audit, "approval").append(
        mission_id, "approval.decided", outcome, request_id=request_id, approver_sub=approver, **more
    )


def proposed(*findings: Any) -> list[ChangeBase]:
    changes = [propose(f) for f in findings]
    assert all(c is not None for c in changes)
    return [c for c in changes if c is not None]


def test_a_pending_batch_shows_what_its_phone_shows_until_its_approver_decides(world: OpsWorld) -> None:
    mission_id = world.mission("evt-batch")
    changes = proposed(bucket_finding("a"), bucket_finding("b"))
    root = batch_requested(world, mission_id, "r001", changes)
    # Another approver's decision on the same request, or a decision on another request, does not end it.
    decided(world, mission_id, "r001", "approved", approver="auth0|someone-else")
    decided(world, mission_id, "r002", "denied")

    [pending] = world.call("GET", "/approvals/pending").json()["approvals"]
    assert (pending["mission_id"], pending["request_id"], pending["request_kind"]) == (mission_id, "r001", "batch")
    assert (pending["count"], pending["merkle_root"], pending["binding_message"]) == (
        2,
        root,
        f"Approve 2 changes #{root[:6]}",
    )
    assert pending["review_url"].endswith(f"#/missions/{mission_id}/requests/r001")
    assert "items" not in pending  # the request page shows the changes; the list stays small

    # The approval function records a batch's decision once per change (each findable by its change id).
    for change in changes:
        decided(world, mission_id, "r001", "approved", change_id=change.change_id, merkle_root=root)
    assert world.call("GET", "/approvals/pending").json()["approvals"] == []


def test_a_mission_in_full_carries_its_requests_with_every_changes_diff(world: OpsWorld) -> None:
    mission_id = world.mission("evt-batch-detail")
    changes = proposed(bucket_finding("a"), ebs_finding())
    root = batch_requested(world, mission_id, "r001", changes)

    answer = world.call("GET", f"/missions/{mission_id}")

    assert answer.status == 200, answer.body
    report = answer.json()["report"]
    [request] = report["requests"]
    assert (request["request_id"], request["kind"], request["root"], request["decision"]) == (
        "r001",
        "batch",
        root,
        "pending",
    )
    assert [item["change_digest"] for item in request["items"]] == sorted(c.digest for c in changes)
    by_id = {item["change_id"]: item for item in request["items"]}
    for change in changes:
        assert by_id[change.change_id]["before_text"] == change.describe_before()
        assert by_id[change.change_id]["after_text"] == change.describe_after()
    assert report["pushes"] == 1
