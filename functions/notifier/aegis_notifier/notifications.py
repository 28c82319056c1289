"""What the operator is told, and from which audit record: one table, `NOTIFICATIONS`, audit action -> notification.

| audit action (its writer)                   | notification                  | when                                   |
|---------------------------------------------|-------------------------------|----------------------------------------|
| `approval.waiting` (approval)               | `approval-waiting`            | always (once a mission, N minutes in)  |
| `mission.completed` (agent)                 | `mission-completed`           | always, with the mission's counts      |
| `mission.failed` (agent)                    | `mission-failed`              | always (the scan or the resume failed) |
| `mission.refused` (agent)                   | `scan-not-run`                | always (the kill switch was engaged)   |
| `validator.refused` (validator)             | `plan-refused`                | always (nothing was sent for approval) |
| `change.result` (agent)                     | `change-failed`               | outcome or decision `failed`           |
|                                             | `change-outcome-unknown`      | approved, and the executor's answer    |
|                                             |                               | never came back (States.*, Lambda.*)   |
|                                             | `drift-detected`              | outcome `drift`                        |
| `killswitch.trigger.requested` (killswitch) | `killswitch-triggered`        | always, with who and why               |
| `killswitch.rearm.requested` (killswitch)   | `killswitch-rearmed`          | always, with who and why               |
| `killswitch.{trigger,rearm}.completed`      | `killswitch-partly-failed`    | outcome `partial_failure`              |

A change's end is told from the agent's `change.result`, the one record every change ends with whatever ended it
(the executor, or the state machine catching an error the executor never saw); a plan the validator refused is told
once, by `plan-refused`, not once per change.

Every notification is built from an allowlist: each builder copies named fields only, each through the screen of its
kind: an identifier of its exact shape, a count, a name of a closed vocabulary's shape, or an operator's own words
shown the way texts are shown to people (`aegis.secrets_guard.display_text`: a credential-shaped run is withheld).
`details` is never copied wholesale: a record may carry a resource's before-state, a scan's evidence or the path of a
refused value, and none of that leaves the account in a notification. A value without its field's shape is replaced
by WITHHELD, so the operator sees that something was there without seeing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aegis.ids import CHANGE_ID_PATTERN
from aegis.models import Decision, Outcome
from aegis.partitions import PARTITION_PATTERN
from aegis.secrets_guard import WITHHELD, display_text, secret_kind, withhold_secrets

# --- the shapes of what may be told -------------------------------------------------------------------------------
MISSION_ID = r"^m-[0-9a-f]{20}$"
# The kill switch's records live in the Audit table's `killswitch` partition (aegis_killswitch.service).
KILLSWITCH_PARTITION = "killswitch"
EXECUTION_ARN = (
    rf"^arn:{PARTITION_PATTERN}:states:[a-z0-9-]+:[0-9]{{12}}:execution:[A-Za-z0-9_-]+:[A-Za-z0-9_-]{{1,80}}$"
)
DIGEST = r"^[0-9a-f]{64}$"
OPERATION_ID = r"^ks-[0-9a-f]{16}$"
ISO_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
# The audit sort key: where the record is, for whoever reads the trail next.
AUDIT_SEQ = r"^[A-Za-z0-9:.#_+-]{1,100}$"
# Named errors as Lambda and Step Functions spell them (Approval.Denied, States.Timeout, Lambda.Unknown ...).
ERROR_NAME = r"^[A-Z][A-Za-z0-9]*(?:\.[A-Z][A-Za-z0-9]*)+$"
# A Python exception class name (the type behind a mission's named error).
TYPE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,79}$"
# Words of a closed vocabulary: statuses, decisions, outcomes, rule and step names.
VOCABULARY_WORD = r"^[a-z][a-z0-9_-]{0,39}$"
MAX_COUNT = 10**9
MAX_REQUESTER_CHARS = 200
MAX_REASON_CHARS = 500
# Step Functions' and Lambda's own errors: an approved change that ended in one of these never got the executor's
# answer back, so nobody knows whether it was applied (the executor's named errors are raised only where nothing was).
UNANSWERED_ERROR_PREFIXES = ("States.", "Lambda.")
# SNS refuses a subject of 100 characters or more, or one with a line break or a character beyond ASCII.
MAX_SUBJECT_CHARS = 99
REFUSED_PLAN = "Validation.PlanRefused"


def _shaped(value: Any, pattern: str) -> str | None:
    """`value` if it is a string of exactly that shape (and nothing credential-shaped), WITHHELD if it is something
    else, None if there is nothing."""
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(pattern, value) and secret_kind(value) is None:
        return value
    return WITHHELD


def _count(value: Any) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT:
        return value
    return WITHHELD


def _flag(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    return WITHHELD


def _words(value: Any, limit: int) -> str | None:
    """An operator's own text, shown as texts are shown to people: credential-shaped runs withheld, invisible
    characters spelled out, cut to `limit` characters (after screening, so no cut hides a credential's shape)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return WITHHELD
    shown = display_text(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _vocabulary(values: Any) -> list[str] | str:
    """Distinct words of a closed vocabulary (rule or step names), each screened; WITHHELD for anything but a list."""
    if not isinstance(values, list):
        return WITHHELD
    return sorted({_shaped(value, VOCABULARY_WORD) or WITHHELD for value in values})


# --- records and notifications ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditRecord:
    """One audit item as its writer put it (aegis.audit.AuditLog), `details` parsed from its JSON."""

    mission_id: str
    seq: str
    at: str
    actor: str
    action: str
    outcome: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class Notification:
    """One message for the topic: a kind, a one-line summary, and screened fields only."""

    kind: str
    # One line, short enough for a subject with the deployment's name before it.
    summary: str
    mission_id: str
    at: str
    audit_seq: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    # What it means for the operator, in fixed words.
    meaning: str = ""

    def subject(self, deployment: str) -> str:
        text = f"[{deployment}] {self.summary}"
        text = "".join(char if " " <= char <= "~" else "?" for char in text)
        return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 3] + "..."

    def document(self, deployment: str) -> dict[str, Any]:
        """The message: what happened, where the record is, and the fields; anything credential-shaped that a future
        builder let through is withheld here all the same."""
        document = {
            "notification": self.kind,
            "deployment": deployment,
            "summary": self.summary,
            **({"meaning": self.meaning} if self.meaning else {}),
            "mission_id": self.mission_id,
            "at": self.at,
            "audit_record": {"mission_id": self.mission_id, "seq": self.audit_seq},
            **{name: value for name, value in self.fields.items() if value is not None},
        }
        return dict(withhold_secrets(document)[0])

    def message(self, deployment: str) -> str:
        return json.dumps(self.document(deployment), indent=2, ensure_ascii=False, sort_keys=False)

    def attributes(self, deployment: str) -> dict[str, dict[str, str]]:
        """SNS message attributes, for subscription filter policies (`{"kind": ["killswitch-triggered"]}`)."""
        return {
            "kind": {"DataType": "String", "StringValue": self.kind},
            "deployment": {"DataType": "String", "StringValue": deployment},
            "mission_id": {"DataType": "String", "StringValue": self.mission_id},
        }


def _about(record: AuditRecord, kind: str, summary: str, meaning: str = "", **fields: Any) -> Notification:
    return Notification(
        kind=kind,
        summary=summary,
        meaning=meaning,
        mission_id=mission_of(record),
        at=str(_shaped(record.at, ISO_TIME)),
        audit_seq=str(_shaped(record.seq, AUDIT_SEQ)),
        fields=fields,
    )


def mission_of(record: AuditRecord) -> str:
    if record.mission_id == KILLSWITCH_PARTITION:
        return KILLSWITCH_PARTITION
    return str(_shaped(record.mission_id, MISSION_ID))


# --- the builders, one per audited event -------------------------------------------------------------------------
def approval_waiting(record: AuditRecord) -> Notification:
    details = record.details
    waited = _count(details.get("waited_minutes"))
    return _about(
        record,
        "approval-waiting",
        f"mission {mission_of(record)}: changes waiting for approval for {waited} min",
        "The approver has not answered: the mission's changes are still waiting (a request that expires is skipped).",
        execution_arn=_shaped(details.get("execution_arn"), EXECUTION_ARN),
        change_id=_shaped(details.get("change_id"), CHANGE_ID_PATTERN),
        waiting_since=_shaped(details.get("waiting_since"), ISO_TIME),
        waited_minutes=waited,
        threshold_minutes=_count(details.get("threshold_minutes")),
    )


# The counts a mission.completed record carries (aegis_agent.missions.mission_summary).
MISSION_COUNTS = ("findings", "changes", "exemptions", "plan_notes", "scan_errors", "withheld", "api_calls")


# What each plan status (aegis_agent.state.PlanStatus) means for the operator.
PLAN_MEANINGS = {
    "proposed": "Its changes were sent for approval; the report says what became of each.",
    "dry_run": "A dry run: the changes were planned, none was sent for approval.",
    "empty": "Nothing needed changing.",
    "capped": "A blast-radius cap stopped the plan: no change was sent for approval.",
}


def mission_completed(record: AuditRecord) -> Notification:
    found = {name: _count(record.details.get(name)) for name in MISSION_COUNTS}
    counts = {name: count for name, count in found.items() if count is not None}
    plan_status = _shaped(record.outcome, VOCABULARY_WORD)
    summary = (
        f"mission {mission_of(record)} completed: {counts.get('findings')} findings, {counts.get('changes')} changes"
    )
    meaning = PLAN_MEANINGS.get(str(plan_status), f"The plan was {plan_status}.")
    if counts.get("scan_errors"):
        summary += f", {counts['scan_errors']} scan errors"
        meaning += f" {counts['scan_errors']} checks could not run: their resources were not scanned."
    return _about(record, "mission-completed", summary, meaning, plan_status=plan_status, counts=counts)


def mission_failed(record: AuditRecord) -> Notification:
    error = _shaped(record.outcome, ERROR_NAME)
    return _about(
        record,
        "mission-failed",
        f"mission {mission_of(record)} failed: {error}",
        "The mission stopped with this error (its scan could not run, or its results could not be taken in).",
        error=error,
        error_type=_shaped(record.details.get("error_type"), TYPE_NAME),
        refused=_shaped(record.details.get("refused"), VOCABULARY_WORD),
    )


def scan_not_run(record: AuditRecord) -> Notification:
    outcome = _shaped(record.outcome, VOCABULARY_WORD)
    why = "the kill switch is engaged" if outcome == "halted" else str(outcome)
    return _about(
        record,
        "scan-not-run",
        f"scan not run: {why} (mission {mission_of(record)})",
        "No mission was created and nothing was scanned.",
        outcome=outcome,
        trigger=_shaped(record.details.get("trigger"), VOCABULARY_WORD),
    )


def plan_refused(record: AuditRecord) -> Notification:
    details = record.details
    problems = details.get("problems")
    # Each problem names its rule (aegis_validator.rules.Problem); its detail and index stay in the trail.
    rules = (
        _vocabulary([p.get("rule") if isinstance(p, Mapping) else p for p in problems])
        if isinstance(problems, list)
        else []
    )
    broken = f"{len(rules)} rules broken" if isinstance(rules, list) and rules else "malformed"
    return _about(
        record,
        "plan-refused",
        f"mission {mission_of(record)}: plan refused ({broken})",
        "The validator refused the plan before any change of it was sent for approval; nothing was changed.",
        outcome=_shaped(record.outcome, VOCABULARY_WORD),
        error=_shaped(details.get("error"), ERROR_NAME),
        execution_arn=_shaped(details.get("execution_arn"), EXECUTION_ARN),
        change_count=_count(details.get("change_count")),
        rules=rules or None,
    )


def change_result(record: AuditRecord) -> Notification | None:
    details = record.details
    outcome = _shaped(record.outcome, VOCABULARY_WORD)
    decision = _shaped(details.get("decision"), VOCABULARY_WORD)
    raw_reason = details.get("reason")
    error = _shaped(raw_reason, ERROR_NAME)
    if outcome == Outcome.DRIFT:
        kind, told = "drift-detected", "drift detected"
        meaning = "The resource had changed since it was approved: nothing was applied."
    elif (
        decision == Decision.APPROVED
        and outcome == Outcome.FAILED
        and error not in (None, WITHHELD)
        and str(error).startswith(UNANSWERED_ERROR_PREFIXES)
    ):
        kind, told = "change-outcome-unknown", f"outcome unknown ({error})"
        meaning = "The executor's answer never came back: the change may or may not have been applied."
    elif Outcome.FAILED in (outcome, decision):
        if raw_reason == REFUSED_PLAN:
            return None  # told once, by the validator's plan-refused notification
        kind, told = "change-failed", f"failed ({decision}/{outcome})"
        meaning = "The change was not applied."
    else:
        return None
    change_id = _shaped(details.get("change_id"), CHANGE_ID_PATTERN)
    return _about(
        record,
        kind,
        f"change {change_id} {told}",
        meaning,
        change_id=change_id,
        digest=_shaped(details.get("digest"), DIGEST),
        decision=decision,
        outcome=outcome,
        reason=error if error != WITHHELD else _words(raw_reason, MAX_REASON_CHARS),
        verified=_shaped(details.get("verified"), VOCABULARY_WORD),
    )


def kill_switch_operated(record: AuditRecord) -> Notification:
    operation = record.action.split(".")[1]
    details = record.details
    requested_by = _words(details.get("requested_by"), MAX_REQUESTER_CHARS)
    reason = _words(details.get("reason"), MAX_REASON_CHARS)
    done = "triggered" if operation == "trigger" else "re-armed"
    meaning = (
        "Everything is being halted: no change will be applied until an explicit re-arm."
        if operation == "trigger"
        else "Missions may run and changes be applied again."
    )
    return _about(
        record,
        f"killswitch-{done.replace('-', '')}",
        f"kill switch {done} by {requested_by}: {reason}",
        meaning,
        operation=operation,
        operation_id=_shaped(details.get("operation_id"), OPERATION_ID),
        requested_by=requested_by,
        reason=reason,
    )


def kill_switch_completed(record: AuditRecord) -> Notification | None:
    if record.outcome != "partial_failure":
        return None
    operation = record.action.split(".")[1]
    details = record.details
    failed_steps = _vocabulary(details.get("failed_steps"))
    halted = _flag(details.get("halted"))
    flag = "unknown" if not isinstance(halted, bool) else "engaged" if halted else "released"
    steps = ", ".join(failed_steps) if isinstance(failed_steps, list) else WITHHELD
    return _about(
        record,
        "killswitch-partly-failed",
        f"kill switch {operation} partly FAILED; halt flag {flag}",
        f"These steps failed: {steps}. The kill switch's answer and log say why.",
        operation=operation,
        operation_id=_shaped(details.get("operation_id"), OPERATION_ID),
        failed_steps=failed_steps,
        halted=halted,
    )


@dataclass(frozen=True)
class Rule:
    """How one audited event is told: who writes it (aegis.audit actors; a record of that action by anyone else is
    not told) and the builder (None from a builder: this record needs no notification)."""

    actor: str
    build: Callable[[AuditRecord], Notification | None]


NOTIFICATIONS: Mapping[str, Rule] = {
    "approval.waiting": Rule("approval", approval_waiting),
    "mission.completed": Rule("agent", mission_completed),
    "mission.failed": Rule("agent", mission_failed),
    "mission.refused": Rule("agent", scan_not_run),
    "validator.refused": Rule("validator", plan_refused),
    "change.result": Rule("agent", change_result),
    "killswitch.trigger.requested": Rule("killswitch", kill_switch_operated),
    "killswitch.rearm.requested": Rule("killswitch", kill_switch_operated),
    "killswitch.trigger.completed": Rule("killswitch", kill_switch_completed),
    "killswitch.rearm.completed": Rule("killswitch", kill_switch_completed),
}
NOTIFICATION_KINDS = (
    "approval-waiting",
    "mission-completed",
    "mission-failed",
    "scan-not-run",
    "plan-refused",
    "change-failed",
    "change-outcome-unknown",
    "drift-detected",
    "killswitch-triggered",
    "killswitch-rearmed",
    "killswitch-partly-failed",
)


def notification_for(record: AuditRecord) -> Notification | None:
    """The notification this record calls for, or None (not a notifiable event, or written by another actor than the
    one that writes it)."""
    rule = NOTIFICATIONS.get(record.action)
    if rule is None or record.actor != rule.actor:
        return None
    return rule.build(record)
