"""Planning under the approval policy: a change no two distinct approvers could approve (the two-person rule with
too few eligible approvers) is left out and reported as needing a second approver, never planned with one approval;
and the resume accepts the state machine's results one list per approval request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.policy import NEEDS_SECOND_APPROVER, ApprovalPolicy, ApproverRouting
from aegis.catalogue import Undo
from aegis.models import Risk
from aegis.reporting.agent_report import Disposition
from aegis_agent.errors import InvalidSettings, MalformedResume, UndoRefused
from aegis_agent.events import MAX_RESULTS, parse_resume_event
from aegis_agent.plan import PlanNoteReason, make_plan
from aegis_agent.state import PlanPolicy, PlanStatus, ScanRecord, UndoTarget
from aegis_agent.undo import UndoRefusal, plan_undo
from tests.support.agent_world import (
    ACCOUNT,
    APPROVERS,
    BUCKET_CHECK,
    bucket_finding,
    ebs_finding,
    propose,
    report_of,
)

MISSION_ID = "m-0123456789abcdef0123"
POLICY = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0)
# Bucket changes are medium risk, EBS ones low (tests.support.agent_world.propose): at `medium`, buckets need two.
ONE_APPROVER = ApprovalPolicy(approver_subs=APPROVERS[:1], two_person_risk=Risk.MEDIUM)


def test_a_change_needing_two_approvers_is_left_out_when_only_one_can_approve_it() -> None:
    bucket, ebs = bucket_finding("data"), ebs_finding()
    plan = make_plan([bucket, ebs], POLICY, propose, approval=ONE_APPROVER)

    assert plan.status == PlanStatus.PROPOSED
    assert [c.check_id for c in plan.changes] == [ebs.check_id]
    assert [(n.finding_id, n.reason) for n in plan.notes] == [(bucket.finding_id, NEEDS_SECOND_APPROVER)]
    assert PlanNoteReason.NEEDS_SECOND_APPROVER == NEEDS_SECOND_APPROVER


def test_the_same_plan_with_two_eligible_approvers_plans_every_change() -> None:
    findings = [bucket_finding("data"), ebs_finding()]
    two = ApprovalPolicy(approver_subs=APPROVERS, two_person_risk=Risk.MEDIUM)
    plan = make_plan(findings, POLICY, propose, approval=two)
    assert len(plan.changes) == 2
    assert plan.notes == ()
    # Without a two-person risk one approver suffices for everything: nothing is left out.
    assert (
        len(make_plan(findings, POLICY, propose, approval=ApprovalPolicy(APPROVERS[:1], two_person_risk=None)).changes)
        == 2
    )


def test_routing_a_check_to_one_approver_cannot_downgrade_the_two_person_rule() -> None:
    routing = ApproverRouting.parse(json.dumps({"checks": {BUCKET_CHECK: [APPROVERS[1]]}}), APPROVERS, InvalidSettings)
    routed = ApprovalPolicy(approver_subs=APPROVERS, two_person_risk=Risk.MEDIUM, routing=routing)
    plan = make_plan([bucket_finding("data"), ebs_finding()], POLICY, propose, approval=routed)
    assert [n.reason for n in plan.notes] == [NEEDS_SECOND_APPROVER]
    assert len(plan.changes) == 1


def test_the_report_shows_the_finding_as_needing_a_second_approver() -> None:
    bucket, ebs = bucket_finding("data"), ebs_finding()
    plan = make_plan([bucket, ebs], POLICY, propose, approval=ONE_APPROVER)
    report = report_of([bucket, ebs], plan, POLICY)

    (shown,) = [f for f in report.findings if f.finding_id == bucket.finding_id]
    assert (shown.disposition, shown.reason, shown.change_id) == (Disposition.UNPLANNED, NEEDS_SECOND_APPROVER, None)
    assert [c.check_id for c in report.changes] == [ebs.check_id]
    assert any(note.startswith("Needs a second approver: 1 finding(s)") for note in report.notes)


def test_an_undo_needing_two_approvers_is_refused_by_name_when_only_one_can_approve_it() -> None:
    original = propose(bucket_finding("data"))
    assert original is not None
    target = UndoTarget(
        change_id=original.change_id,
        requested_by="auth0|operator",
        original=original,
        original_mission_id=MISSION_ID,
        applied_seq="0001",
    )
    scan = ScanRecord(account_id=ACCOUNT)
    with pytest.raises(UndoRefused) as refused:
        plan_undo(target, POLICY, scan, ONE_APPROVER)
    assert refused.value.reason == UndoRefusal.NEEDS_SECOND_APPROVER == NEEDS_SECOND_APPROVER
    planned = plan_undo(target, POLICY, scan, ApprovalPolicy(APPROVERS, two_person_risk=Risk.MEDIUM))
    assert planned.changes == (Undo.of(original),)


# --- the resume: one list of results per approval request ---------------------------------------------------------


def _result(change_id: str, decision: str = "approved", outcome: str = "applied") -> dict[str, Any]:
    return {"change_id": change_id, "decision": decision, "outcome": outcome, "reason": ""}


def test_the_resume_flattens_the_per_request_lists_in_order_and_still_takes_a_flat_list() -> None:
    nested = [[_result("chg-1"), _result("chg-2")], [_result("chg-3", "denied", "skipped")]]
    parsed = parse_resume_event({"mission_id": MISSION_ID, "results": nested})
    assert [r.change_id for r in parsed.results] == ["chg-1", "chg-2", "chg-3"]
    flat = parse_resume_event({"mission_id": MISSION_ID, "results": [r for group in nested for r in group]})
    assert flat == parsed


@pytest.mark.parametrize(
    "results",
    [
        [_result("chg-1"), [_result("chg-2")]],  # a list among results: only a list of lists is flattened
        [[_result("chg-1"), [_result("chg-2")]]],  # nested twice
        [["chg-1"]],
        [[_result("chg-1")] * (MAX_RESULTS // 2 + 1), [_result("chg-2")] * (MAX_RESULTS // 2)],
    ],
)
def test_a_resume_of_any_other_shape_is_malformed(results: list[Any]) -> None:
    with pytest.raises(MalformedResume):
        parse_resume_event({"mission_id": MISSION_ID, "results": results})
