"""Planning: from findings to catalogue changes, under exemptions, suppressions and blast-radius caps.

Pure: no AWS call, no clock. The proposer (each check's `propose`) builds the change; this module only decides
which findings get one and whether the plan as a whole may go to approval. Tags and names are data: nothing in a
finding can add, widen or re-target a change, because every change is re-validated as an exact catalogue member
of the finding's own check and resource. Nor can a tag take a change away on its own: an `aegis:exempt` tag
exempts a finding only when the deployment confirms it (SUPPRESSIONS names the finding, or TRUST_EXEMPTION_TAGS is
on); otherwise the finding is planned and the claim is reported as not confirmed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from aegis.approvals.policy import NEEDS_SECOND_APPROVER, ApprovalPolicy
from aegis.catalogue import ApprovalTextTooLong, ChangeBase, InvalidChange, parse_change
from aegis.catalogue.forward import FORWARD_KINDS
from aegis.models import Finding
from aegis.reporting.agent_report import AnalystChoice
from aegis_agent.analyst import AnalysisRecord
from aegis_agent.state import Exemption, Plan, PlanNote, PlanPolicy, PlanStatus

EXEMPT_TAG = "aegis:exempt"
# The scanner's marker for a value it kept out of the state because it looked like a secret.
WITHHELD = "<withheld>"

Proposer = Callable[[Finding], ChangeBase | None]


class PlanNoteReason:
    """Named reasons a finding with a remediation got no change (the report shows them)."""

    EXEMPT_TAG_WITHOUT_REASON = "exempt-tag-without-reason"
    NO_PROPOSAL = "no-proposal"
    PROPOSAL_FAILED = "proposal-failed"
    NOT_A_CATALOGUE_MEMBER = "not-a-catalogue-member"
    DUPLICATE_CHANGE = "duplicate-change"
    # An approval text (say, a resource ARN) too long for the approver's screen, in a change that cannot be split.
    APPROVAL_TEXT_TOO_LONG = "approval-text-too-long"
    # The change needs two distinct approvers (APPROVAL_TWO_PERSON_RISK) and the approval policy gives it fewer: it is
    # left out, never planned with one approval (the validator would refuse the whole plan by the same name).
    NEEDS_SECOND_APPROVER = NEEDS_SECOND_APPROVER
    # The organization scan's other accounts had already reserved what MAX_CHANGES_PER_ORG_SCAN allows (aegis_agent
    # .orgcap): the finding would have had a change in a scan of this account alone.
    ORG_CAP_REACHED = "org-cap-reached"
    # The analyst chose no change for the finding (the report shows its choice beside the deterministic one).
    ANALYST_NOTIFY_ONLY = "analyst-notify-only"
    ANALYST_NEEDS_HUMAN = "analyst-needs-human"


_ANALYST_SKIPS = {
    AnalystChoice.NOTIFY_ONLY: PlanNoteReason.ANALYST_NOTIFY_ONLY,
    AnalystChoice.NEEDS_HUMAN: PlanNoteReason.ANALYST_NEEDS_HUMAN,
}


def make_plan(
    findings: Sequence[Finding],
    policy: PlanPolicy,
    propose: Proposer,
    resource_counts: Mapping[str, int] | None = None,
    approval: ApprovalPolicy | None = None,
    *,
    analyst: AnalysisRecord | None = None,
) -> Plan:
    """The plan for `findings`. With the deployment's `approval` policy, a finding whose change no two distinct
    approvers could approve (when it needs two) gets a `needs-second-approver` note instead of a change. With the
    `analyst`'s decisions, a finding it chose not to change gets a note naming that, and a finding it chose another
    code-built candidate for may take that candidate's kind (`propose` must be `analysed_proposer`)."""
    decided = {f.finding_id: f.note for f in analyst.findings} if analyst is not None else {}
    exemptions: list[Exemption] = []
    claims: list[Exemption] = []
    notes: list[PlanNote] = []
    planned: list[tuple[Finding, ChangeBase]] = []
    seen_changes: set[str] = set()

    for finding in sorted(findings, key=lambda f: (f.check_id, f.resource_arn)):
        exemption, claim, note = _exemption(finding, policy)
        if note:
            notes.append(note)
        if exemption:
            exemptions.append(exemption)
            continue
        if claim:
            claims.append(claim)
        if finding.remediation is None:
            continue  # notify-only: reported, never changed
        note_of_analyst = decided.get(finding.finding_id)
        if note_of_analyst is not None and note_of_analyst.choice in _ANALYST_SKIPS:
            notes.append(_note(finding, _ANALYST_SKIPS[note_of_analyst.choice]))
            continue
        chosen_kind = note_of_analyst.chosen_kind if note_of_analyst is not None else None
        parts, failure = _proposal(finding, propose, chosen_kind)
        if not parts:
            notes.append(_note(finding, failure or PlanNoteReason.NO_PROPOSAL))
            continue
        if any(part.change_id in seen_changes for part in parts):
            notes.append(_note(finding, PlanNoteReason.DUPLICATE_CHANGE))
            continue
        if approval is not None and not all(approval.can_plan(part) for part in parts):
            notes.append(_note(finding, PlanNoteReason.NEEDS_SECOND_APPROVER))
            continue
        for part in parts:
            seen_changes.add(part.change_id)
            planned.append((finding, part))

    changes = tuple(change for _, change in planned)
    stop_reason, unchecked = _cap_violation(planned, policy, resource_counts or {})
    if stop_reason:
        return Plan(
            status=PlanStatus.CAPPED,
            exemptions=tuple(exemptions),
            claimed_exemptions=tuple(claims),
            notes=tuple(notes),
            stop_reason=stop_reason,
            # A finding split into several changes is one capped finding.
            capped_finding_ids=tuple(dict.fromkeys(finding.finding_id for finding, _ in planned)),
            share_unchecked_types=unchecked,
        )
    if not changes:
        status = PlanStatus.EMPTY
    elif policy.dry_run:
        status = PlanStatus.DRY_RUN
    else:
        status = PlanStatus.PROPOSED
    return Plan(
        status=status,
        changes=changes,
        exemptions=tuple(exemptions),
        claimed_exemptions=tuple(claims),
        notes=tuple(notes),
        share_unchecked_types=unchecked,
    )


def is_exempt(finding: Finding, policy: PlanPolicy) -> bool:
    """Whether an exemption in force (a suppression, or a tag the deployment trusts) keeps the finding unplanned."""
    return _exemption(finding, policy)[0] is not None


def analysed_proposer(scanner: Any, analysis: AnalysisRecord) -> Proposer:
    """The proposer of a plan the analyst decided: a finding whose candidate it chose gets that candidate, rebuilt by
    code now and matched by digest (the model's answer names an index, never a change); every other finding gets
    the deterministic proposal."""
    chosen = {
        f.finding_id: f.chosen_digest
        for f in analysis.findings
        if f.note.choice == AnalystChoice.CANDIDATE and f.chosen_digest is not None
    }

    def propose(finding: Finding) -> ChangeBase | None:
        digest = chosen.get(finding.finding_id)
        build = getattr(scanner, "candidates", None)
        if digest is not None and build is not None:
            for candidate in build(finding):
                if candidate.digest == digest:
                    return candidate
        change: ChangeBase | None = scanner.propose(finding)
        return change

    return propose


def _exemption(finding: Finding, policy: PlanPolicy) -> tuple[Exemption | None, Exemption | None, PlanNote | None]:
    """(the exemption in force, a tag's claim the deployment did not confirm, a note) for one finding."""
    claim = note = None
    if EXEMPT_TAG in finding.tags:
        reason = finding.tags[EXEMPT_TAG].strip()
        if reason and reason != WITHHELD:
            claim = _exempt(finding, "tag", reason)
        else:
            # An exemption must say why; a bare or unreadable tag does not silence a control.
            note = _note(finding, PlanNoteReason.EXEMPT_TAG_WITHOUT_REASON)
    for suppression in policy.suppressions:
        if suppression.matches(finding):
            return _exempt(finding, "suppression", suppression.reason), None, note
    if claim is not None and policy.trust_exemption_tags:
        return claim, None, None
    return None, claim, note


def _exempt(finding: Finding, source: Literal["tag", "suppression"], reason: str) -> Exemption:
    return Exemption(
        finding_id=finding.finding_id,
        check_id=finding.check_id,
        resource_arn=finding.resource_arn,
        source=source,
        reason=reason,
    )


def _note(finding: Finding, reason: str) -> PlanNote:
    return PlanNote(
        finding_id=finding.finding_id, check_id=finding.check_id, resource_arn=finding.resource_arn, reason=reason
    )


def _proposal(
    finding: Finding, propose: Proposer, chosen_kind: str | None = None
) -> tuple[tuple[ChangeBase, ...], str | None]:
    """The change(s) for a finding: one change, or several when its approval texts are too long to show at once
    and its kind can be split (never cut: an approver must see every rule they approve)."""
    try:
        change = propose(finding)
    except Exception as exc:
        # The error's class names what went wrong; its text (possibly resource data) is not kept.
        return (), f"{PlanNoteReason.PROPOSAL_FAILED}:{type(exc).__name__}"
    if change is None:
        return (), None
    if not _is_exact_member(change, finding, chosen_kind):
        return (), PlanNoteReason.NOT_A_CATALOGUE_MEMBER
    try:
        return change.split_for_approval(), None
    except ApprovalTextTooLong:
        return (), PlanNoteReason.APPROVAL_TEXT_TOO_LONG


def _is_exact_member(change: object, finding: Finding, chosen_kind: str | None = None) -> bool:
    """A forward catalogue kind, for this finding's check, resource and remediation (or the candidate kind the
    analyst chose), that survives re-validation from its JSON unchanged (so no subclass, extra field or forged id
    can slip through)."""
    if type(change) not in FORWARD_KINDS or not isinstance(change, ChangeBase):
        return False
    try:
        reparsed = parse_change(change.model_dump(mode="json"))
    except InvalidChange:
        return False
    return (
        reparsed == change
        and change.kind in {finding.remediation, chosen_kind}
        and change.check_id == finding.check_id
        and targets(change.resource_arn, finding.resource_arn)
        and change.account_id == finding.account_id
    )


def targets(change_arn: str, finding_arn: str) -> bool:
    """The change acts on the finding's resource. A finding about a collection ("...:trail/*": no multi-region
    trail exists) may be fixed by creating one member of it, whose ARN the wildcard must match."""
    if change_arn == finding_arn:
        return True
    if finding_arn.endswith("/*"):
        member = change_arn.removeprefix(finding_arn[:-1])
        return member != change_arn and bool(member) and "*" not in member and "/" not in member
    return False


def _cap_violation(
    planned: Sequence[tuple[Finding, ChangeBase]], policy: PlanPolicy, resource_counts: Mapping[str, int]
) -> tuple[str | None, tuple[str, ...]]:
    """The first cap the plan breaks (or None), and the resource types whose share could not be evaluated."""
    if len(planned) > policy.max_changes_per_mission:
        return (
            f"MAX_CHANGES_PER_MISSION: {len(planned)} changes proposed, "
            f"at most {policy.max_changes_per_mission} allowed per mission"
        ), ()
    touched: dict[str, set[str]] = defaultdict(set)
    for finding, change in planned:
        touched[finding.resource_type].add(change.resource_arn)
    unchecked: list[str] = []
    for resource_type, arns in sorted(touched.items()):
        # One change of a type is never a blast radius (account-wide settings have exactly one resource).
        if len(arns) <= 1:
            continue
        total = resource_counts.get(resource_type)
        if not total:
            # The scanner did not say how many there are; the report says the share was not evaluated, and every
            # change still needs a human's approval.
            unchecked.append(resource_type)
            continue
        share = len(arns) / max(total, len(arns))
        if share > policy.max_share_per_resource_type:
            return (
                f"MAX_SHARE_PER_RESOURCE_TYPE: {len(arns)} of {total} {resource_type} resources "
                f"({share:.0%}) would change, at most {policy.max_share_per_resource_type:.0%} allowed"
            ), tuple(unchecked)
    return None, tuple(unchecked)


def change_groups(changes: Sequence[ChangeBase]) -> list[int]:
    """How many changes each finding has, in plan order: a finding split for the approver's screen gives several
    consecutive changes of the same check and resource, which are granted or refused together."""
    sizes: list[int] = []
    previous: tuple[str, str] | None = None
    for change in changes:
        key = (change.check_id, change.resource_arn)
        if key == previous:
            sizes[-1] += 1
        else:
            sizes.append(1)
        previous = key
    return sizes


def cap_to_grant(plan: Plan, findings: Sequence[Finding], granted: int, stop_reason: str) -> Plan:
    """`plan` keeping its first `granted` changes; every finding whose change is left out gets an `org-cap-reached`
    note (reported as not planned). With nothing granted the plan is capped (`stop_reason`): no approval is asked."""
    if granted >= len(plan.changes):
        return plan
    kept, dropped = plan.changes[:granted], plan.changes[granted:]
    notes = list(plan.notes)
    noted: set[str] = set()
    for change in dropped:
        for finding in findings:
            if (
                finding.check_id == change.check_id
                and targets(change.resource_arn, finding.resource_arn)
                and finding.finding_id not in noted
            ):
                noted.add(finding.finding_id)
                notes.append(_note(finding, PlanNoteReason.ORG_CAP_REACHED))
                break
    return plan.model_copy(
        update={
            "status": plan.status if kept else PlanStatus.CAPPED,
            "changes": tuple(kept),
            "notes": tuple(notes),
            "stop_reason": plan.stop_reason if kept else stop_reason,
        }
    )
