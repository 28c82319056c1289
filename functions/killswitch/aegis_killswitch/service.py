"""Trigger, re-arm and the purge of an ended execution's handoffs: each step runs whatever happened to the ones before
it, and each is audited.

Trigger order: the halt flag; at once the two deny policies of the remediation roles (RemediationRole, and UndoRole
when configured), the only stop AWS itself enforces: `AegisHalted` (no session at all while halted, not even one
issued after the trigger from a provider token handed out before it) and `AegisDenyOlderSessions` (no session issued
before the trigger, ever); then the scan rules, the running missions and their waiting approvals, every sealed
approval nobody consumed; and last the Auth0 Management API calls (sessions and refresh tokens of the approvers, their
Token Vault access). Auth0 comes last because it can hang: every AWS-side stop is in place before the first call to it.
Re-arm: release the flag, re-enable the rules, unblock the approvers the kill switch blocked, move the deny-older
cutoff to the re-arm (a session issued while halted must not come back to life) and remove `AegisHalted`. Re-arm
restores no revoked credential: every new mission gets a new session.

When a mission's execution ends (succeeded, failed, timed out or stopped by hand), EventBridge hands the kill
switch the status change and the handoffs that execution left behind are purged (`purge_ended_execution`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from aegis.audit import AuditLog
from aegis_killswitch import aws_steps, halt
from aegis_killswitch.auth0_steps import (
    Auth0Management,
    block_token_vault_approvers,
    revoke_approver_sessions,
    unblock_approvers,
)
from aegis_killswitch.handoffs import HandoffPurger, PurgeResult
from aegis_killswitch.report import KillSwitchReport, Operation, StepOutcome, describe_error
from aegis_killswitch.settings import KillSwitchSettings

# Kill switch events go to their own partition of the Audit table; each halted mission also gets a line in its own.
KILLSWITCH_AUDIT_ID = "killswitch"
AUDIT_ACTOR = "killswitch"

logger = Logger(child=True)


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


def utc_now() -> datetime:
    return datetime.now(UTC)


class KillSwitch:
    def __init__(
        self, settings: KillSwitchSettings, clients: KillSwitchClients, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self._audit = AuditLog(clients.audit_table, actor=AUDIT_ACTOR)

    # ------------------------------------------------------------------------------------------- operations

    def trigger(self, *, reason: str, requested_by: str) -> KillSwitchReport:
        now = self.clock()
        operation_id = f"ks-{uuid.uuid4().hex[:16]}"
        at = now.isoformat()
        cause = f"kill switch {operation_id} by {requested_by}: {reason}"
        self._record(operation_id, "trigger", "requested", "started", requested_by=requested_by, reason=reason)
        settings, clients = self.settings, self.clients
        management = self._shared_management_client()
        steps = [
            self._step(
                operation_id,
                "trigger",
                "set_halt_flag",
                lambda: self._engage(at=at, by=requested_by, reason=reason, operation_id=operation_id),
            ),
            self._step(
                operation_id,
                "trigger",
                "deny_remediation_sessions",
                # The cutoff is read when the policies are attached, not when the trigger started: a session issued
                # while the flag was being set (an executor that passed its halt check just before) is denied too.
                lambda: aws_steps.deny_remediation_sessions(clients.iam, settings.remediation_role_names, self.clock()),
            ),
            self._step(
                operation_id,
                "trigger",
                "disable_rules",
                lambda: aws_steps.set_rules_enabled(clients.events, settings.rule_names, enabled=False),
            ),
            self._step(
                operation_id,
                "trigger",
                "stop_executions",
                lambda: aws_steps.halt_missions(
                    clients.stepfunctions,
                    settings.state_machine_arn,
                    cause=cause,
                    on_mission_halted=lambda mission_id, details: self._record_mission(
                        mission_id, operation_id, details
                    ),
                ),
            ),
            self._step(operation_id, "trigger", "purge_handoffs", self._purge_every_handoff),
            self._step(
                operation_id,
                "trigger",
                "revoke_auth0_sessions",
                lambda: revoke_approver_sessions(management, settings.approver_subs),
            ),
            self._step(
                operation_id,
                "trigger",
                "block_token_vault_approvers",
                lambda: block_token_vault_approvers(
                    management,
                    settings.approver_subs,
                    settings.token_vault_connection,
                    lambda subs: halt.remember_blocked_approvers(clients.control_table, subs),
                ),
            ),
        ]
        return self._finish(
            operation_id, operation="trigger", at=at, requested_by=requested_by, reason=reason, steps=steps
        )

    def rearm(self, *, reason: str, requested_by: str) -> KillSwitchReport:
        now = self.clock()
        operation_id = f"ks-{uuid.uuid4().hex[:16]}"
        at = now.isoformat()
        self._record(operation_id, "rearm", "requested", "started", requested_by=requested_by, reason=reason)
        settings, clients = self.settings, self.clients
        management = self._shared_management_client()
        steps = [
            self._step(
                operation_id,
                "rearm",
                "release_halt_flag",
                lambda: self._release(at=at, by=requested_by, reason=reason, operation_id=operation_id),
            ),
            self._step(
                operation_id,
                "rearm",
                "enable_rules",
                lambda: aws_steps.set_rules_enabled(clients.events, settings.rule_names, enabled=True),
            ),
            self._step(
                operation_id,
                "rearm",
                "unblock_approvers",
                lambda: unblock_approvers(
                    management,
                    halt.blocked_approvers(clients.control_table),
                    lambda subs: halt.forget_blocked_approvers(clients.control_table, subs),
                ),
            ),
            self._step(
                operation_id,
                "rearm",
                "lift_halted_policy",
                self._lift_halted_policy,
            ),
        ]
        return self._finish(
            operation_id, operation="rearm", at=at, requested_by=requested_by, reason=reason, steps=steps
        )

    # ------------------------------------------------------------------------------------------- steps

    def _engage(self, *, at: str, by: str, reason: str, operation_id: str) -> StepOutcome:
        change = halt.engage(self.clients.control_table, at=at, by=by, reason=reason, operation_id=operation_id)
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

    def _release(self, *, at: str, by: str, reason: str, operation_id: str) -> StepOutcome:
        change = halt.release(self.clients.control_table, at=at, by=by, reason=reason, operation_id=operation_id)
        if change.item.get("engaged"):
            return StepOutcome(step="release_halt_flag", ok=False, reason="the halt flag still reads as engaged")
        return StepOutcome(
            step="release_halt_flag",
            ok=True,
            reason="halt flag released" if change.changed else "halt flag was not engaged",
        )

    def _lift_halted_policy(self) -> StepOutcome:
        # The remediation roles become usable again only once the flag reads released: a re-arm whose first step
        # failed must not leave them open while every function still sees the halt.
        roles = self.settings.remediation_role_names
        if halt.is_engaged(self.clients.control_table):
            return StepOutcome(
                step="lift_halted_policy",
                ok=False,
                reason=(
                    f"the halt flag is still engaged, so {aws_steps.HALTED_POLICY_NAME} stays on {' and '.join(roles)}"
                ),
            )
        return aws_steps.lift_halted_policy(self.clients.iam, roles, self.clock())

    def _purge_every_handoff(self) -> StepOutcome:
        return _purge_outcome("purge_handoffs", HandoffPurger(self.clients.handoff_table).everything())

    # ------------------------------------------------------------------------------------------- ended executions

    def purge_ended_execution(self, execution_arn: str, status: str) -> StepOutcome:
        """Delete the handoffs an ended execution left behind (an approval sealed after its change was given up:
        stopped by hand, a heartbeat timeout after sealing, a failure before the executor consumed it).

        Audited in the mission's own trail when something was purged or the purge failed; an execution that left
        nothing behind (the usual case) adds no record.
        """
        mission_id = execution_arn.rsplit(":", 1)[-1]
        try:
            outcome = _purge_outcome(
                "purge_handoffs", HandoffPurger(self.clients.handoff_table).of_execution(execution_arn)
            )
        except Exception as error:
            outcome = StepOutcome(
                step="purge_handoffs",
                ok=False,
                reason=f"could not purge the handoffs of {execution_arn}: {describe_error(error)}",
            )
        details = {**outcome.details, "execution_arn": execution_arn, "status": status}
        if outcome.ok:
            logger.info("handoffs of an ended execution purged", extra=details)
        else:
            logger.error("purging the handoffs of an ended execution FAILED", extra={**details, "why": outcome.reason})
        if not outcome.ok or outcome.details.get("found"):
            self._record_in_mission(
                mission_id, "handoff.purged", "ok" if outcome.ok else "failed", reason=outcome.reason, **details
            )
        return outcome.model_copy(update={"details": details})

    def _shared_management_client(self) -> Callable[[], Auth0Management]:
        """One Management API client (so one client-credentials token) per operation, created on first use."""
        created: list[Auth0Management] = []

        def get() -> Auth0Management:
            if not created:
                created.append(self.clients.auth0_management())
            return created[0]

        return get

    def _step(self, operation_id: str, operation: Operation, name: str, run: Callable[[], StepOutcome]) -> StepOutcome:
        try:
            outcome = run()
        except Exception as error:
            outcome = StepOutcome(step=name, ok=False, reason=describe_error(error))
        if outcome.ok:
            logger.info("kill switch step done", extra={"step": name, "operation_id": operation_id})
        else:
            logger.error(
                "kill switch step FAILED",
                extra={"step": name, "operation_id": operation_id, "reason": outcome.reason},
            )
        self._record(
            operation_id,
            operation,
            name,
            "ok" if outcome.ok else "failed",
            reason=outcome.reason,
            details=outcome.details,
        )
        return outcome

    def _finish(
        self,
        operation_id: str,
        *,
        operation: Operation,
        at: str,
        requested_by: str,
        reason: str,
        steps: list[StepOutcome],
    ) -> KillSwitchReport:
        try:
            halted: bool | None = halt.is_engaged(self.clients.control_table)
        except Exception as error:
            logger.error("could not read the halt flag back", extra={"reason": describe_error(error)})
            halted = None
        report = KillSwitchReport(
            operation=operation,
            operation_id=operation_id,
            requested_by=requested_by,
            reason=reason,
            at=at,
            halted=halted,
            steps=steps,
        )
        self._record(
            operation_id,
            operation,
            "completed",
            "ok" if report.ok else "partial_failure",
            halted=halted,
            failed_steps=report.failed_steps,
        )
        return report

    # ------------------------------------------------------------------------------------------- audit

    def _record(self, operation_id: str, operation: Operation, step: str, outcome: str, **details: Any) -> None:
        # An audit failure is logged, never allowed to stop a kill switch step.
        try:
            self._audit.append(
                KILLSWITCH_AUDIT_ID, f"killswitch.{operation}.{step}", outcome, operation_id=operation_id, **details
            )
        except Exception as error:
            logger.error(
                "kill switch audit write failed",
                extra={"operation_id": operation_id, "step": step, "reason": describe_error(error)},
            )

    def _record_mission(self, mission_id: str, operation_id: str, details: dict[str, Any]) -> None:
        outcome = "ok" if details.get("ok") else "failed"
        self._record_in_mission(mission_id, "mission.halted", outcome, operation_id=operation_id, **details)

    def _record_in_mission(self, mission_id: str, action: str, outcome: str, **details: Any) -> None:
        # In the mission's own trail; an audit failure is logged, never allowed to stop the kill switch's work.
        try:
            self._audit.append(mission_id, action, outcome, **details)
        except Exception as error:
            logger.error(
                "mission audit write failed",
                extra={
                    "action": action,
                    "operation_id": details.get("operation_id"),
                    "mission_id": mission_id,
                    "reason": describe_error(error),
                },
            )


def _purge_outcome(step: str, result: PurgeResult) -> StepOutcome:
    details = {"found": result.found, "deleted": result.deleted}
    if not result.ok:
        return StepOutcome(
            step=step,
            ok=False,
            reason=f"{len(result.left)} of {result.found} unconsumed handoffs could not be deleted (throttled)",
            details={**details, "left": list(result.left)},
        )
    return StepOutcome(step=step, ok=True, reason=f"purged {result.found} unconsumed handoffs", details=details)
