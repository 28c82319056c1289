"""The kill switch's steps, in one table: for each stop, what a trigger does and what a re-arm does to undo it.

Trigger order (the table's): the halt flag; at once the two deny policies of the remediation roles (RemediationRole,
and UndoRole when configured), the only stop AWS itself enforces: `AegisHalted` (no session at all while halted, not
even one issued after the trigger from a provider token handed out before it) and `AegisDenyOlderSessions` (no
session issued before the trigger, ever); then the same two policies on the remediation roles of every member account
of the organization (`aegis_killswitch.members`: in parallel, bounded in time, an unreachable member failing the step
but holding back neither the other members nor the steps after); then the scan rules, the running organization scans,
the running missions and their waiting approvals, every sealed approval nobody consumed; and last the Auth0
Management API calls (sessions and refresh tokens of the approvers, their Token Vault access). Auth0 comes last
because it can hang: every AWS-side stop is in place before the first call to it.

This account's own roles come first, alone, not alongside the members: they are a handful of calls to this
account's own IAM, done before any member call, so no member (many of them, any of which may be slow to answer)
can delay the one stop that holds whatever the organization does.

Re-arm, in the same order: release the flag, re-enable the rules, unblock the approvers the kill switch blocked; and
last move the deny-older cutoff to the re-arm (a session issued while halted must not come back to life) and remove
`AegisHalted`, in this account and then in every member. Stopped missions and organization scans, purged approvals
and revoked sessions are not restored: every new mission gets a new session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3

from aegis_killswitch import aws_steps, halt, members
from aegis_killswitch.auth0_steps import (
    Auth0Management,
    block_token_vault_approvers,
    revoke_approver_sessions,
    unblock_approvers,
)
from aegis_killswitch.handoffs import HandoffPurger, PurgeResult
from aegis_killswitch.report import Operation, OperationRequest, StepOutcome
from aegis_killswitch.settings import KillSwitchSettings


@dataclass
class KillSwitchClients:
    """Everything the kill switch talks to. Tests pass moto-backed clients and an emulator-backed Auth0 client."""

    control_table: Any
    audit_table: Any
    events: Any
    stepfunctions: Any
    iam: Any
    auth0_management: Callable[[], Auth0Management]
    handoff_table: Any
    # The organization's member accounts (ListAccounts; AssumeRole into each one's AegisKillSwitchRole). None: the
    # default clients, made when first needed (a deployment without an organization never needs them).
    organizations: Any = None
    sts: Any = None

    def organizations_client(self) -> Any:
        if self.organizations is None:
            self.organizations = boto3.client("organizations", config=members.MEMBER_CALL_CONFIG)
        return self.organizations

    def sts_client(self) -> Any:
        if self.sts is None:
            self.sts = boto3.client("sts", config=members.MEMBER_CALL_CONFIG)
        return self.sts


@dataclass(frozen=True)
class Run:
    """One trigger or re-arm, as its steps see it."""

    request: OperationRequest
    settings: KillSwitchSettings
    clients: KillSwitchClients
    clock: Callable[[], datetime]
    # One Management API client (so one client-credentials token) for the whole operation, made on first use.
    management: Callable[[], Auth0Management]
    # Tells a halted mission's own audit trail (mission id, what was done to it).
    record_mission: Callable[[str, dict[str, Any]], None]

    @property
    def cause(self) -> str:
        request = self.request
        return f"kill switch {request.operation_id} by {request.requested_by}: {request.reason}"


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[[Run], StepOutcome]


@dataclass(frozen=True)
class Step:
    trigger: Action
    # None: the re-arm leaves this stop as it is.
    rearm: Action | None = None
    # Re-armed after every other step.
    rearm_last: bool = False


# ----------------------------------------------------------------------------------------------- halt flag


def _halt_flag_record(run: Run) -> dict[str, str]:
    request = run.request
    return {
        "at": request.at,
        "by": request.requested_by,
        "reason": request.reason,
        "operation_id": request.operation_id,
    }


def _engage(run: Run) -> StepOutcome:
    change = halt.engage(run.clients.control_table, **_halt_flag_record(run))
    item = change.item
    if not item.get("engaged"):
        return StepOutcome(step="set_halt_flag", ok=False, reason="the halt flag did not read back as engaged")
    details = {"engaged_at": str(item.get("engaged_at")), "engaged_by": str(item.get("engaged_by"))}
    if change.changed:
        return StepOutcome(step="set_halt_flag", ok=True, reason="halt flag engaged", details=details)
    return StepOutcome(
        step="set_halt_flag",
        ok=True,
        reason=f"halt flag already engaged since {details['engaged_at']} by {details['engaged_by']}",
        details=details,
    )


def _release(run: Run) -> StepOutcome:
    change = halt.release(run.clients.control_table, **_halt_flag_record(run))
    if change.item.get("engaged"):
        return StepOutcome(step="release_halt_flag", ok=False, reason="the halt flag still reads as engaged")
    return StepOutcome(
        step="release_halt_flag",
        ok=True,
        reason="halt flag released" if change.changed else "halt flag was not engaged",
    )


# ----------------------------------------------------------------------------------------------- remediation roles


def _deny_sessions(run: Run) -> StepOutcome:
    # The cutoff is read when the policies are attached, not when the trigger started: a session issued while the
    # flag was being set (an executor that passed its halt check just before) is denied too.
    return aws_steps.deny_remediation_sessions(run.clients.iam, run.settings.remediation_role_names, run.clock())


def _lift_halted_policy(run: Run) -> StepOutcome:
    # The remediation roles become usable again only once the flag reads released: a re-arm whose first step failed
    # must not leave them open while every function still sees the halt.
    roles = run.settings.remediation_role_names
    if halt.is_engaged(run.clients.control_table):
        return StepOutcome(
            step="lift_halted_policy",
            ok=False,
            reason=f"the halt flag is still engaged, so {aws_steps.HALTED_POLICY_NAME} stays on {' and '.join(roles)}",
        )
    return aws_steps.lift_halted_policy(run.clients.iam, roles, run.clock())


# ----------------------------------------------------------------------------------------------- member accounts


def _halt_members(run: Run) -> StepOutcome:
    roles = run.settings.member_role_names
    return members.run_in_members(
        run.settings,
        run.clients.organizations_client(),
        run.clients.sts_client(),
        members.MemberOperation(
            step="halt_member_accounts",
            done="halted",
            session_name=members.HALT_SESSION_NAME,
            # Each member's cutoff is read when its policies are attached, as for this account's roles.
            act=lambda iam: aws_steps.deny_remediation_sessions(iam, roles, run.clock()),
        ),
    )


def _rearm_members(run: Run) -> StepOutcome:
    # As in this account: a member's roles become usable again only while the flag reads released, checked before
    # the members are listed and again in each member just before its roles change (the members take a while, and
    # a new trigger may come meanwhile).
    table = run.clients.control_table
    roles = run.settings.member_role_names

    def flag_engaged() -> str | None:
        return members.HALT_ENGAGED if halt.is_engaged_shared(table) else None

    if run.settings.organization_enabled and flag_engaged():
        return StepOutcome(
            step="rearm_member_accounts",
            ok=False,
            reason=f"the halt flag is still engaged, so every member account keeps {aws_steps.HALTED_POLICY_NAME}",
            details={"organization_id": run.settings.organization_id},
        )
    return members.run_in_members(
        run.settings,
        run.clients.organizations_client(),
        run.clients.sts_client(),
        members.MemberOperation(
            step="rearm_member_accounts",
            done="rearmed",
            session_name=members.REARM_SESSION_NAME,
            act=lambda iam: aws_steps.lift_halted_policy(iam, roles, run.clock()),
            precondition=flag_engaged,
        ),
    )


# ----------------------------------------------------------------------------------------------- missions


def _disable_rules(run: Run) -> StepOutcome:
    return aws_steps.set_rules_enabled(run.clients.events, run.settings.rule_names, enabled=False)


def _enable_rules(run: Run) -> StepOutcome:
    return aws_steps.set_rules_enabled(run.clients.events, run.settings.rule_names, enabled=True)


def _stop_executions(run: Run) -> StepOutcome:
    return aws_steps.halt_missions(
        run.clients.stepfunctions, run.settings.state_machine_arn, cause=run.cause, on_mission_halted=run.record_mission
    )


def _stop_org_scans(run: Run) -> StepOutcome:
    return aws_steps.stop_org_scans(run.clients.stepfunctions, run.settings.org_scan_state_machine_arn, cause=run.cause)


def _purge_handoffs(run: Run) -> StepOutcome:
    return purge_outcome(HandoffPurger(run.clients.handoff_table).everything())


def purge_outcome(result: PurgeResult) -> StepOutcome:
    step = "purge_handoffs"
    details = {"found": result.found, "deleted": result.deleted}
    if not result.ok:
        return StepOutcome(
            step=step,
            ok=False,
            reason=f"{len(result.left)} of {result.found} unconsumed handoffs could not be deleted (throttled)",
            details={**details, "left": list(result.left)},
        )
    return StepOutcome(step=step, ok=True, reason=f"purged {result.found} unconsumed handoffs", details=details)


# ----------------------------------------------------------------------------------------------- Auth0


def _revoke_sessions(run: Run) -> StepOutcome:
    return revoke_approver_sessions(run.management, run.settings.approver_subs)


def _block_approvers(run: Run) -> StepOutcome:
    table = run.clients.control_table
    return block_token_vault_approvers(
        run.management,
        run.settings.approver_subs,
        run.settings.token_vault_connection,
        lambda subs: halt.remember_blocked_approvers(table, subs),
    )


def _unblock_approvers(run: Run) -> StepOutcome:
    table = run.clients.control_table
    return unblock_approvers(
        run.management, halt.blocked_approvers(table), lambda subs: halt.forget_blocked_approvers(table, subs)
    )


STEPS: tuple[Step, ...] = (
    Step(Action("set_halt_flag", _engage), Action("release_halt_flag", _release)),
    Step(
        Action("deny_remediation_sessions", _deny_sessions),
        Action("lift_halted_policy", _lift_halted_policy),
        rearm_last=True,
    ),
    Step(
        Action("halt_member_accounts", _halt_members),
        Action("rearm_member_accounts", _rearm_members),
        rearm_last=True,
    ),
    Step(Action("disable_rules", _disable_rules), Action("enable_rules", _enable_rules)),
    # Before the missions: a stopped organization scan asks for no further account scan, so starts no new mission.
    Step(Action("stop_org_scans", _stop_org_scans)),
    Step(Action("stop_executions", _stop_executions)),
    Step(Action("purge_handoffs", _purge_handoffs)),
    Step(Action("revoke_auth0_sessions", _revoke_sessions)),
    Step(Action("block_token_vault_approvers", _block_approvers), Action("unblock_approvers", _unblock_approvers)),
)


def actions(operation: Operation) -> list[Action]:
    """What a trigger or a re-arm does, in order."""
    if operation == "trigger":
        return [step.trigger for step in STEPS]
    ordered = sorted((step for step in STEPS if step.rearm is not None), key=lambda step: step.rearm_last)
    return [step.rearm for step in ordered if step.rearm is not None]
