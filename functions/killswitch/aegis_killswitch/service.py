"""Trigger, re-arm and the purge of an ended execution's handoffs. A trigger or re-arm runs its steps (the table in
`aegis_killswitch.steps`, which gives their order and why) one after the other, each whatever happened to the ones
before it, and audits each.

When a mission's execution ends (succeeded, failed, timed out or stopped by hand), EventBridge hands the kill
switch the status change and the handoffs that execution left behind are purged (`purge_ended_execution`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from aegis.audit import AuditLog
from aegis_killswitch import halt
from aegis_killswitch.auth0_steps import Auth0Management
from aegis_killswitch.handoffs import HandoffPurger
from aegis_killswitch.report import KillSwitchReport, Operation, OperationRequest, StepOutcome, describe_error
from aegis_killswitch.settings import KillSwitchSettings
from aegis_killswitch.steps import Action, KillSwitchClients, Run, actions, purge_outcome

# Kill switch events go to their own partition of the Audit table; each halted mission also gets a line in its own.
KILLSWITCH_AUDIT_ID = "killswitch"
# In a mission's trail: its execution ended without resuming the agent (stopped by hand, timed out, failed).
MISSION_ENDED = "mission.ended"
AUDIT_ACTOR = "killswitch"

logger = Logger(child=True)


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
        return self._operate("trigger", reason=reason, requested_by=requested_by)

    def rearm(self, *, reason: str, requested_by: str) -> KillSwitchReport:
        return self._operate("rearm", reason=reason, requested_by=requested_by)

    def _operate(self, operation: Operation, *, reason: str, requested_by: str) -> KillSwitchReport:
        request = OperationRequest(
            operation=operation,
            operation_id=f"ks-{uuid.uuid4().hex[:16]}",
            requested_by=requested_by,
            reason=reason,
            at=self.clock().isoformat(),
        )
        operation_id = request.operation_id
        self._record(operation_id, operation, "requested", "started", requested_by=requested_by, reason=reason)
        run = Run(
            request=request,
            settings=self.settings,
            clients=self.clients,
            clock=self.clock,
            management=self._shared_management_client(),
            record_mission=lambda mission_id, details: self._record_mission(mission_id, operation_id, details),
        )
        steps = [self._step(run, action) for action in actions(operation)]
        return self._finish(request, steps)

    # ------------------------------------------------------------------------------------------- ended executions

    def purge_ended_execution(self, execution_arn: str, status: str) -> StepOutcome:
        """Delete the handoffs an ended execution left behind (an approval sealed after its change was given up:
        stopped by hand, a heartbeat timeout after sealing, a failure before the executor consumed it).

        Audited in the mission's own trail when something was purged or the purge failed; an execution that left
        nothing behind (the usual case) adds no record for the purge. An execution that did not succeed also gets
        `mission.ended` (outcome: its status in lower case), what its report reads to say how the mission ended.
        """
        mission_id = execution_arn.rsplit(":", 1)[-1]
        try:
            outcome = purge_outcome(HandoffPurger(self.clients.handoff_table).of_execution(execution_arn))
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
        if status != "SUCCEEDED":
            # The state machine resumes the agent only on its way to SUCCEEDED: otherwise nothing else records that
            # the mission is over (its item keeps its last status), and its report would call it still running.
            self._record_in_mission(mission_id, MISSION_ENDED, status.lower(), execution_arn=execution_arn)
        return outcome.model_copy(update={"details": details})

    def _shared_management_client(self) -> Callable[[], Auth0Management]:
        """One Management API client (so one client-credentials token) per operation, created on first use."""
        created: list[Auth0Management] = []

        def get() -> Auth0Management:
            if not created:
                created.append(self.clients.auth0_management())
            return created[0]

        return get

    def _step(self, run: Run, action: Action) -> StepOutcome:
        request = run.request
        try:
            outcome = action.run(run)
        except Exception as error:
            outcome = StepOutcome(step=action.name, ok=False, reason=describe_error(error))
        if outcome.ok:
            logger.info("kill switch step done", extra={"step": action.name, "operation_id": request.operation_id})
        else:
            logger.error(
                "kill switch step FAILED",
                extra={"step": action.name, "operation_id": request.operation_id, "reason": outcome.reason},
            )
        self._record(
            request.operation_id,
            request.operation,
            action.name,
            "ok" if outcome.ok else "failed",
            reason=outcome.reason,
            details=outcome.details,
        )
        return outcome

    def _finish(self, request: OperationRequest, steps: list[StepOutcome]) -> KillSwitchReport:
        try:
            halted: bool | None = halt.is_engaged(self.clients.control_table)
        except Exception as error:
            logger.error("could not read the halt flag back", extra={"reason": describe_error(error)})
            halted = None
        report = KillSwitchReport(**request.model_dump(), halted=halted, steps=steps)
        self._record(
            request.operation_id,
            request.operation,
            "completed",
            "ok" if report.ok else "partial_failure",
            halted=halted,
            failed_steps=report.failed_steps,
        )
        summary = {
            **report.model_dump(include={"operation", "operation_id", "requested_by", "halted"}),
            "steps": [step.model_dump(include={"step", "ok", "reason"}) for step in report.steps],
        }
        if report.ok:
            logger.info(f"kill switch {report.operation} completed", extra=summary)
        else:
            logger.error(
                f"kill switch {report.operation} PARTIALLY FAILED: {', '.join(report.failed_steps)}", extra=summary
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
