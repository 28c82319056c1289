"""The mission report: findings by CIS control and severity, each change with before/after, decision, outcome and
the re-scan's verdict; readable as it is by the local stack's report document."""

from __future__ import annotations

import json

import pytest

from aegis.catalogue.states import PublicAccessBlock
from aegis.checks import CHECKS
from aegis.cis import CisVersion
from aegis.models import ChangeResult, Decision, Outcome, ScanError
from aegis.secrets_guard import WITHHELD, SecretShapedValue, refuse_secrets, secret_kind
from aegis_agent.plan import make_plan
from aegis_agent.report import EXEMPTION_NOT_CONFIRMED, UNDO_DISABLED_NOTE, MissionReport
from aegis_agent.settings import AgentSettings
from aegis_agent.state import Plan, PlanPolicy, PlanStatus, Verification, VerifiedState
from tests.support.agent_world import (
    EBS_CHECK,
    bucket_finding,
    ebs_finding,
    propose,
    report_of,
    root_keys_finding,
)
from tests.support.changes import detach_admin_policy_from


def sample_report(cis_version: CisVersion = "v7") -> MissionReport:
    findings = [
        bucket_finding("data"),
        bucket_finding("site", tags={"aegis:exempt": "public website"}),
        ebs_finding(),
        root_keys_finding(),
    ]
    policy = PlanPolicy(
        max_changes_per_mission=10,
        max_share_per_resource_type=1.0,
        trust_exemption_tags=True,
        cis_version=cis_version,
    )
    plan = make_plan(findings, policy, propose)
    bucket_change, ebs_change = sorted(plan.changes, key=lambda c: c.check_id, reverse=True)
    results = [
        ChangeResult(change_id=bucket_change.change_id, decision=Decision.APPROVED, outcome=Outcome.APPLIED),
        ChangeResult(
            change_id=ebs_change.change_id,
            decision=Decision.EXPIRED,
            outcome=Outcome.SKIPPED,
            reason="Approval.Expired",
        ),
    ]
    verification = [
        Verification(
            change_id=bucket_change.change_id,
            check_id=bucket_change.check_id,
            resource_arn=bucket_change.resource_arn,
            state=VerifiedState.FIXED,
        ),
        Verification(
            change_id=ebs_change.change_id,
            check_id=ebs_change.check_id,
            resource_arn=ebs_change.resource_arn,
            state=VerifiedState.STILL_FAILING,
        ),
    ]
    return report_of(
        findings,
        plan,
        policy,
        scan_errors=[ScanError(check_id=EBS_CHECK, region="eu-west-1", error="AccessDenied", message="denied")],
        results=results,
        verification=verification,
    )


def test_findings_are_summarised_by_cis_control_and_severity() -> None:
    report = sample_report()
    assert report.by_severity == {"critical": 1, "high": 2, "medium": 1}
    assert report.cis_version == "v7"
    assert [(c.cis, c.cis_v5, c.findings, c.by_severity, c.fixed) for c in report.controls] == [
        ("2.4", "1.3", 1, {"critical": 1}, 0),
        ("3.1.4", "2.1.4", 2, {"high": 2}, 1),
        ("6.1.1", "5.1.1", 1, {"medium": 1}, 0),
    ]
    assert [f.severity.value for f in report.findings] == ["critical", "high", "high", "medium"]


@pytest.mark.parametrize(
    ("version", "ids"),
    [
        ("v7", ["2.4", "3.1.4", "6.1.1"]),
        ("v6", ["2.3", "3.1.4", "6.1.1"]),
        ("v5", ["1.3", "2.1.4", "5.1.1"]),
        ("v3", ["1.4", "2.1.4", "2.2.1"]),
    ],
)
def test_the_deployment_picks_the_cis_version_controls_are_grouped_by(version: CisVersion, ids: list[str]) -> None:
    report = sample_report(version)
    assert report.cis_version == version
    assert [c.cis for c in report.controls] == ids


def test_each_finding_says_what_happened_to_it() -> None:
    report = sample_report()
    by_arn = {f.resource_arn: f for f in report.findings}
    assert (by_arn["arn:aws:s3:::data"].disposition, by_arn["arn:aws:s3:::data"].still_failing) == ("planned", False)
    assert (by_arn["arn:aws:s3:::site"].disposition, by_arn["arn:aws:s3:::site"].reason) == (
        "exempt",
        "public website",
    )
    root = by_arn["arn:aws:iam::123456789012:root"]
    assert root.disposition == "notify-only"
    # What a human should do instead: the check's own words.
    assert root.reason == CHECKS["iam-root-access-keys"].METADATA.manual_fix
    assert "delete every access key" in root.reason
    assert by_arn[ebs_finding().resource_arn].still_failing is True


def test_each_change_carries_its_diff_decision_outcome_and_verification() -> None:
    report = sample_report()
    bucket = next(c for c in report.changes if c.check_id == "s3-bucket-public")
    assert bucket.before_text == PublicAccessBlock(configured=False).describe()
    assert bucket.after_text == PublicAccessBlock.all_on().describe()
    assert bucket.before_text != bucket.after_text
    assert bucket.before == {
        "configured": False,
        "block_public_acls": False,
        "ignore_public_acls": False,
        "block_public_policy": False,
        "restrict_public_buckets": False,
    }
    assert (bucket.decision, bucket.outcome, bucket.verified) == ("approved", "applied", "fixed")
    ebs = next(c for c in report.changes if c.check_id == EBS_CHECK)
    assert (ebs.decision, ebs.outcome, ebs.reason, ebs.verified) == (
        "expired",
        "skipped",
        "Approval.Expired",
        "still_failing",
    )
    assert report.totals.model_dump() == {
        "findings": 4,
        "changes": 2,
        "exempt": 1,
        "suppressed": 0,
        "notify_only": 1,
        "unplanned": 0,
        "scan_errors": 1,
        "withheld": 0,
        "applied": 1,
        "verified_fixed": 1,
    }


def test_the_local_stack_report_document_reads_this_json_as_it_is() -> None:
    from aegis_local.reporting.report import MissionReportDocument

    report = sample_report()
    document = MissionReportDocument.model_validate(report.model_dump(mode="json"))
    assert document.mission_id == report.mission_id
    assert [(c.change_id, c.decision, c.outcome, c.before_text) for c in document.changes] == [
        (c.change_id, c.decision, c.outcome.value if c.outcome else None, c.before_text) for c in report.changes
    ]
    assert [(f.resource_arn, f.disposition, f.still_failing) for f in document.findings] == [
        (f.resource_arn, f.disposition.value, f.still_failing) for f in report.findings
    ]
    assert "Mission m-0123456789abcdef0123: completed" in document.terminal_summary()


def test_the_report_round_trips_through_json() -> None:
    report = sample_report()
    assert MissionReport.model_validate_json(report.model_dump_json()) == report


def test_an_exemption_claimed_by_tag_and_not_confirmed_is_reported_as_such() -> None:
    claimed = bucket_finding("site", tags={"aegis:exempt": "public website \u202eetisbew"})
    policy = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0)
    report = report_of([claimed], make_plan([claimed], policy, propose), policy)

    [finding] = report.findings
    assert finding.disposition == "planned"
    assert finding.exemption_claim == "public website \\u202eetisbew"
    assert finding.reason == f"{EXEMPTION_NOT_CONFIRMED}: public website \\u202eetisbew"
    assert [e.finding_id for e in report.claimed_exemptions] == [claimed.finding_id]
    assert report.exemptions == []
    assert report.totals.exempt == 0
    assert any(EXEMPTION_NOT_CONFIRMED in note for note in report.notes)


def test_a_change_with_hostile_names_is_reported_with_its_names_and_safe_texts() -> None:
    user = "AKIA" + "Q7ZK2M4T6V8X0B3N"
    change = detach_admin_policy_from(user, "ops\u202eresu")
    policy = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0)
    report = report_of([], Plan(status=PlanStatus.PROPOSED, changes=(change,)), policy)

    [reported] = report.changes
    assert reported.before == {"roles": [], "users": [user, "ops\u202eresu"], "groups": []}
    assert reported.before_text == f"attached to user {WITHHELD}, user ops\\u202eresu"
    assert secret_kind(reported.binding_message) is None
    # Stored as the model it is: the names are identifiers in `before`, and refused anywhere else.
    refuse_secrets(report, where="mission.report")
    leaky = report.model_copy(update={"notes": [f"user {user}"]})
    with pytest.raises(SecretShapedValue) as refused:
        refuse_secrets(leaky, where="mission.report")
    assert user not in str(refused.value)
    assert user in json.dumps(report.model_dump(mode="json"))


@pytest.mark.parametrize("undo_enabled", [True, False])
def test_the_report_says_whether_an_applied_change_can_be_undone(undo_enabled: bool) -> None:
    finding = ebs_finding()
    policy = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0, undo_enabled=undo_enabled)
    report = report_of([finding], make_plan([finding], policy, propose), policy)

    assert report.changes
    assert report.undo_enabled is undo_enabled
    assert (UNDO_DISABLED_NOTE in report.notes) is not undo_enabled


def test_the_deployment_says_whether_undo_is_enabled() -> None:
    environment = {
        "CHECKPOINTS_TABLE": "c",
        "MISSIONS_TABLE": "m",
        "AUDIT_TABLE": "a",
        "CONTROL_TABLE": "k",
        "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:aegis-mission",
        "SCAN_REGIONS": "eu-west-1",
        "APPROVER_SUBS": "auth0|approver-a",
    }
    assert AgentSettings.from_env(environment).policy().undo_enabled is False
    assert AgentSettings.from_env({**environment, "UNDO_ENABLED": "true"}).policy().undo_enabled is True
