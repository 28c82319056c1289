"""The plan of approval requests for a mission: which changes are approved together, by whom, in what order.

Computed by the plan validator, deterministically from the mission id, the changes and the policy, and carried by
Step Functions as JSON (`ApprovalRequest`). A batch request carries the Merkle root of its changes' digests, which is
what its approver signs (the batch RAR), and for each change the public proof that binds the change to that root; the
executor verifies each change against the root in the approver's token, so one tap approves a reviewed set while each
execution stays bound to exactly one approved change.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from aegis.approvals.merkle import MerkleError, MerkleProof, canonical_leaves, inclusion_proof, merkle_root
from aegis.approvals.policy import NEEDS_SECOND_APPROVER, ApprovalPolicy, highest_risk
from aegis.catalogue import ChangeBase, parse_change
from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.models import Risk

# Auth0's Guardian shows at most this many properties of an authorization_details object.
APPROVAL_PROPERTIES_MAX: Final = 10
# What a batch request shows the approver, in order (aegis_auth.rar labels them).
BATCH_PROPERTY_NAMES: Final = ("mission", "count", "kinds", "risk", "account", "review_url", "merkle_root")
_REQUEST_ID_PATTERN: Final = r"^r[0-9]{3,}$"
_ROOT_PATTERN: Final = r"^[0-9a-f]{64}$"
# The longest request id a plan gives (`r9999`), to check that a batch's review URL fits before ids are assigned.
_LONGEST_REQUEST_ID: Final = "r9999"
# The analyst's note on a change (aegis_agent.analyst): a priority from 1 (fix first) to 4 and a one-line rationale.
ANALYST_PRIORITY_MIN: Final = 1
ANALYST_PRIORITY_MAX: Final = 4
ANALYST_RATIONALE_MAX: Final = 200


class NeedsSecondApprover(ValueError):
    """Changes the policy gives fewer eligible approvers than they need (the two-person rule): never downgraded."""

    rule: Final = NEEDS_SECOND_APPROVER

    def __init__(self, change_ids: Sequence[str]) -> None:
        self.change_ids = tuple(change_ids)
        super().__init__(f"{len(self.change_ids)} change(s) need a second approver: {', '.join(self.change_ids)}")


class AnalystNote(BaseModel):
    """The analyst's advisory word on one change, for the approver: model-written, screened by the validator (no
    secret-shaped text, at most ANALYST_RATIONALE_MAX characters). It is shown, never bound: no digest, root or
    binding message covers it, and the executor never sees it (the state machine passes it to the approval only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    priority: int = Field(ge=ANALYST_PRIORITY_MIN, le=ANALYST_PRIORITY_MAX, strict=True)
    rationale: str = Field(min_length=1, max_length=ANALYST_RATIONALE_MAX)

    def shown(self) -> str:
        """`P<priority>: <rationale>`, as the phone and the console show it."""
        return f"P{self.priority}: {self.rationale}"


class RequestItem(BaseModel):
    """One change of a request: its JSON exactly as planned, (in a batch) its proof of inclusion in the root, and
    the analyst's note on it when one ran (advisory: outside the change, so outside its digest and the root)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    change: dict[str, JsonValue]
    proof: dict[str, JsonValue] | None = None
    analyst: AnalystNote | None = None

    @field_validator("proof")
    @classmethod
    def _proof_is_well_formed(cls, proof: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if proof is not None:
            MerkleProof.from_json(proof)  # MerkleError is a ValueError: pydantic reports it as a validation error
        return proof

    def merkle_proof(self) -> MerkleProof | None:
        return None if self.proof is None else MerkleProof.from_json(self.proof)


class ApprovalRequest(BaseModel):
    """One approval request: a single change, or a batch of changes under one Merkle root, and who approves it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(pattern=_REQUEST_ID_PATTERN)
    kind: Literal["batch", "single"]
    approvers: tuple[str, ...] = Field(min_length=1, max_length=2)
    root: str | None = Field(default=None, pattern=_ROOT_PATTERN)
    review_url: str | None = None
    items: tuple[RequestItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape_of_its_kind(self) -> Self:
        if len(set(self.approvers)) != len(self.approvers) or not all(self.approvers):
            raise ValueError("approvers must be distinct, non-empty subs")
        proofs = [item.proof is not None for item in self.items]
        if self.kind == "single":
            if len(self.items) != 1 or self.root is not None or any(proofs):
                raise ValueError("a single request holds exactly one item, without root or proof")
        elif len(self.items) < 2 or self.root is None or not all(proofs) or len(self.approvers) != 1:
            # A two-person change is always a single request: a batch has one approver.
            raise ValueError("a batch request holds two or more items, a root, a proof per item and one approver")
        return self

    # --- reading the request ---------------------------------------------------------------------------------------
    def changes(self) -> list[ChangeBase]:
        """The items' changes, parsed as catalogue members (InvalidChange for anything else)."""
        return [parse_change(item.change) for item in self.items]

    def digests(self) -> list[str]:
        """The digests of the items' changes, computed from their content, in item order."""
        return [change.digest for change in self.changes()]

    def check_root(self) -> None:
        """For a batch, MerkleError unless the root recomputes from the items' changes, the items are in canonical
        leaf order and each item's proof is exactly its change's proof under that root. A single has no root."""
        if self.kind == "single":
            return
        digests = self.digests()
        if digests != canonical_leaves(digests):
            raise MerkleError("the batch's items are not in canonical leaf order")
        if merkle_root(digests) != self.root:
            raise MerkleError("the batch's root does not recompute from its items")
        for item, digest in zip(self.items, digests, strict=True):
            if item.merkle_proof() != inclusion_proof(digests, digest):
                raise MerkleError("an item's proof is not its change's proof in the batch")

    def highest_risk(self) -> Risk:
        return highest_risk(change.risk for change in self.changes())

    def kinds_summary(self) -> str:
        """`"revoke-security-group-rules: 9, enable-kms-key-rotation: 3"`: count per kind, most first, then by kind."""
        return _kinds_summary(self.changes())

    def account_id(self) -> str:
        """The one account every change of the request is in (a batch never spans accounts)."""
        accounts = {change.account_id for change in self.changes()}
        if len(accounts) != 1:
            raise ValueError("the request's changes are in more than one account")
        return accounts.pop()

    def batch_properties(self, mission_id: str) -> dict[str, str]:
        """What the approver's phone shows for a batch, in order of BATCH_PROPERTY_NAMES (review_url left out
        without a console). Values are whole: ValueError if any is over PROPERTY_VALUE_MAX characters."""
        if self.kind != "batch" or self.root is None:
            raise ValueError("only a batch request has batch properties")
        properties = _batch_properties(mission_id, self.changes(), self.review_url, self.root)
        overlong = [name for name, value in properties.items() if len(value) > PROPERTY_VALUE_MAX]
        if overlong:
            raise ValueError(f"batch properties {', '.join(overlong)} exceed {PROPERTY_VALUE_MAX} characters")
        return properties


def _kinds_summary(changes: Sequence[ChangeBase]) -> str:
    counts = Counter(change.kind for change in changes)
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items(), key=lambda kc: (-kc[1], kc[0])))


def _batch_properties(
    mission_id: str, changes: Sequence[ChangeBase], review_url: str | None, root: str
) -> dict[str, str]:
    accounts = sorted({change.account_id for change in changes})
    values = {
        "mission": mission_id,
        "count": str(len(changes)),
        "kinds": _kinds_summary(changes),
        "risk": highest_risk(change.risk for change in changes).value,
        "account": ", ".join(accounts),
        "review_url": review_url,
        "merkle_root": root,
    }
    return {name: value for name, value in values.items() if value is not None}


# --- planning --------------------------------------------------------------------------------------------------------
def plan_requests(mission_id: str, changes: Sequence[ChangeBase], policy: ApprovalPolicy) -> list[ApprovalRequest]:
    """The approval requests for `changes`, every change in exactly one request. NeedsSecondApprover if any change
    has fewer eligible approvers than it needs.

    - Batchable changes (`ApprovalPolicy.batchable`) are grouped by account and eligible approvers, ordered by kind
      and change id, and cut into as few chunks as fit (`_chunks`); a chunk of one is a single request.
    - Every other change is a single request; one that needs two approvers gets two distinct ones.
    - Requests are in the order of their first change in `changes`, with ids r001, r002...
    - Approvers are assigned round robin per eligible set, in request order."""
    ids = [change.change_id for change in changes]
    if len(set(ids)) != len(ids):
        raise ValueError("a change appears twice in the plan")
    refused = [change.change_id for change in changes if not policy.can_plan(change)]
    if refused:
        raise NeedsSecondApprover(refused)
    position = {change_id: index for index, change_id in enumerate(ids)}

    units: list[list[ChangeBase]] = []
    groups: dict[tuple[str, tuple[str, ...]], list[ChangeBase]] = {}
    for change in changes:
        if policy.batchable(change):
            groups.setdefault((change.account_id, policy.eligible(change)), []).append(change)
        else:
            units.append([change])
    for group in groups.values():
        units += _chunks(mission_id, sorted(group, key=lambda change: (change.kind, change.change_id)), policy)
    units.sort(key=lambda unit: min(position[change.change_id] for change in unit))

    # Round robin per eligible set, from a start that depends on the mission so that missions spread over approvers.
    start = int(hashlib.sha256(mission_id.encode()).hexdigest()[:8], 16)
    counters: dict[tuple[str, ...], int] = {}
    requests = []
    for index, unit in enumerate(units, start=1):
        eligible = policy.eligible(unit[0])
        needed = policy.approvers_needed(unit[0]) if len(unit) == 1 else 1
        counter = counters.setdefault(eligible, start % len(eligible))
        approvers = tuple(eligible[(counter + offset) % len(eligible)] for offset in range(needed))
        counters[eligible] = counter + needed
        request_id = f"r{index:03d}"
        requests.append(_request(request_id, unit, approvers, policy.review_url(mission_id, request_id)))
    return requests


def with_analyst_notes(requests: Sequence[ApprovalRequest], notes: Mapping[str, AnalystNote]) -> list[ApprovalRequest]:
    """`requests` with each item whose change has a note in `notes` (change id -> note) carrying it. Nothing else
    changes: the note is not part of the change, so digests, roots and proofs stay as planned."""
    if not notes:
        return list(requests)
    return [
        request.model_copy(
            update={
                "items": tuple(
                    item.model_copy(update={"analyst": notes.get(str(item.change.get("change_id")), item.analyst)})
                    for item in request.items
                )
            }
        )
        for request in requests
    ]


def _chunks(mission_id: str, ordered: list[ChangeBase], policy: ApprovalPolicy) -> list[list[ChangeBase]]:
    """`ordered` cut, in order, into as few chunks as hold at most `batch_max_changes` changes and whose batch
    properties fit on the approver's screen (nothing is ever cut short: a batch that would not fit is split)."""
    review_url = policy.review_url(mission_id, _LONGEST_REQUEST_ID)
    chunks: list[list[ChangeBase]] = []
    chunk: list[ChangeBase] = []
    for change in ordered:
        candidate = [*chunk, change]
        if chunk and (len(candidate) > policy.batch_max_changes or not _fits(mission_id, candidate, review_url)):
            chunks.append(chunk)
            chunk = [change]
        else:
            chunk = candidate
    if chunk:
        chunks.append(chunk)
    return chunks


def _fits(mission_id: str, changes: Sequence[ChangeBase], review_url: str | None) -> bool:
    # The root's length is fixed (64 hex): any root measures the same as the batch's own.
    properties = _batch_properties(mission_id, changes, review_url, "0" * 64)
    return len(properties) <= APPROVAL_PROPERTIES_MAX and all(
        len(value) <= PROPERTY_VALUE_MAX for value in properties.values()
    )


def _request(
    request_id: str, unit: list[ChangeBase], approvers: tuple[str, ...], review_url: str | None
) -> ApprovalRequest:
    if len(unit) == 1:
        # A chunk of one is a single request: the approver's phone then shows that exact change.
        item = RequestItem(change=_change_json(unit[0]))
        return ApprovalRequest(
            request_id=request_id, kind="single", approvers=approvers, review_url=review_url, items=(item,)
        )
    by_digest = {change.digest: change for change in unit}
    digests = canonical_leaves(by_digest)
    items = tuple(
        RequestItem(change=_change_json(by_digest[digest]), proof=inclusion_proof(digests, digest).as_json())
        for digest in digests
    )
    return ApprovalRequest(
        request_id=request_id,
        kind="batch",
        approvers=approvers,
        root=merkle_root(digests),
        review_url=review_url,
        items=items,
    )


def _change_json(change: ChangeBase) -> dict[str, Any]:
    return change.model_dump(mode="json")
