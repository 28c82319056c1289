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
from typing import Literal

from pydantic import Field

from aegis.catalogue import ProposedChange
from aegis.models import ChangeResult, Finding, Frozen, ScanError


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    CUSTOM = "custom"


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


class MissionRequest(Frozen):
    """What the triggering event asked for, after validation."""

    mission_id: str
    trigger: Trigger
    regions: tuple[str, ...]
    check_ids: tuple[str, ...] | None = None
    policy: PlanPolicy
    requested_at: str  # ISO 8601, when the mission was created


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


class VerifiedState(StrEnum):
    FIXED = "fixed"  # the re-scan no longer finds the problem
    STILL_FAILING = "still_failing"  # the re-scan still finds it
    UNVERIFIED = "unverified"  # the re-scan could not run the check


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
