"""Undo requests: from an `aegis.undo` event to the plan `[Undo.of(original)]`, or a named refusal.

The agent plans an undo only of a change the executor audited as applied, and only while the resource is still in
that change's after-state. Two steps, both read-only:

`resolve_undo`, before the mission's graph runs, from the audit trail (the Audit table's `ByChange` index) and the
original mission's stored plan:

- `undo-disabled`: the deployment has no undo connection (UNDO_ENABLED is false), so there is no UndoRole;
- `undo-not-applied`: no `executor.applied` record (actor `executor`, outcome `applied`) of the change, written by an
  execution of this deployment's mission state machine;
- `undo-original-unknown`: the mission that applied it has no stored plan holding the change with the audited
  digest (the change cannot be rebuilt exactly, so nothing is proposed);
- `undo-not-a-forward-change`: the change is itself an undo (an undo is undone by applying the original again);
- `undo-already-undone`: an applied undo of it is newer than its last apply.

`plan_undo`, the graph's plan node for an undo mission, after the mission's scan of the original's check:

- `undo-resource-unreadable`: the scan could not run that check, so the resource's state is unknown;
- `undo-resource-moved-on`: the scan finds the resource failing the check again. The after-state of every forward
  change passes its check, so a resource that fails it is no longer in that state: someone changed it since, and
  restoring the old before-state would overwrite their change unseen. A resource that passes the check but is in
  another passing state is caught by the executor's drift check (`is_after` with the undo session), which applies
  nothing then;
- `approval-text-too-long`: the undo's approval texts would not fit on the approver's screen (never cut);
- `needs-second-approver`: the undo needs two distinct approvers and the approval policy gives it fewer (the
  validator's rule of the same name; never downgraded to one approval).

The first three names are the validator's own rules (`aegis_validator.rules`), which check the same on the plan
before any approval is requested, and the ops API's 409 reasons.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aegis.approvals.policy import NEEDS_SECOND_APPROVER, ApprovalPolicy
from aegis.catalogue import FORWARD_KINDS, ChangeBase, Undo
from aegis.models import Finding
from aegis_agent.errors import DocumentInvalid, UndoRefused
from aegis_agent.missions import MissionStore
from aegis_agent.plan import targets
from aegis_agent.state import Plan, PlanPolicy, PlanStatus, ScanRecord, UndoTarget

APPLIED = ("executor", "executor.applied", "applied")
PLAN_DOCUMENT = "plan"


class UndoRefusal:
    """The named reasons an undo request is refused (audited, and the mission item's `undo_refused`)."""

    DISABLED = "undo-disabled"
    NOT_APPLIED = "undo-not-applied"
    ORIGINAL_UNKNOWN = "undo-original-unknown"
    NOT_A_FORWARD_CHANGE = "undo-not-a-forward-change"
    ALREADY_UNDONE = "undo-already-undone"
    RESOURCE_UNREADABLE = "undo-resource-unreadable"
    RESOURCE_MOVED_ON = "undo-resource-moved-on"
    APPROVAL_TEXT_TOO_LONG = "approval-text-too-long"
    NEEDS_SECOND_APPROVER = NEEDS_SECOND_APPROVER


# The audit records about one change, oldest first (aegis.audit.change_trail on the Audit table).
ChangeTrail = Callable[[str], Sequence[Mapping[str, Any]]]


def resolve_undo(
    *,
    change_id: str,
    requested_by: str,
    undo_enabled: bool,
    state_machine_arn: str,
    change_trail: ChangeTrail,
    missions: MissionStore,
) -> UndoTarget:
    """The applied change `change_id` names, ready to undo; UndoRefused with a named reason otherwise."""
    if not undo_enabled:
        raise UndoRefused(UndoRefusal.DISABLED, "undo is disabled in this deployment (no UndoTokenVaultConnection)")
    executions = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
    applied = applied_records(change_trail(change_id), change_id, executions)
    if not applied:
        raise UndoRefused(UndoRefusal.NOT_APPLIED, "no executor.applied record of this change in this deployment")
    last = max(applied, key=lambda record: str(record["seq"]))
    original = _original_change(missions, str(last["mission_id"]), change_id, _details(last).get("digest"))
    undo_id = Undo.of(original).change_id
    # Every undo of one original has the same id (its identity is the original's id and digest).
    undone = applied_records(change_trail(undo_id), undo_id, executions)
    if undone and max(str(r["seq"]) for r in undone) > str(last["seq"]):
        raise UndoRefused(UndoRefusal.ALREADY_UNDONE, "the change was undone after it was last applied")
    return UndoTarget(
        change_id=change_id,
        requested_by=requested_by,
        original=original,
        original_mission_id=str(last["mission_id"]),
        applied_seq=str(last["seq"]),
    )


def applied_records(
    records: Sequence[Mapping[str, Any]], change_id: str, execution_prefix: str
) -> list[Mapping[str, Any]]:
    """The records saying the executor applied `change_id` in an execution whose ARN starts with
    `execution_prefix` (this deployment's state machine)."""
    found = []
    for record in records:
        if (record.get("actor"), record.get("action"), record.get("outcome")) != APPLIED:
            continue
        details = _details(record)
        execution_arn = details.get("execution_arn")
        if details.get("change_id") != change_id or not isinstance(execution_arn, str):
            continue
        if execution_arn.startswith(execution_prefix) and "seq" in record and "mission_id" in record:
            found.append(record)
    return found


def _details(record: Mapping[str, Any]) -> dict[str, Any]:
    try:
        details = json.loads(str(record.get("details", "")))
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def _original_change(missions: MissionStore, mission_id: str, change_id: str, digest: Any) -> ChangeBase:
    """The change as the mission that applied it planned it, if its digest is the one the executor audited."""
    try:
        plan = missions.read_unreferenced_document(mission_id, PLAN_DOCUMENT, Plan)
    except DocumentInvalid:
        plan = None
    change = next((c for c in plan.changes if c.change_id == change_id), None) if plan else None
    if change is None or change.digest != digest:
        raise UndoRefused(
            UndoRefusal.ORIGINAL_UNKNOWN, "the mission that applied the change holds no plan with it and its digest"
        )
    if type(change) not in FORWARD_KINDS:
        raise UndoRefused(UndoRefusal.NOT_A_FORWARD_CHANGE, "an undo is not undone; apply the original again")
    return change


def plan_undo(target: UndoTarget, policy: PlanPolicy, scan: ScanRecord, approval: ApprovalPolicy | None = None) -> Plan:
    """The undo mission's plan, once its scan of the original's check has shown the resource still in the change's
    after-state; UndoRefused otherwise. A deployment in dry run plans it without asking anyone, like any plan."""
    original = target.original
    if any(error.check_id == original.check_id for error in scan.errors):
        raise UndoRefused(UndoRefusal.RESOURCE_UNREADABLE, f"the scan could not run {original.check_id}")
    if any(_about(finding, original) for finding in scan.findings):
        raise UndoRefused(
            UndoRefusal.RESOURCE_MOVED_ON, "the resource fails its check again: it left the change's after-state"
        )
    undo = Undo.of(original)
    if undo.overlong_properties():
        raise UndoRefused(UndoRefusal.APPROVAL_TEXT_TOO_LONG, ", ".join(undo.overlong_properties()))
    if approval is not None and not approval.can_plan(undo):
        raise UndoRefused(
            UndoRefusal.NEEDS_SECOND_APPROVER,
            f"the undo needs {approval.approvers_needed(undo)} distinct approvers, "
            f"{len(approval.eligible(undo))} eligible",
        )
    if policy.max_changes_per_mission < 1:
        return Plan(
            status=PlanStatus.CAPPED,
            stop_reason=f"MAX_CHANGES_PER_MISSION: 1 change proposed, at most {policy.max_changes_per_mission} allowed",
        )
    return Plan(status=PlanStatus.DRY_RUN if policy.dry_run else PlanStatus.PROPOSED, changes=(undo,))


def _about(finding: Finding, change: ChangeBase) -> bool:
    return finding.check_id == change.check_id and targets(change.resource_arn, finding.resource_arn)
