from __future__ import annotations

from datetime import UTC, datetime

import boto3

from aegis.audit import read_trail
from aegis.control import halt_state
from aegis_killswitch import aws_steps
from aegis_killswitch.service import KILLSWITCH_AUDIT_ID
from aegis_killswitch.settings import KillSwitchSettings
from aegis_local.auth0 import Auth0Emulator
from tests.support.killswitch_world import (
    REGION,
    REMEDIATION_ROLES,
    SCAN_RULE,
    SCHEDULE_RULE,
    AwsWorld,
    Phone,
    kill_switch_for,
    step_of,
    wait_until,
)

# Every AWS-side stop before the first Auth0 call, which can hang; the deny policies right after the flag.
TRIGGER_STEPS = [
    "set_halt_flag",
    "deny_remediation_sessions",
    "halt_member_accounts",
    "disable_rules",
    "stop_org_scans",
    "stop_executions",
    "purge_handoffs",
    "revoke_auth0_sessions",
    "block_token_vault_approvers",
]
REARM_STEPS = ["release_halt_flag", "enable_rules", "unblock_approvers", "lift_halted_policy", "rearm_member_accounts"]


def test_trigger_does_every_step_in_order_and_audits_each(
    settings: KillSwitchSettings, aws_world: AwsWorld, phone: Phone, emulator: Auth0Emulator
) -> None:
    mission = aws_world.start_mission("m-trigger", changes=2)
    refresh_token = phone.approver_refresh_token(settings.approver_subs[0])
    switch = kill_switch_for(aws_world, settings)

    report = switch.trigger(reason="suspicious change at 3 a.m.", requested_by="alice")

    assert [step.step for step in report.steps] == TRIGGER_STEPS
    assert report.ok, report.failed_steps
    assert report.halted is True
    assert halt_state(aws_world.control)["engaged_by"] == "alice"
    assert aws_world.rule_states() == {SCHEDULE_RULE: "DISABLED", SCAN_RULE: "DISABLED"}
    wait_until(lambda: aws_world.status(mission) != "RUNNING", what="the mission to end")
    assert not phone.refresh_works(refresh_token)
    assert all(emulator.is_blocked(sub) for sub in settings.approver_subs)
    assert aws_world.deny_policy() is not None
    assert aws_world.halted_policy() is not None

    trail = read_trail(aws_world.audit, KILLSWITCH_AUDIT_ID)
    assert [item["action"] for item in trail] == [
        "killswitch.trigger.requested",
        *(f"killswitch.trigger.{step}" for step in TRIGGER_STEPS),
        "killswitch.trigger.completed",
    ]
    assert {item["outcome"] for item in trail[1:-1]} == {"ok"}
    assert trail[-1]["outcome"] == "ok"
    assert all(report.operation_id in item["details"] for item in trail)
    mission_trail = read_trail(aws_world.audit, "m-trigger")
    assert [(item["action"], item["outcome"]) for item in mission_trail] == [("mission.halted", "ok")]


def test_auth0_down_fails_only_the_auth0_steps_and_the_halt_holds(
    settings: KillSwitchSettings, aws_world: AwsWorld, phone: Phone, emulator: Auth0Emulator
) -> None:
    mission = aws_world.start_mission("m-auth0-down")
    refresh_token = phone.approver_refresh_token(settings.approver_subs[0])
    emulator.set_down(True)

    report = kill_switch_for(aws_world, settings).trigger(reason="auth0 outage drill", requested_by="alice")

    emulator.set_down(False)
    assert not report.ok
    assert report.failed_steps == ["revoke_auth0_sessions", "block_token_vault_approvers"]
    assert all("503" in step.reason for step in report.steps if not step.ok)
    assert report.halted is True
    assert halt_state(aws_world.control) is not None
    assert aws_world.rule_states() == {SCHEDULE_RULE: "DISABLED", SCAN_RULE: "DISABLED"}
    wait_until(lambda: aws_world.status(mission) != "RUNNING", what="the mission to end")
    assert aws_world.deny_policy() is not None
    assert aws_world.halted_policy() is not None
    # Nothing at Auth0 was changed, and the failure is in the audit trail.
    assert phone.refresh_works(refresh_token)
    assert not any(emulator.is_blocked(sub) for sub in settings.approver_subs)
    trail = read_trail(aws_world.audit, KILLSWITCH_AUDIT_ID)
    outcomes = {item["action"]: item["outcome"] for item in trail}
    assert outcomes["killswitch.trigger.revoke_auth0_sessions"] == "failed"
    assert outcomes["killswitch.trigger.completed"] == "partial_failure"


def test_a_broken_control_table_does_not_stop_the_other_steps(
    settings: KillSwitchSettings, aws_world: AwsWorld, phone: Phone, emulator: Auth0Emulator
) -> None:
    refresh_token = phone.approver_refresh_token(settings.approver_subs[0])
    aws_world.control.delete()
    aws_world.create_mission_state_machine()

    report = kill_switch_for(aws_world, settings).trigger(reason="control table gone", requested_by="alice")

    by_step = {step.step: step for step in report.steps}
    assert not by_step["set_halt_flag"].ok
    assert "ResourceNotFoundException" in by_step["set_halt_flag"].reason
    assert report.halted is None  # could not be read back: reported as unknown, not as released
    assert by_step["disable_rules"].ok
    assert by_step["stop_executions"].ok
    assert by_step["revoke_auth0_sessions"].ok
    assert by_step["deny_remediation_sessions"].ok
    assert not phone.refresh_works(refresh_token)
    # Approvers were blocked even though the block could not be recorded for re-arm; the report says so.
    assert not by_step["block_token_vault_approvers"].ok
    assert "could not record the block" in by_step["block_token_vault_approvers"].reason
    assert all(emulator.is_blocked(sub) for sub in settings.approver_subs)


def test_an_unwritable_audit_table_never_stops_a_step(settings: KillSwitchSettings, aws_world: AwsWorld) -> None:
    aws_world.audit.delete()
    aws_world.create_mission_state_machine()
    report = kill_switch_for(aws_world, settings).trigger(reason="audit down", requested_by="alice")
    assert report.ok, report.failed_steps
    assert halt_state(aws_world.control) is not None


def test_triggering_twice_is_harmless(settings: KillSwitchSettings, aws_world: AwsWorld) -> None:
    aws_world.create_mission_state_machine()
    switch = kill_switch_for(aws_world, settings)
    first = switch.trigger(reason="first", requested_by="alice")
    second = switch.trigger(reason="second", requested_by="bob")
    assert first.ok, first.failed_steps
    assert second.ok, second.failed_steps
    assert "already engaged" in second.steps[0].reason
    assert halt_state(aws_world.control)["engaged_by"] == "alice"
    assert step_of(second, "block_token_vault_approvers").details["already_blocked"] == list(settings.approver_subs)


def test_rearm_releases_the_flag_enables_the_rules_unblocks_and_restores_no_credential(
    settings: KillSwitchSettings, aws_world: AwsWorld, phone: Phone, emulator: Auth0Emulator
) -> None:
    aws_world.create_mission_state_machine()
    refresh_token = phone.approver_refresh_token(settings.approver_subs[0])
    switch = kill_switch_for(aws_world, settings)
    trigger = switch.trigger(reason="drill", requested_by="alice")
    assert trigger.ok
    trigger_cutoff = str(step_of(trigger, "deny_remediation_sessions").details["sessions_issued_before"])

    report = switch.rearm(reason="all clear", requested_by="bob")

    assert [step.step for step in report.steps] == REARM_STEPS
    assert report.ok, report.failed_steps
    assert report.halted is False
    assert halt_state(aws_world.control) is None
    assert aws_world.rule_states() == {SCHEDULE_RULE: "ENABLED", SCAN_RULE: "ENABLED"}
    assert not any(emulator.is_blocked(sub) for sub in settings.approver_subs)
    # Revoked stays revoked; sessions issued before the re-arm (the halt's included) stay denied, new ones are
    # allowed again; a new approval works again.
    assert not phone.refresh_works(refresh_token)
    rearm_cutoff = str(step_of(report, "lift_halted_policy").details["sessions_issued_before"])
    assert rearm_cutoff >= trigger_cutoff
    assert aws_world.deny_policy() == aws_steps.deny_policy_document(rearm_cutoff)
    assert aws_world.halted_policy() is None
    trail = read_trail(aws_world.audit, KILLSWITCH_AUDIT_ID)
    lifted = [item for item in trail if item["action"] == "killswitch.rearm.lift_halted_policy"]
    assert [item["outcome"] for item in lifted] == ["ok"]
    assert phone.refresh_works(phone.approver_refresh_token(settings.approver_subs[0]))
    # A new mission starts and waits for approval as usual.
    assert aws_world.status(aws_world.start_mission("m-after-rearm")) == "RUNNING"


def test_rearm_unblocks_only_whom_the_kill_switch_blocked(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone
) -> None:
    aws_world.create_mission_state_machine()
    blocked_by_admin, other = settings.approver_subs
    management = kill_switch_for(aws_world, settings).clients.auth0_management()
    management.set_blocked(blocked_by_admin, True)
    switch = kill_switch_for(aws_world, settings)
    trigger = switch.trigger(reason="drill", requested_by="alice")
    assert step_of(trigger, "block_token_vault_approvers").details["blocked"] == [other]

    assert switch.rearm(reason="all clear", requested_by="bob").ok

    assert emulator.is_blocked(blocked_by_admin)
    assert not emulator.is_blocked(other)


def test_rearm_without_a_trigger_changes_nothing(settings: KillSwitchSettings, aws_world: AwsWorld) -> None:
    report = kill_switch_for(aws_world, settings).rearm(reason="nothing to re-arm", requested_by="bob")
    assert report.ok
    assert report.steps[0].reason == "halt flag was not engaged"
    assert halt_state(aws_world.control) is None


def test_the_deny_policy_cutoff_is_when_the_policy_is_attached(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    aws_world.create_mission_state_machine()
    switch = kill_switch_for(aws_world, settings)
    readings = iter(datetime(2031, 2, 3, 4, 5, second, tzinfo=UTC) for second in range(60))
    switch.clock = lambda: next(readings)
    report = switch.trigger(reason="drill", requested_by="alice")
    # The trigger read the clock when it started (00) and again when it attached the policy (01), so that sessions
    # issued while the flag was being set are denied as well.
    assert report.at == "2031-02-03T04:05:00+00:00"
    assert step_of(report, "deny_remediation_sessions").details["sessions_issued_before"] == "2031-02-03T04:05:01Z"
    condition = aws_world.deny_policy()["Statement"][0]["Condition"]
    assert condition == {"DateLessThan": {"aws:TokenIssueTime": "2031-02-03T04:05:01Z"}}
    assert set(
        boto3.client("iam", region_name=REGION).list_role_policies(RoleName=settings.remediation_role_name)[
            "PolicyNames"
        ]
    ) == {"AegisDenyOlderSessions", "AegisHalted"}


def test_a_rearm_that_cannot_release_the_flag_keeps_both_remediation_roles_halted(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    aws_world.create_mission_state_machine()
    switch = kill_switch_for(aws_world, settings)
    assert switch.trigger(reason="drill", requested_by="alice").ok
    aws_world.control.delete()

    report = switch.rearm(reason="all clear?", requested_by="bob")

    by_step = {step.step: step for step in report.steps}
    assert not by_step["release_halt_flag"].ok
    assert not by_step["lift_halted_policy"].ok
    assert all(aws_world.halted_policy(role) is not None for role in REMEDIATION_ROLES)
    trail = read_trail(aws_world.audit, KILLSWITCH_AUDIT_ID)
    lifted = [item for item in trail if item["action"] == "killswitch.rearm.lift_halted_policy"]
    assert [item["outcome"] for item in lifted] == ["failed"]
