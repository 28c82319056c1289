"""The report document the agent stores for each mission (in the Missions table, as JSON pages): what was found
(by CIS control and severity), what was planned and why not, what each change was (before/after), what the human
decided, what the executor did, and what the re-scan saw afterwards.

The agent builds it (`aegis_agent.report.build_report`); the ops API and `aegis-local` read it back. The models live in
this credential-free layer so that readers need not import the agent. JSON-ready data only; the page people read is
rendered from it (`aegis.reporting.html`).

Resource names are identifiers: a change's before/after states keep them as they are (the report document is
checked as the model it is, `ReportChange.json_identifiers`). The texts derived from them for people to read
(binding message, before/after texts, a tag's claimed reason) withhold what looks like a secret and spell out
invisible characters, so that a name cannot reorder or hide the text around it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, JsonValue

from aegis.approvals.requests import ANALYST_PRIORITY_MAX, ANALYST_PRIORITY_MIN
from aegis.catalogue import KINDS
from aegis.cis import CisVersion
from aegis.models import Frozen, Outcome, Risk, ScanError, Severity
from aegis.secrets_guard import IdentifierShape, declared_identifiers

EXEMPTION_NOT_CONFIRMED = "exemption claimed by tag, not confirmed"


class WithheldNote(Frozen):
    """A secret-shaped value found in resource data and kept out of the state. Names where, never what."""

    check_id: str
    field: str
    kind: str
    finding_id: str | None = None


class Exemption(Frozen):
    finding_id: str
    check_id: str
    resource_arn: str
    source: Literal["tag", "suppression"]
    reason: str


class PlanNote(Frozen):
    """A finding that has a remediation but got no change, and why (a named reason, never free text)."""

    finding_id: str
    check_id: str
    resource_arn: str
    reason: str


class PlanStatus(StrEnum):
    PROPOSED = "proposed"  # changes await approval
    DRY_RUN = "dry_run"  # changes planned, nothing will be started
    EMPTY = "empty"  # nothing to change
    CAPPED = "capped"  # a blast-radius cap stopped the plan


class VerifiedState(StrEnum):
    FIXED = "fixed"  # the re-scan no longer finds the problem
    STILL_FAILING = "still_failing"  # the re-scan still finds it
    UNVERIFIED = "unverified"  # the re-scan could not run the check


class Disposition(StrEnum):
    PLANNED = "planned"  # a change was proposed for approval
    DRY_RUN = "dry-run"  # a change was planned, but the mission is a dry run
    CAPPED = "capped"  # a change would have been proposed; a blast-radius cap stopped the plan
    EXEMPT = "exempt"  # an `aegis:exempt` tag with a reason, in a deployment that trusts such tags
    SUPPRESSED = "suppressed"  # the SUPPRESSIONS setting names it
    NOTIFY_ONLY = "notify-only"  # no remediation exists (or none is configured)
    UNPLANNED = "unplanned"  # a remediation exists but no change was made; `reason` says why


class AnalystChoice(StrEnum):
    """What the analyst (a language model choosing among code-built fixes, `aegis_agent.analyst`) decided for a
    finding, or `deterministic` when its answer did not stand (a fallback reason says why)."""

    CANDIDATE = "candidate"  # one of the code-built candidates (`chosen_kind`)
    NOTIFY_ONLY = "notify_only"  # no change: reported only
    NEEDS_HUMAN = "needs_human"  # no change: a human should look first
    DETERMINISTIC = "deterministic"  # the safest (or pinned) candidate stands


class FindingAnalystNote(Frozen):
    """The analyst's word on one finding, beside what code alone would have chosen. `rationale` is model-written
    text for people: advisory, screened for secret-shaped values, never parsed, never in a binding message."""

    choice: AnalystChoice
    deterministic_kind: str | None = None  # the kind the plan takes without the analyst
    chosen_kind: str | None = None  # the kind the analyst chose (choice == candidate)
    priority: int | None = Field(default=None, ge=ANALYST_PRIORITY_MIN, le=ANALYST_PRIORITY_MAX)  # 1 = fix first
    rationale: str = ""
    fallback: str = ""  # a named reason (aegis_agent.analyst) when the deterministic choice stood instead

    def describe(self) -> str:
        """One line for the report: the analyst's choice beside the deterministic one."""
        beside = f"deterministic choice: {self.deterministic_kind or 'none'}"
        if self.choice == AnalystChoice.NOTIFY_ONLY:
            return f"analyst chose notify-only ({beside})"
        if self.choice == AnalystChoice.NEEDS_HUMAN:
            return f"analyst asked for a human ({beside})"
        if self.choice == AnalystChoice.CANDIDATE:
            if self.chosen_kind == self.deterministic_kind:
                return f"analyst agreed: {self.chosen_kind}"
            return f"analyst chose {self.chosen_kind} ({beside})"
        return f"{beside} ({self.fallback or 'analyst off'})"


class ReportAnalyst(Frozen):
    """The analyst's part in a mission: the model, its summary for operators, its calls and tokens, and how many
    findings fell back to the deterministic choice, by reason."""

    model_id: str
    summary: str = ""
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    fallbacks: dict[str, int] = Field(default_factory=dict)


class ReportFinding(Frozen):
    finding_id: str
    check_id: str
    title: str
    cis_v3: str
    cis_v5: str
    # Empty in reports written before the checks carried v6.0.0 and v7.0.0 ids.
    cis_v6: str = ""
    cis_v7: str = ""
    severity: Severity
    resource_arn: str
    resource_type: str
    region: str
    disposition: Disposition
    reason: str = ""
    change_id: str | None = None
    still_failing: bool | None = None  # from the re-scan; None when not re-scanned
    # The reason an `aegis:exempt` tag gave, when the deployment did not confirm it (the finding was treated as any
    # other); None when no such claim was made.
    exemption_claim: str | None = None
    # The analyst's choice for this finding; None when no analyst ran or the finding was not sent to it.
    analyst: FindingAnalystNote | None = None


class ReportChange(Frozen):
    change_id: str
    check_id: str
    kind: str
    title: str
    resource_arn: str
    region: str
    risk: Risk
    digest: str
    binding_message: str
    before: JsonValue
    after: JsonValue
    before_text: str
    after_text: str
    decision: str = "pending"  # a Decision, or "pending" while awaiting approval / "not-requested" in a dry run
    outcome: Outcome | None = None
    reason: str = ""
    verified_after: dict[str, JsonValue] | None = None  # the executor's after-state, if it reported one
    verified: VerifiedState | None = None  # the agent's own re-scan
    verified_detail: str = ""
    # The analyst's priority and rationale for the finding this change fixes (advisory text for the approver).
    analyst: FindingAnalystNote | None = None

    def json_identifiers(self) -> dict[str, IdentifierShape]:
        """The resource names inside `before`/`after`, as the change's kind declares them (for the secret guard)."""
        kind = KINDS.get(self.kind)
        if kind is None:
            return {}
        found: dict[str, IdentifierShape] = {}
        for side in ("before", "after"):
            if side in kind.model_fields:
                for path, shape in declared_identifiers(kind.model_fields[side].annotation).items():
                    found[f"{side}.{path}" if path else side] = shape
        return found


class ControlSummary(Frozen):
    """One CIS control: how many findings, by severity, and how many are still open after this mission. `cis` is
    its id in the version the report groups by (`MissionReport.cis_version`)."""

    cis_v5: str
    cis_v3: str
    cis: str = ""
    check_ids: tuple[str, ...]
    titles: tuple[str, ...]
    findings: int
    by_severity: dict[str, int]
    fixed: int


class Totals(Frozen):
    findings: int
    changes: int
    exempt: int
    suppressed: int
    notify_only: int
    unplanned: int
    scan_errors: int
    withheld: int
    applied: int
    verified_fixed: int


class ReportSummary(Frozen):
    """What the state keeps of the report (the report itself is stored in the Missions table, in pages)."""

    plan_status: PlanStatus
    totals: Totals
    pages: int
    digest: str


class MissionReport(Frozen):
    mission_id: str
    status: str
    account_id: str
    trigger: str
    regions: list[str]
    dry_run: bool
    # Whether an applied change can be undone through AegisCloud (UndoTokenVaultConnection configured).
    undo_enabled: bool = False
    started_at: str
    finished_at: str
    plan_status: PlanStatus
    plan_stop_reason: str | None = None
    totals: Totals
    by_severity: dict[str, int]
    controls: list[ControlSummary]
    # The benchmark version `controls` groups by; reports written before it was recorded grouped by v5.
    cis_version: CisVersion = "v5"
    findings: list[ReportFinding]
    changes: list[ReportChange]
    exemptions: list[Exemption] = Field(default_factory=list)
    # `aegis:exempt` tags the deployment did not confirm (neither SUPPRESSIONS nor TRUST_EXEMPTION_TAGS).
    claimed_exemptions: list[Exemption] = Field(default_factory=list)
    plan_notes: list[PlanNote] = Field(default_factory=list)
    scan_errors: list[ScanError] = Field(default_factory=list)
    withheld: list[WithheldNote] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    # The analyst's summary and figures; None when the deployment has no analyst (AnalystModelId empty).
    analyst: ReportAnalyst | None = None
