"""Missions over the seeded vulnerable account with the real scanner, through the Lambda handlers: the exact plan,
exemptions by tag only where the deployment confirms them, notify-only without a configured destination, and an
interrupt in one invocation resumed in a fresh one from DynamoDB, whose re-scan verifies what was actually fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.catalogue import parse_change
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.checks import CHECKS
from aegis_agent.missions import MissionStore
from aegis_local.scenario.seed import EXEMPT_REASON, INJECTION_TEXT
from tests.integration.agent.conftest import World
from tests.support.agent_world import STATE_MACHINE_ARN, LambdaContext, scan_event, scheduled_event
from tests.support.lambda_app import load_app

# Without TRAIL_BUCKET / FLOW_LOGS_* / CONFIG_BUCKET the agent never invents where logs should go; the others have
# no fix a role could make.
NOTIFY_ONLY_UNCONFIGURED = {
    "cloudtrail-no-multi-region-trail",
    "ec2-vpc-flow-logs-off",
    "config-recorder-off",
    "cloudtrail-kms-encryption-off",
    "iam-root-mfa-off",
    "rds-storage-unencrypted",
}


def execution_changes(world: World, execution_arn: str) -> list[Any]:
    payload = json.loads(world.sfn.describe_execution(executionArn=execution_arn)["input"])
    return [parse_change(change) for change in payload["changes"]]


def test_the_plan_for_the_seeded_account_is_exactly_the_expected_changes(world: World) -> None:
    outcome = load_app("agent").scan_handler(scheduled_event(), LambdaContext())
    assert outcome["status"] == "awaiting_approval"
    changes = execution_changes(world, outcome["execution_arn"])
    planned = {(c.check_id, c.resource_arn) for c in changes}
    # The bastion's exemption tag is not confirmed by this deployment: it is planned like the others.
    expected = {
        (check_id, arn) for check_id, arn in world.seeded.expected_findings if check_id not in NOTIFY_ONLY_UNCONFIGURED
    }
    assert world.seeded.exempt_claimed <= {arn for _, arn in planned}
    assert planned == expected
    assert not {arn for _, arn in planned} & world.seeded.lookalikes
    assert len(changes) == len(planned)  # one change per finding, no duplicates

    mission = world.tables["Missions"].get_item(Key={"mission_id": outcome["mission_id"]})["Item"]
    assert mission["counts"]["findings"] == len(world.seeded.expected_findings)
    assert mission["counts"]["exemptions"] == 0
    assert mission["counts"]["withheld"] == len(world.seeded.withheld_expected)


# Root access keys cannot be created through any API: the one control the seeded account cannot fail.
UNSEEDABLE = {"iam-root-access-keys"}


def test_a_dry_run_of_the_seeded_account_finds_every_control_the_seed_can_fail(world: World) -> None:
    outcome = load_app("agent").scan_handler(scan_event(dry_run=True), LambdaContext())
    assert (outcome["status"], outcome["plan_status"]) == ("completed", "dry_run")
    report = MissionStore(world.tables["Missions"]).read_report(outcome["mission_id"])
    assert report is not None
    found = {(f.check_id, f.resource_arn) for f in report.findings}
    assert found == set(world.seeded.expected_findings), report.scan_errors
    assert {check_id for check_id, _ in found} == set(CHECKS) - UNSEEDABLE
    # Each finding is planned (a dry run asks nothing) or says what a human should do instead.
    for finding in report.findings:
        assert finding.disposition in ("dry-run", "notify-only"), finding
        if finding.disposition == "notify-only":
            assert finding.reason == CHECKS[finding.check_id].METADATA.manual_fix


@pytest.mark.parametrize(
    ("confirmation", "disposition", "reason"),
    [
        ("none", "dry-run", f"exemption claimed by tag, not confirmed: {EXEMPT_REASON}"),
        ("trusted tags", "exempt", EXEMPT_REASON),
        ("suppression", "suppressed", "bastion, confirmed in SEC-42"),
    ],
)
def test_the_tagged_groups_are_exempt_only_when_confirmed_withheld_or_simply_data(
    world: World, monkeypatch: pytest.MonkeyPatch, confirmation: str, disposition: str, reason: str
) -> None:
    groups = world.seeded.security_groups
    arn = lambda name: f"arn:aws:ec2:{world.seeded.region}:{world.seeded.account_id}:security-group/{groups[name]}"  # noqa: E731
    if confirmation == "trusted tags":
        monkeypatch.setenv("TRUST_EXEMPTION_TAGS", "true")
    if confirmation == "suppression":
        suppression = {"check_id": "ec2-admin-port-open-ipv4", "resource_arn": arn("bastion"), "reason": reason}
        monkeypatch.setenv("SUPPRESSIONS", json.dumps([suppression]))
    app = load_app("agent")
    outcome = app.scan_handler(scan_event(dry_run=True), LambdaContext())
    assert (outcome["status"], outcome["plan_status"]) == ("completed", "dry_run")
    report = MissionStore(world.tables["Missions"]).read_report(outcome["mission_id"])
    assert report is not None
    by_arn = {f.resource_arn: f for f in report.findings if f.check_id == "ec2-admin-port-open-ipv4"}

    # A reasoned exemption tag is honoured only where the deployment confirms it; else the report shows the claim.
    assert (by_arn[arn("bastion")].disposition, by_arn[arn("bastion")].reason) == (disposition, reason)
    assert (by_arn[arn("bastion")].exemption_claim is None) == (confirmation != "none")
    # A JWT-shaped exemption was withheld by the scan: unreadable, so the control still applies.
    assert by_arn[arn("jwt-tagged")].disposition == "dry-run"
    from_scan = [(n.field, n.kind) for n in report.withheld if not n.field.startswith("change[")]
    assert from_scan == [("tags.aegis:exempt", "jwt")]
    assert [n.reason for n in report.plan_notes if n.resource_arn == arn("jwt-tagged")] == ["exempt-tag-without-reason"]
    # A tag telling a reader to open port 22 changes nothing: the change closes exactly the group's open rule.
    [injected] = [c for c in report.changes if c.resource_arn == arn("injection-tagged")]
    assert injected.kind == RevokeSecurityGroupRules.model_fields["kind"].default
    assert injected.after == {"group_id": groups["injection-tagged"], "rules": []}
    assert [r["from_port"] for r in injected.before["rules"]] == [3389]  # type: ignore[index]
    assert INJECTION_TEXT not in json.dumps(report.model_dump(mode="json"))


def test_the_share_cap_stops_the_seeded_plan_when_most_of_a_resource_type_would_change(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_SHARE_PER_RESOURCE_TYPE", "0.5")
    outcome = load_app("agent").scan_handler(scheduled_event(), LambdaContext())
    assert (outcome["status"], outcome["plan_status"], outcome["changes"]) == ("completed", "capped", 0)
    assert world.sfn.list_executions(stateMachineArn=STATE_MACHINE_ARN)["executions"] == []
    ec2 = world.session.client("ec2")
    # Both exceed half: most security groups (the bastion too: its exemption tag is not confirmed) and most network
    # ACLs (the default VPC's, the vulnerable VPC's and the SSH-open one). The report names the first it met.
    over = {
        "AWS::EC2::SecurityGroup": (":security-group/", len(ec2.describe_security_groups()["SecurityGroups"])),
        "AWS::EC2::NetworkAcl": (":network-acl/", len(ec2.describe_network_acls()["NetworkAcls"])),
    }
    reasons = set()
    for resource_type, (marker, total) in over.items():
        changing = len({arn for _, arn in world.seeded.expected_findings if marker in arn})
        assert changing / total > 0.5
        reasons.add(
            f"MAX_SHARE_PER_RESOURCE_TYPE: {changing} of {total} {resource_type} resources "
            f"({changing / total:.0%}) would change, at most 50% allowed"
        )
    report = MissionStore(world.tables["Missions"]).read_report(outcome["mission_id"])
    assert report is not None
    assert report.plan_stop_reason in reasons
    assert report.totals.findings == len(world.seeded.expected_findings)  # the scan itself is complete


def test_configured_destinations_turn_notify_only_findings_into_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = world.seeded.account_id
    monkeypatch.setenv("TRAIL_BUCKET", world.seeded.buckets["logs"])
    monkeypatch.setenv("FLOW_LOGS_LOG_GROUP", "/aegis/flow-logs")
    monkeypatch.setenv("FLOW_LOGS_ROLE_ARN", f"arn:aws:iam::{account}:role/aegis-flow-logs")
    outcome = load_app("agent").scan_handler(scan_event(dry_run=True), LambdaContext())
    report = MissionStore(world.tables["Missions"]).read_report(outcome["mission_id"])
    assert report is not None
    kinds = {c.check_id: c.kind for c in report.changes}
    assert kinds["cloudtrail-no-multi-region-trail"] == "create-multi-region-trail"
    assert kinds["ec2-vpc-flow-logs-off"] == "create-vpc-flow-logs"


def test_interrupt_in_one_invocation_resume_in_a_fresh_one_and_verify_by_rescan(world: World) -> None:
    started = load_app("agent").scan_handler(scheduled_event(), LambdaContext())
    mission_id = started["mission_id"]
    changes = execution_changes(world, started["execution_arn"])
    ebs = next(c for c in changes if c.kind == "enable-ebs-default-encryption")
    bucket = next(c for c in changes if c.kind == "enable-bucket-public-access-block")

    # What the executor would do for the one approved change; the other approved one drifted, the rest denied.
    world.session.client("ec2").enable_ebs_encryption_by_default()
    results = [
        {"change_id": ebs.change_id, "decision": "approved", "outcome": "applied", "reason": "verified"},
        {"change_id": bucket.change_id, "decision": "approved", "outcome": "drift", "reason": "before changed"},
    ] + [
        {"change_id": c.change_id, "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"}
        for c in changes
        if c not in (ebs, bucket)
    ]
    fresh = load_app("agent")  # new module, new service, saver and graph
    resumed = fresh.resume_handler({"mission_id": mission_id, "results": results}, LambdaContext("resume-request"))
    assert resumed["status"] == "completed"

    report = MissionStore(world.tables["Missions"]).read_report(mission_id)
    assert report is not None
    verdicts = {c.change_id: (c.decision, c.outcome, c.verified) for c in report.changes}
    assert verdicts[ebs.change_id] == ("approved", "applied", "fixed")
    assert verdicts[bucket.change_id] == ("approved", "drift", "still_failing")
    assert {v[2] for k, v in verdicts.items() if k not in (ebs.change_id, bucket.change_id)} == {"still_failing"}
    assert report.totals.verified_fixed == 1
    # The item says what became of the plan too (an organization's summary reads items, never reports).
    item = world.tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert item["outcomes"] == {"applied": report.totals.applied, "verified_fixed": 1}
    assert report.totals.applied == 1
    trail = [i["action"] for i in sorted(read_trail(world.tables["Audit"], mission_id), key=lambda i: i["seq"])]
    assert trail[:2] == ["mission.created", "approval.requested"]
    assert trail.count("change.result") == len(changes)
    assert trail[-2:] == ["mission.report", "mission.completed"]
    assert len(world.sfn.list_executions(stateMachineArn=STATE_MACHINE_ARN)["executions"]) == 1
