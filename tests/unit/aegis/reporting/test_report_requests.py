"""The report says which approval request each change was asked in (a batch's id and root prefix), what each request
was, and how many pushes the mission sent, from the approval function's and the executor's audit records."""

from __future__ import annotations

import json
from typing import Any

from aegis.approvals.merkle import merkle_root
from aegis.catalogue import ChangeBase
from aegis.reporting.assembly import approval_requests, assemble_document, change_facts, pushes
from aegis.reporting.html import render_html
from aegis_agent.state import Plan, PlanPolicy, PlanStatus
from tests.support.agent_world import report_of
from tests.support.changes import one_of_each_kind

POLICY = PlanPolicy(max_changes_per_mission=20, max_share_per_resource_type=1.0)
CHANGES = [c for c in one_of_each_kind() if c.kind != "undo"]
A, B = "auth0|a", "auth0|b"


def entry(actor: str, action: str, outcome: str, at: str = "2030-01-01T00:00:00Z", **details: Any) -> dict[str, Any]:
    return {"actor": actor, "action": action, "outcome": outcome, "at": at, "details": json.dumps(details)}


def item_of(change: ChangeBase) -> dict[str, str]:
    return {
        "change_id": change.change_id,
        "change_digest": change.digest,
        "kind": change.kind,
        "resource_arn": change.resource_arn,
        "region": change.region,
        "risk": change.risk.value,
        "before_text": change.describe_before(),
        "after_text": change.describe_after(),
        "instruction": f"Approve exactly this AWS change: {change.summary()}",
    }


def batch_requested(request_id: str, changes: list[ChangeBase], approver: str = A) -> dict[str, Any]:
    root = merkle_root(c.digest for c in changes)
    return entry(
        "approval",
        "approval.requested",
        "requested",
        request_id=request_id,
        request_kind="batch",
        approvers=[approver],
        approver_sub=approver,
        merkle_root=root,
        review_url=f"https://console.example/#/missions/m-1/requests/{request_id}",
        count=len(changes),
        kinds="several",
        binding_message=f"Approve {len(changes)} changes #{root[:6]}",
        expires_at="2030-01-01T00:05:00Z",
        items=[item_of(c) for c in sorted(changes, key=lambda c: c.digest)],
    )


def single_requested(request_id: str, change: ChangeBase, approver: str, approvers: list[str]) -> dict[str, Any]:
    return entry(
        "approval",
        "approval.requested",
        "requested",
        request_id=request_id,
        request_kind="single",
        approvers=approvers,
        approver_sub=approver,
        change_id=change.change_id,
        change_digest=change.digest,
        binding_message="Approve change abc",
        **{k: v for k, v in item_of(change).items() if k not in ("change_id", "change_digest")},
    )


def decided(request_id: str, outcome: str, approver: str, **more: Any) -> dict[str, Any]:
    return entry(
        "approval",
        "approval.decided",
        outcome,
        request_id=request_id,
        approver_sub=approver,
        approved_at="2030-01-01T00:01:00Z",
        **more,
    )


def executed(change: ChangeBase, root: str | None) -> dict[str, Any]:
    return entry(
        "executor",
        "executor.result",
        "applied",
        change_id=change.change_id,
        batch_root=root,
        result={"outcome": "applied", "reason": ""},
    )


def test_every_change_of_a_batch_is_attributed_to_its_request_and_root() -> None:
    batch, high = CHANGES[:3], CHANGES[3]
    root = merkle_root(c.digest for c in batch)
    trail = [
        batch_requested("r001", batch),
        single_requested("r002", high, A, [A, B]),
        single_requested("r002", high, B, [A, B]),
        # The approval function records a batch's decision once per change of it.
        *(decided("r001", "approved", A, change_id=c.change_id, merkle_root=root) for c in batch),
        decided("r002", "approved", A, change_id=high.change_id),
        decided("r002", "denied", B, change_id=high.change_id, reason="the approver denied"),
        *(executed(c, root) for c in batch),
    ]

    facts = change_facts(trail)
    for change in batch:
        found = facts[change.change_id]
        assert (found.request_id, found.batch_root, found.decision, found.approved_by) == (
            "r001",
            root,
            "approved",
            [A],
        )
        assert found.executor_outcome == "applied"
    # One denial under the two-person rule decides, whatever the other approver said.
    assert (facts[high.change_id].decision, facts[high.change_id].approved_by) == ("denied", [A])
    assert facts[high.change_id].request_id == "r002"

    first, second = approval_requests(trail)
    assert (first.request_id, first.kind, first.root, first.count, first.pushes) == ("r001", "batch", root, 3, 1)
    assert sorted(i.change_id for i in first.items) == sorted(c.change_id for c in batch)
    assert first.decision == "approved"
    assert [(d.approver_sub, d.decision) for d in first.decisions] == [(A, "approved")]
    assert (second.kind, second.root, second.approvers, second.pushes, second.decision) == (
        "single",
        None,
        [A, B],
        2,
        "denied",
    )
    assert pushes(trail) == 3


def test_a_two_person_request_is_approved_only_once_both_approved() -> None:
    change = CHANGES[0]
    trail = [single_requested("r001", change, A, [A, B]), single_requested("r001", change, B, [A, B])]
    assert approval_requests([*trail, decided("r001", "approved", A)])[0].decision == "pending"
    both = [*trail, decided("r001", "approved", A), decided("r001", "approved", B)]
    assert approval_requests(both)[0].decision == "approved"
    assert change_facts(both)[change.change_id].approved_by == [A, B]


def test_the_report_shows_the_request_of_each_change_and_the_pushes() -> None:
    batch, single = CHANGES[:4], CHANGES[4]
    root = merkle_root(c.digest for c in batch)
    trail = [
        batch_requested("r001", batch),
        single_requested("r002", single, A, [A]),
        decided("r001", "approved", A),
        decided("r002", "approved", A, change_id=single.change_id),
        *(executed(c, root) for c in batch),
        executed(single, None),
    ]
    report = report_of([], Plan(status=PlanStatus.PROPOSED, changes=(*batch, single)), POLICY)
    document = assemble_document(
        mission_id=report.mission_id, item=None, trail=trail, agent_report=report, status="completed"
    )

    assert document.pushes == 2
    by_id = {c.change_id: c for c in document.changes}
    assert {by_id[c.change_id].request_label for c in batch} == {f"r001 #{root[:6]}"}
    assert by_id[single.change_id].request_label == "r002"
    assert document.approvals_line() == "2 pushes for 5 changes: 1 batch, 1 single request"
    summary = document.terminal_summary()
    assert "approvals: 2 pushes for 5 changes" in summary
    assert f"by {A} in r001 #{root[:6]}" in summary
    html = render_html(document)
    assert "<h2>Approval requests</h2>" in html
    assert f"<code>{root}</code>" in html
    assert f"batch <code>r001 #{root[:6]}</code>" in html
    assert "Approval pushes" in html
    dumped = json.loads(document.model_dump_json())
    assert dumped["requests"][0]["items"][0]["before_text"]
    assert dumped["changes"][0]["request_id"] in ("r001", "r002")


def test_a_running_mission_without_a_report_still_lists_its_requests() -> None:
    batch = CHANGES[:2]
    document = assemble_document(
        mission_id="m-1", item=None, trail=[batch_requested("r001", batch)], agent_report=None, status="running"
    )
    [request] = document.requests
    assert (request.request_id, request.decision, request.count) == ("r001", "pending", 2)
    assert document.pushes == 1


def test_records_from_before_request_ids_make_no_request_but_count_as_pushes() -> None:
    change = CHANGES[0]
    trail = [
        entry("approval", "approval.requested", "requested", change_id=change.change_id, change_digest=change.digest),
        entry("approval", "approval.decided", "approved", change_id=change.change_id, approver_sub=A),
    ]
    assert approval_requests(trail) == []
    assert pushes(trail) == 1
    # The agent's record of the execution it started (same action, its own actor) pushed nothing to any phone.
    started = entry("agent", "approval.requested", "started", changes=[{"change_id": change.change_id}])
    assert pushes([started, *trail]) == 1
    assert approval_requests([started]) == []
    found = change_facts(trail)[change.change_id]
    assert (found.decision, found.request_id, found.batch_root) == ("approved", None, None)
