"""The rules a mission plan must meet before any change of it is shown to an approver. Pure: the audit lookups an
undo needs are passed in.

A plan is `{mission_id, changes: [ProposedChange JSON, ...]}` as the agent starts the execution with it. The
envelope (`parse_envelope`) must hold before anything else: without a mission id of the agent's form, an execution
named after it, and a change id on every change, there is no mission to answer (`Validation.PlanMalformed`). Then
every rule is checked and every problem is named (`plan_problems`); any problem refuses the whole plan
(`Validation.PlanRefused`):

- `too-many-changes`: more changes than MaxChangesPerMission (the share cap needs the scan's counts and stays the
  agent's);
- `duplicate-change`: the same change twice;
- `not-a-catalogue-change`: the change does not parse to the catalogue, or its change_id is not the one its
  content derives (`aegis.catalogue.parse_change`);
- `not-canonical`: the change is not exactly its canonical JSON, so the digest every later step recomputes from it
  (the approver's screen, the executor's check of the token) would not be the digest of what was submitted;
- `approval-text-too-long`: an approval property too long for the approver's screen (never cut);
- `account-out-of-scope`: the change is about another account than this deployment's own or its mission's (the
  `account_id` the agent wrote on the mission item, for a mission of an organization scan); the changes of one plan
  are about several accounts; or the resource ARN names another account than its change;
- `region-out-of-scope`: a change in another partition than ScanRegions', a regional change outside ScanRegions, or
  an account-wide change (IAM, account Block Public Access) in another region than IAM's home region of the
  partition, where its findings are; a bucket's change is in the bucket's own region, which is any region of the
  partition;
- `resource-arn-mismatch`: the resource ARN is not an ARN, or names another region than the change;
- `kind-not-for-check`: the change's kind is not one of the fixes its check declares (`CheckMetadata.kinds`), or it
  names no check of the catalogue;
- `destination-not-configured` / `destination-mismatch`: a trail or flow logs going elsewhere than TrailBucket,
  FlowLogsLogGroup and FlowLogsRoleArn, or a Config delivery channel created to another bucket than ConfigBucket, or
  any of these (Config recording included) where the deployment configured none;
- `undo-disabled`: an undo where the deployment configures no undo connection (no UndoRole exists);
- `undo-not-applied` / `undo-already-undone`: an undo must name a change the executor of this deployment audited
  as applied, with the same digest, in the change's account, and not undone since;
- `needs-second-approver`: the deployment's approval policy (routing, two-person risk) gives the change fewer
  eligible approvers than it needs; it is never downgraded to one (aegis.approvals.policy.ApprovalPolicy.can_plan).

The plan may also carry `analyst_notes` (`{change_id: {priority, rationale}}`, the analyst's advisory word per change,
shown to the approver beside the change and never bound by its digest). Model-written text is held to:

- `analyst-note-unknown-change`: a note for a change id the plan does not hold;
- `analyst-note-invalid`: `analyst_notes` is not an object of objects `{priority, rationale}`, the priority is not an
  integer from 1 to 4, or the rationale is not one non-empty line of text;
- `analyst-note-too-long`: a rationale over 200 characters (never cut);
- `analyst-note-secret-shaped`: a rationale holding a secret-shaped value (aegis.secrets_guard.secret_kind).

A plan that breaks none is then planned into approval requests (aegis.approvals.requests.plan_requests).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aegis.approvals.policy import NEEDS_SECOND_APPROVER
from aegis.approvals.requests import (
    ANALYST_PRIORITY_MAX,
    ANALYST_PRIORITY_MIN,
    ANALYST_RATIONALE_MAX,
    AnalystNote,
)
from aegis.catalogue import (
    FORWARD_KINDS,
    ChangeBase,
    InvalidChange,
    RegionScope,
    Undo,
    forward_target,
    parse_change,
)
from aegis.catalogue.base import ACCOUNT_ID_PATTERN, CHANGE_ID_PATTERN
from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs
from aegis.catalogue.kinds.enable_config_recorder import EnableConfigRecorder
from aegis.checks import CHECKS
from aegis.models import canonical_json
from aegis.partitions import PARTITION_PATTERN, partition_of
from aegis.secrets_guard import WITHHELD, secret_kind
from aegis_validator.errors import PlanMalformed
from aegis_validator.settings import ValidatorSettings

# The agent's mission ids (aegis_agent.events.MISSION_ID_PATTERN; the validator does not import the agent).
MISSION_ID_PATTERN = r"^m-[0-9a-f]{20}$"
EXECUTION_ARN_PATTERN = (
    rf"^arn:{PARTITION_PATTERN}:states:[a-z0-9-]+:[0-9]{{12}}:execution:[A-Za-z0-9_-]+:([A-Za-z0-9_-]{{1,80}})$"
)
# The agent's resume accepts at most this many results: a longer list cannot be a mission of the agent.
MAX_ENVELOPE_CHANGES = 1000
MAX_CHANGE_ID_LENGTH = 64

# Per forward kind, which regions its changes may be in: each kind declares it (`ChangeBase.REGION_SCOPE`).
REGION_SCOPE: dict[str, RegionScope] = {
    kind.model_fields["kind"].default: kind.REGION_SCOPE for kind in FORWARD_KINDS if kind.REGION_SCOPE is not None
}

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,200}$")


# The keys of an execution input: the agent adds `analyst_notes` only when its analyst ran.
PLAN_KEYS = frozenset({"mission_id", "changes"})
ANALYST_NOTES_KEY = "analyst_notes"


@dataclass(frozen=True)
class Envelope:
    execution_arn: str
    mission_id: str
    changes: tuple[Mapping[str, Any], ...]
    # As submitted (checked by `analyst_note_problems`); None when the plan carries none.
    analyst_notes: Any = None


@dataclass(frozen=True)
class Problem:
    """One broken rule: where (a change's position, or None for the plan), which rule, and a fixed-text detail."""

    rule: str
    index: int | None = None
    change_id: str | None = None
    detail: str = ""

    def as_record(self) -> dict[str, Any]:
        return {"rule": self.rule, "index": self.index, "change_id": self.change_id, "detail": self.detail}

    def __str__(self) -> str:
        where = "plan" if self.index is None else f"changes[{self.index}]"
        if self.change_id:
            where += f" ({self.change_id})"
        return f"{where}: {self.rule}" + (f" ({self.detail})" if self.detail else "")


AppliedRecords = Callable[[str], Sequence[Mapping[str, Any]]]


def execution_name(execution_arn: Any) -> str | None:
    """The name of a well-formed execution ARN, else None."""
    if not isinstance(execution_arn, str):
        return None
    match = re.fullmatch(EXECUTION_ARN_PATTERN, execution_arn)
    return match.group(1) if match else None


def parse_envelope(request: Any) -> Envelope:
    """`{execution_arn, plan: {mission_id, changes}}` as the state machine sends it; PlanMalformed otherwise."""
    if not isinstance(request, Mapping) or set(request) != {"execution_arn", "plan"}:
        raise PlanMalformed("the request is not {execution_arn, plan}")
    name = execution_name(request["execution_arn"])
    if name is None:
        raise PlanMalformed("execution_arn is not the ARN of a Step Functions execution")
    plan = request["plan"]
    if not isinstance(plan, Mapping) or set(plan) not in (PLAN_KEYS, PLAN_KEYS | {ANALYST_NOTES_KEY}):
        raise PlanMalformed("the execution input is not exactly {mission_id, changes} (with analyst_notes if any)")
    mission_id = plan["mission_id"]
    if not isinstance(mission_id, str) or not re.fullmatch(MISSION_ID_PATTERN, mission_id):
        raise PlanMalformed("mission_id is not a mission id of the agent")
    if name != mission_id:
        raise PlanMalformed("the execution is not named after its mission")
    changes = plan["changes"]
    if not isinstance(changes, list):
        raise PlanMalformed("changes is not a list")
    if len(changes) > MAX_ENVELOPE_CHANGES:
        raise PlanMalformed(f"more than {MAX_ENVELOPE_CHANGES} changes")
    for index, change in enumerate(changes):
        change_id = change.get("change_id") if isinstance(change, Mapping) else None
        if not isinstance(change_id, str) or not 0 < len(change_id) <= MAX_CHANGE_ID_LENGTH:
            raise PlanMalformed(f"changes[{index}] is not an object with a change_id")
    return Envelope(
        execution_arn=str(request["execution_arn"]),
        mission_id=mission_id,
        changes=tuple(changes),
        analyst_notes=plan.get(ANALYST_NOTES_KEY),
    )


def plan_problems(
    envelope: Envelope,
    settings: ValidatorSettings,
    applied_records: AppliedRecords,
    mission_account: str | None = None,
) -> list[Problem]:
    """Every rule the plan breaks; [] for a plan that may go to approval. `mission_account` is the `account_id` of
    the plan's mission item (None when the mission has no item, or no account on it): the one account besides the
    deployment's own that the plan's changes may be about."""
    problems: list[Problem] = []
    accounts = in_scope_accounts(settings, mission_account)
    if len(envelope.changes) > settings.max_changes_per_mission:
        problems.append(
            Problem(
                "too-many-changes",
                detail=f"{len(envelope.changes)} changes, at most {settings.max_changes_per_mission} per mission",
            )
        )
    if len(plan_accounts(envelope)) > 1:
        # One mission is one account's: its approvals, its executions and its report each speak of one account.
        problems.append(Problem("account-out-of-scope", detail="a plan spans several accounts"))
    seen: set[str] = set()
    for index, raw in enumerate(envelope.changes):
        change_id = str(raw["change_id"])
        shown_id = change_id if re.fullmatch(CHANGE_ID_PATTERN, change_id) else None
        if change_id in seen:
            problems.append(Problem("duplicate-change", index, shown_id))
        seen.add(change_id)
        problems += [
            Problem(rule, index, shown_id, detail)
            for rule, detail in change_problems(raw, settings, applied_records, accounts)
        ]
    return problems + analyst_note_problems(envelope)


def analyst_note_problems(envelope: Envelope) -> list[Problem]:
    """Every rule the plan's analyst notes break (none without notes). A note is model-written: its text is never
    echoed, and its key only when it has the form of a change id."""
    notes = envelope.analyst_notes
    if notes is None:
        return []
    if not isinstance(notes, Mapping):
        return [Problem("analyst-note-invalid", detail="analyst_notes is not an object")]
    planned = {str(raw["change_id"]) for raw in envelope.changes}
    problems: list[Problem] = []
    for change_id, note in notes.items():
        shown_id = change_id if isinstance(change_id, str) and re.fullmatch(CHANGE_ID_PATTERN, change_id) else None
        if change_id not in planned:
            problems.append(Problem("analyst-note-unknown-change", None, shown_id, "no change of the plan has this id"))
            continue
        problems += [Problem(rule, None, shown_id, detail) for rule, detail in _note_problems(note)]
    return problems


def _note_problems(note: Any) -> list[tuple[str, str]]:
    if not isinstance(note, Mapping) or set(note) != {"priority", "rationale"}:
        return [("analyst-note-invalid", "a note is exactly {priority, rationale}")]
    found: list[tuple[str, str]] = []
    priority, rationale = note["priority"], note["rationale"]
    if (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not ANALYST_PRIORITY_MIN <= priority <= ANALYST_PRIORITY_MAX
    ):
        found.append(
            (
                "analyst-note-invalid",
                f"the priority is an integer from {ANALYST_PRIORITY_MIN} to {ANALYST_PRIORITY_MAX}",
            )
        )
    if not isinstance(rationale, str) or not rationale.strip() or any(_is_control(ch) for ch in rationale):
        found.append(("analyst-note-invalid", "the rationale is one non-empty line of text"))
        return found
    if len(rationale) > ANALYST_RATIONALE_MAX:
        found.append(("analyst-note-too-long", f"a rationale has at most {ANALYST_RATIONALE_MAX} characters"))
    if secret_kind(rationale) is not None:
        found.append(("analyst-note-secret-shaped", "the rationale holds a secret-shaped value"))
    return found


def _is_control(character: str) -> bool:
    # Line breaks and other control characters: the phone shows one line, and a line break could fake another
    # property beneath the note.
    return unicodedata.category(character) == "Cc"


def analyst_notes(envelope: Envelope) -> dict[str, AnalystNote]:
    """The plan's analyst notes by change id, for a plan `analyst_note_problems` found nothing wrong with."""
    notes = envelope.analyst_notes
    if not isinstance(notes, Mapping):
        return {}
    return {str(change_id): AnalystNote.model_validate(note) for change_id, note in notes.items()}


def in_scope_accounts(settings: ValidatorSettings, mission_account: str | None) -> frozenset[str]:
    """The accounts a plan's changes may be about: the deployment's own, and its mission's when that is an account
    id (anything else on the item counts as no account: only the own account is then in scope)."""
    if mission_account is not None and re.fullmatch(ACCOUNT_ID_PATTERN, mission_account):
        return frozenset({settings.account_id, mission_account})
    return frozenset({settings.account_id})


def plan_accounts(envelope: Envelope) -> set[str]:
    """The accounts the plan's changes name (as submitted: a change that does not parse is refused on its own)."""
    return {str(raw["account_id"]) for raw in envelope.changes if isinstance(raw.get("account_id"), str)}


def change_problems(
    raw: Mapping[str, Any],
    settings: ValidatorSettings,
    applied_records: AppliedRecords,
    accounts: frozenset[str] | None = None,
) -> list[tuple[str, str]]:
    """(rule, detail) for every rule one change breaks; `accounts` are those in scope (by default the deployment's
    own only)."""
    try:
        change = parse_change(dict(raw))
    except InvalidChange as exc:
        return [("not-a-catalogue-change", f"at {safe_text(exc.where)}")]
    found: list[tuple[str, str]] = []
    if not _is_canonical(change, raw):
        found.append(("not-canonical", "the digest of the change would not be the digest of what was submitted"))
    overlong = change.overlong_properties()
    if overlong:
        found.append(("approval-text-too-long", ", ".join(overlong)))
    found += _scope_problems(change, settings, accounts or frozenset({settings.account_id}))
    if not settings.approval_policy.can_plan(change):
        found.append(
            (
                NEEDS_SECOND_APPROVER,
                f"needs {settings.approval_policy.approvers_needed(change)} distinct approvers, "
                f"{len(settings.approval_policy.eligible(change))} eligible",
            )
        )
    if isinstance(change, Undo):
        found += _undo_problems(change, settings, applied_records)
    else:
        found += _kind_problems(change)
        found += _destination_problems(change, settings)
    return found


def _kind_problems(change: ChangeBase) -> list[tuple[str, str]]:
    """The change's kind must be one of the fixes its check declares: a change labelled with another check would
    show the approver a check it does not fix."""
    check = CHECKS.get(change.check_id)
    if check is None:
        return [("kind-not-for-check", "the change names no check of the catalogue")]
    if change.kind not in check.METADATA.kinds:
        return [("kind-not-for-check", f"{change.kind} does not fix {change.check_id}")]
    return []


def safe_text(text: str) -> str:
    """`text` if it is a plain field path, else the withheld marker (a path may hold an attacker's key)."""
    return text if _SAFE_PATH.fullmatch(text) and secret_kind(text) is None else WITHHELD


def _is_canonical(change: ChangeBase, raw: Mapping[str, Any]) -> bool:
    try:
        return canonical_json(change.model_dump(mode="json")) == canonical_json(raw)
    except (TypeError, ValueError):
        return False


def _scope_problems(change: ChangeBase, settings: ValidatorSettings, accounts: frozenset[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if change.account_id not in accounts:
        found.append(("account-out-of-scope", "the change is about another account than the deployment's or mission's"))
    scope = REGION_SCOPE.get(forward_target(change).kind)
    if partition_of(change.region) != settings.partition:
        # The catalogue holds the change's ARNs to its region's partition; the deployment's is its ScanRegions'.
        found.append(("region-out-of-scope", f"not in the {settings.partition} partition of ScanRegions"))
    elif scope is None or (scope == "scanned" and change.region not in settings.scan_regions):
        found.append(("region-out-of-scope", "not one of ScanRegions"))
    elif scope == "home" and change.region != settings.home_region:
        found.append(("region-out-of-scope", f"an account-wide change is addressed in {settings.home_region}"))
    parts = change.resource_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[2] or not parts[5]:
        found.append(("resource-arn-mismatch", "the resource is not an ARN"))
        return found
    arn_region, arn_account = parts[3], parts[4]
    if arn_account and arn_account != change.account_id:
        # Held to the change's own account (itself held to those in scope above): the session the executor assumes
        # is in the change's account, and the approver was shown that account.
        found.append(("account-out-of-scope", "the resource ARN is in another account than the change"))
    if arn_region and arn_region != change.region:
        found.append(("resource-arn-mismatch", "the resource ARN is in another region than the change"))
    return found


def _destination_problems(change: ChangeBase, settings: ValidatorSettings) -> list[tuple[str, str]]:
    if isinstance(change, CreateMultiRegionTrail):
        if not settings.trail_bucket:
            return [("destination-not-configured", "TrailBucket is not set")]
        if change.new_trail.s3_bucket != settings.trail_bucket:
            return [("destination-mismatch", "the trail does not deliver to TrailBucket")]
    if isinstance(change, CreateVpcFlowLogs):
        if not (settings.flow_logs_log_group and settings.flow_logs_role_arn):
            return [("destination-not-configured", "FlowLogsLogGroup and FlowLogsRoleArn are not both set")]
        for destination in change.added:
            if destination.log_group_name != settings.flow_logs_log_group:
                return [("destination-mismatch", "the flow logs do not deliver to FlowLogsLogGroup")]
            if destination.deliver_logs_role_arn != settings.flow_logs_role_arn:
                return [("destination-mismatch", "the flow logs are not delivered by FlowLogsRoleArn")]
    if isinstance(change, EnableConfigRecorder):
        # Recording is turned on only where the deployment chose a bucket; an existing channel stays as it is.
        if not settings.config_bucket:
            return [("destination-not-configured", "ConfigBucket is not set")]
        if change.creates_channel and change.channel.s3_bucket != settings.config_bucket:
            return [("destination-mismatch", "the delivery channel does not deliver to ConfigBucket")]
    return []


def _undo_problems(change: Undo, settings: ValidatorSettings, applied_records: AppliedRecords) -> list[tuple[str, str]]:
    if not settings.undo_enabled:
        return [("undo-disabled", "undo is disabled in this deployment (no UndoTokenVaultConnection)")]
    original = change.original
    applied = [
        record
        for record in applied_records(original.change_id)
        if _applied_record(record, settings.account_id, change.account_id, original.change_id, original.digest)
    ]
    if not applied:
        return [("undo-not-applied", "no executor.applied record of this change and digest in its account")]
    # Every undo of one original has the same change id (its identity is the original's id and digest).
    undone = [
        record
        for record in applied_records(change.change_id)
        if _applied_record(record, settings.account_id, change.account_id, change.change_id, None)
    ]
    if undone and max(str(r["seq"]) for r in undone) > max(str(r["seq"]) for r in applied):
        return [("undo-already-undone", "the change was undone after it was last applied")]
    return []


def _applied_record(
    record: Mapping[str, Any], deployment_account: str, change_account: str, change_id: str, digest: str | None
) -> bool:
    """An audit item recording that this deployment's executor (an execution of its state machine, in
    `deployment_account`) applied `change_id` (with `digest`, if given) in `change_account`.

    The executor names the change's account on its records (`account_id`); a record written before it did is of a
    deployment that applied changes in its own account only, the execution's."""
    if (record.get("actor"), record.get("action"), record.get("outcome")) != (
        "executor",
        "executor.applied",
        "applied",
    ):
        return False
    try:
        details = json.loads(str(record.get("details", "")))
    except ValueError:
        return False
    if not isinstance(details, dict) or details.get("change_id") != change_id:
        return False
    if digest is not None and details.get("digest") != digest:
        return False
    execution_arn = details.get("execution_arn")
    if not isinstance(execution_arn, str) or execution_arn.split(":")[4:5] != [deployment_account]:
        return False
    return details.get("account_id", deployment_account) == change_account
