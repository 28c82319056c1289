"""The graph's state (what a mission checkpoint holds) and the mission documents it refers to.

The checkpoint holds the mission's control state only: the request, counts and summaries, digests, and a
`DocumentRef` for each collection that grows with the account or the plan. Those collections - the scan's findings,
the plan, the approval results, the re-scan's verdicts and the report - are documents in the Missions table (JSON
pages, written once by the node that produces them, refused if they carry a secret-shaped string, read back only if
their SHA-256 matches the reference). So a checkpoint item stays a few KB whatever the size of the account, far from
DynamoDB's 400 KB item limit. Never a token or a secret, in the state or in a document.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from aegis.catalogue import ForwardChange, ProposedChange
from aegis.cis import DEFAULT_CIS_VERSION, CisVersion
from aegis.models import ChangeResult, Finding, Frozen, ScanError

# The records a stored report carries live in the layer (aegis.reporting.agent_report): the ops API reads them too.
from aegis.reporting.agent_report import Exemption, PlanNote, PlanStatus, VerifiedState, WithheldNote


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    CUSTOM = "custom"
    UNDO = "undo"  # an `aegis.undo` event (the ops API's POST /changes/{change_id}/undo)
    ORGANIZATION = "organization"  # one account of an organization scan (the org-scan state machine's Map)


class Suppression(Frozen):
    """One entry of the SUPPRESSIONS setting: a check on a resource (or `*` for every resource) that must not be
    remediated, and why."""

    check_id: str = Field(min_length=1)
    resource_arn: str = Field(min_length=1)
    reason: str = Field(min_length=1)

    def matches(self, finding: Finding) -> bool:
        return self.check_id == finding.check_id and self.resource_arn in ("*", finding.resource_arn)


class PlanPolicy(Frozen):
    """The planning rules in force for one mission, frozen into its state when the mission starts."""

    max_changes_per_mission: int = Field(ge=0)
    max_share_per_resource_type: float = Field(ge=0.0, le=1.0)
    suppressions: tuple[Suppression, ...] = ()
    dry_run: bool = False
    # Whether an `aegis:exempt` tag alone exempts a finding. Off by default: anyone allowed to tag a resource could
    # switch its control off, so a tag counts only where the deployment says so (this, or SUPPRESSIONS).
    trust_exemption_tags: bool = False
    # Whether the deployment can undo an applied change (an undo Token Vault connection, hence an UndoRole); the
    # report says so, since approvers decide knowing whether a change can be taken back.
    undo_enabled: bool = False
    # The CIS AWS Foundations version the report groups findings by (CIS_VERSION).
    cis_version: CisVersion = DEFAULT_CIS_VERSION


class UndoTarget(Frozen):
    """What an `aegis.undo` request resolved to (aegis_agent.undo): the forward change the executor audited as
    applied, rebuilt from its mission's stored plan and checked against the audited digest, and who asked."""

    change_id: str
    requested_by: str
    original: ForwardChange
    original_mission_id: str
    # The `seq` of the newest `executor.applied` record of the original: an undo applied after it means "undone".
    applied_seq: str


class MissionRequest(Frozen):
    """What the triggering event asked for, after validation."""

    mission_id: str
    trigger: Trigger
    regions: tuple[str, ...]
    check_ids: tuple[str, ...] | None = None
    policy: PlanPolicy
    requested_at: str  # ISO 8601, when the mission was created
    # Set for an undo mission only: the applied change it asks to undo, rebuilt from the audit trail.
    undo: UndoTarget | None = None
    # The account the mission scans (None in a checkpoint older than organization scans: the agent's own).
    account_id: str | None = None
    # The organization scan this mission is one account of (None for any other mission).
    org_scan: str | None = None


class DocumentRef(Frozen):
    """A mission document in the Missions table: its name, how many pages it has and the SHA-256 of its JSON text.
    A reader gets exactly the document the state was built with, or a named error."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    pages: int = Field(ge=1)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class ScanRecord(Frozen):
    """The `scan` document: what the scan found, screened (secret-shaped resource data withheld)."""

    account_id: str
    findings: tuple[Finding, ...] = ()
    errors: tuple[ScanError, ...] = ()
    withheld: tuple[WithheldNote, ...] = ()


class ScanSummary(Frozen):
    """What the state keeps of the scan: counts (per severity, CIS control and check) and where the findings are."""

    account_id: str
    finding_count: int
    error_count: int
    withheld_count: int
    api_calls: int = 0
    resource_counts: dict[str, int] = Field(default_factory=dict)
    by_severity: dict[str, int] = Field(default_factory=dict)
    by_cis_v5: dict[str, int] = Field(default_factory=dict)
    by_check: dict[str, int] = Field(default_factory=dict)
    document: DocumentRef


class AnalysisSummary(Frozen):
    """What the state keeps of the analyst's work (the `analysis` document): counts, tokens and where it is."""

    calls: int
    findings: int
    input_tokens: int
    output_tokens: int
    document: DocumentRef


class Plan(Frozen):
    status: PlanStatus
    changes: tuple[ProposedChange, ...] = ()
    exemptions: tuple[Exemption, ...] = ()
    # `aegis:exempt` tags with a reason that the deployment did not confirm: their findings were planned anyway.
    claimed_exemptions: tuple[Exemption, ...] = ()
    notes: tuple[PlanNote, ...] = ()
    stop_reason: str | None = None
    # Findings that would have had a change if a cap had not stopped the plan.
    capped_finding_ids: tuple[str, ...] = ()
    # Resource types with several changes whose share cap could not be evaluated (inventory size unknown).
    share_unchecked_types: tuple[str, ...] = ()


class PlanSummary(Frozen):
    """What the state keeps of the plan (the `plan` document): its status, the ids of its changes, the digest a
    human approves (`plan_digest`, over each change's id and digest), counts, and where the changes are."""

    status: PlanStatus
    stop_reason: str | None = None
    change_ids: tuple[str, ...] = ()
    plan_digest: str
    exemption_count: int = 0
    note_count: int = 0
    document: DocumentRef


class Verification(Frozen):
    change_id: str
    check_id: str
    resource_arn: str
    state: VerifiedState
    detail: str = ""


class ApprovalResults(Frozen):
    """The `results` document: the state machine's opaque per-change results, in plan order. Never a token."""

    results: tuple[ChangeResult, ...]


class RescanRecord(Frozen):
    """The `rescan` document: the re-scan's verdict per change, and what it withheld."""

    verification: tuple[Verification, ...]
    withheld: tuple[WithheldNote, ...] = ()
