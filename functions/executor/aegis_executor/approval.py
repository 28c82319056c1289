"""Approve X, execute X: open every sealed approval of one change once, and prove together they release exactly it.

A change reaches the executor with the approvals of the request it was approved in (one approver, or two under the
two-person rule), each naming, per change id, the handoff the approval function sealed for that change. For this
change the executor:

1. consumes **every** handoff the approvals name for it, each exactly once (conditional delete, then KMS decrypt
   under the encryption context `{execution_arn, change_digest}` of this change), before deciding anything: whatever
   the verdict, none is left behind and none is opened twice;
2. verifies each access token (RS256, key by kid, issuer, audience, expiry) and that it was issued to the approval
   application (`azp` or `client_id`), so that only a token CIBA gave that client is accepted;
3. reads what the token's own, signed `authorization_details` claim grants:
   - one aegis-change object → its digest must be this change's;
   - one aegis-batch object → the request must carry a Merkle proof, and the proof must lead from this change's digest
     to the `merkle_root` the approver signed, in a tree of exactly the signed `count` of changes (RFC 9162 §2.1.3.2);
     a change outside the batch, another change's proof, a reordered path or a change edited after approval fails;
4. requires the approver named by the state machine, the handoff and the token to be one, every approver to be a
   different `sub`, the approvals of one change to be of one request (one kind, one root), and — when the change's
   risk is at or above the deployment's two-person threshold — at least two approvals.

A handoff carrying a refresh token is refused: none may cross the hand-off, and this client could not revoke one issued
to the approval application. Any failure is `Executor.ApprovalInvalid`; a handoff whose token had expired (and nothing
worse) is `Executor.ApprovalExpired`. Either way nothing is applied and every handoff named for the change is gone.

The token responses are cleared as soon as they are verified; only the access token Token Vault will exchange is kept
(in a SecretStr), and never logged, audited or returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from aegis.approvals.merkle import MerkleError, MerkleProof, require_inclusion
from aegis.approvals.policy import risk_at_least
from aegis.catalogue import ChangeBase
from aegis.models import Risk
from aegis_auth.errors import HandoffAlreadyConsumed, HandoffError, HandoffExpired
from aegis_auth.handoff import HandoffStore, OpenedHandoff
from aegis_auth.rar import granted_batch, granted_kind, require_granted_digest
from aegis_executor.errors import ApprovalExpired, ApprovalInvalid
from aegis_jwt.errors import TokenInvalid
from aegis_jwt.verify import TokenVerifier, require_authorized_party

# A batch holds at most 100 changes (APPROVAL_BATCH_MAX_CHANGES is 2..100): one approval names at most that many.
MAX_HANDOFFS_PER_APPROVAL = 100
# One approver, or two under the two-person rule.
MAX_APPROVALS = 2

ChangeId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
HandoffId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


# --- what the state machine hands over --------------------------------------------------------------------------------
class ApproverApproval(BaseModel):
    """One approver's answer, as the approval function sends it to Step Functions: references, never a token.

    Strict (no coercion, no unknown field): this is the evidence the executor acts on, and a field it does not know
    would be one it silently ignores."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    decision: Literal["approved"]
    approver_sub: str = Field(min_length=1, max_length=256)
    approved_at: str = Field(min_length=1, max_length=64)
    handoffs: dict[ChangeId, HandoffId] = Field(min_length=1, max_length=MAX_HANDOFFS_PER_APPROVAL)


class ApprovalOutcome(BaseModel):
    """The request's approval: `{decision, approvals: [...]}` (one entry per approver, in the request's order)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    decision: Literal["approved"]
    approvals: tuple[ApproverApproval, ...] = Field(min_length=1, max_length=MAX_APPROVALS)


# --- what comes out ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApproverRecord:
    """Who approved this change, through which handoff and when: what the audit trail keeps (never a token)."""

    approver_sub: str
    handoff_id: str
    approved_at: str

    def as_json(self) -> dict[str, str]:
        return {"approver_sub": self.approver_sub, "handoff_id": self.handoff_id, "approved_at": self.approved_at}


@dataclass(frozen=True)
class VerifiedApproval:
    """Every approval of the change, opened and verified. The token is a secret: excluded from repr, never logged or
    stored.

    `access_token` is the **first** approver's (the request's order): Token Vault exchanges it for the provider token
    the remediation session is assumed with, so the AWS session is that approver's. A second approver's token proves
    their consent and is needed for nothing else, so it is not kept."""

    approvers: tuple[ApproverRecord, ...]
    # The Merkle root the approvers signed when the change was approved in a batch; None for a single change.
    batch_root: str | None
    # The expiry of `access_token`.
    token_expires_at: int
    access_token: SecretStr = field(repr=False)


@dataclass(frozen=True)
class _Checked:
    """One token that passed its own checks."""

    sub: str
    handoff_id: str
    expires_at: int
    kind: str
    root: str | None
    access_token: str = field(repr=False)


def approvers_needed(change: ChangeBase, two_person_risk: Risk | None) -> int:
    """2 when the deployment sets a two-person threshold and the change's risk is at or above it, else 1."""
    # The planner's own rule (ApprovalPolicy.approvers_needed), from the executor's one setting.
    return 2 if two_person_risk is not None and risk_at_least(change.risk, two_person_risk) else 1


def open_approval(
    handoffs: HandoffStore,
    verifier: TokenVerifier,
    *,
    audience: str,
    approval_client_id: str,
    execution_arn: str,
    change: ChangeBase,
    proof: Mapping[str, Any] | None,
    approvals: Sequence[ApproverApproval],
    required_approvers: int,
) -> VerifiedApproval:
    """Consume and verify every approval of `change`. Raises ApprovalInvalid, or ApprovalExpired when the only
    problem is an expired approval; nothing is applied either way, and every handoff named for `change` is gone."""
    named = [approval.handoffs.get(change.change_id) for approval in approvals]
    problems = _request_problems(change, approvals, named, required_approvers)

    opened, refused, expired = _consume_all(
        handoffs, [h for h in dict.fromkeys(named) if h], execution_arn=execution_arn, change_digest=change.digest
    )
    problems += refused
    checked: list[_Checked | None] = []
    try:
        for approval, handoff_id in zip(approvals, named, strict=True):
            handoff = opened.pop(handoff_id, None) if handoff_id else None
            if handoff is None:
                checked.append(None)
                continue
            try:
                checked.append(
                    _check_token(
                        handoff,
                        approval,
                        verifier,
                        audience=audience,
                        client_id=approval_client_id,
                        change=change,
                        proof=proof,
                        problems=problems,
                    )
                )
            finally:
                handoff.token_response.clear()
                del handoff
    finally:
        # Should verification itself fail (the provider's keys unreachable), no opened token response stays behind.
        for left in opened.values():
            left.token_response.clear()
        opened.clear()
    if not problems and not expired:
        problems += _consistency_problems([c for c in checked if c is not None], proof)
    if problems:
        raise ApprovalInvalid("; ".join(problems))
    if expired:
        raise ApprovalExpired(
            f"the approval expired before this change ran ({', '.join(expired)}); it is never applied on a stale "
            "approval"
        )
    verified = [c for c in checked if c is not None]
    if not verified or len(verified) != len(approvals):  # unreachable without a problem named above: fail closed
        raise ApprovalInvalid("not every approval of this change could be verified")
    first = verified[0]
    return VerifiedApproval(
        approvers=tuple(
            ApproverRecord(c.sub, c.handoff_id, approval.approved_at)
            for c, approval in zip(verified, approvals, strict=True)
        ),
        batch_root=first.root,
        token_expires_at=first.expires_at,
        access_token=SecretStr(first.access_token),
    )


def _request_problems(
    change: ChangeBase,
    approvals: Sequence[ApproverApproval],
    named: Sequence[str | None],
    required_approvers: int,
) -> list[str]:
    """What is wrong with the approvals as the request states them, known before any handoff is opened."""
    problems = []
    missing = [approval.approver_sub for approval, handoff_id in zip(approvals, named, strict=True) if not handoff_id]
    if missing:
        problems.append(f"{len(missing)} approval(s) name no handoff for change {change.change_id}")
    present = [h for h in named if h]
    if len(set(present)) != len(present):
        problems.append("two approvals name one handoff: an approval counts once")
    subs = [approval.approver_sub for approval in approvals]
    if len(set(subs)) != len(subs):
        problems.append("the same approver is named twice: two approvals need two distinct approvers")
    if len(approvals) < required_approvers:
        problems.append(
            f"this {change.risk.value}-risk change needs two distinct approvers; {len(approvals)} approval(s) given"
        )
    return problems


def _consume_all(
    handoffs: HandoffStore, handoff_ids: Sequence[str], *, execution_arn: str, change_digest: str
) -> tuple[dict[str, OpenedHandoff], list[str], list[str]]:
    """Consume every handoff, each once, whatever happens to the others: (opened by id, refusals, expiries)."""
    opened: dict[str, OpenedHandoff] = {}
    refused: list[str] = []
    expired: list[str] = []
    # Whether a handoff has been deleted by this invocation: from then on it can no longer be retried as if unrun.
    deleted = False
    for handoff_id in handoff_ids:
        try:
            opened[handoff_id] = handoffs.consume(handoff_id, execution_arn=execution_arn, change_digest=change_digest)
            deleted = True
        except HandoffAlreadyConsumed as exc:  # nothing deleted: it was gone already
            refused.append(f"handoff refused ({type(exc).__name__}): {exc}")
        except HandoffExpired:  # deleted, then found expired
            deleted = True
            expired.append(f"handoff {handoff_id}")
        except HandoffError as exc:  # deleted, then refused
            deleted = True
            refused.append(f"handoff refused ({type(exc).__name__}): {exc}")
        except Exception as exc:  # DynamoDB or KMS unavailable, or throttling
            if not deleted:
                # Nothing consumed yet: the invocation may be retried as if it never ran (throttling is
                # Executor.Throttled).
                raise
            # Past the point of no return: the rest is consumed all the same, and the approval is refused.
            refused.append(f"handoff {handoff_id} could not be consumed ({type(exc).__name__})")
    return opened, refused, expired


def _check_token(
    handoff: OpenedHandoff,
    approval: ApproverApproval,
    verifier: TokenVerifier,
    *,
    audience: str,
    client_id: str,
    change: ChangeBase,
    proof: Mapping[str, Any] | None,
    problems: list[str],
) -> _Checked | None:
    """One opened handoff's token, checked on its own; a failure is appended to `problems` (None returned)."""
    who = approval.approver_sub
    token_response: dict[str, Any] = handoff.token_response
    if handoff.change_id != change.change_id:
        problems.append("the handoff was sealed for another change id")
        return None
    if "refresh_token" in token_response:
        problems.append(
            "the handoff carries a refresh token: the approval function never seals one, and the executor could not"
            " revoke a refresh token issued to another client"
        )
        return None
    access_token = token_response.get("access_token")
    if not isinstance(access_token, str):
        problems.append("the sealed token response holds no access token")
        return None
    try:
        claims = verifier.verify(access_token, audience)
        require_authorized_party(claims, client_id)
        kind = granted_kind(claims)
        root = None
        if kind == "single":
            require_granted_digest(claims, change.digest)
        else:
            root = _require_batch_inclusion(claims, change, proof)
    except TokenInvalid as exc:  # ApprovalMismatch is a TokenInvalid
        problems.append(f"the approval token of {who} does not release this change ({type(exc).__name__}): {exc}")
        return None
    except MerkleError as exc:
        problems.append(f"the change is not proven part of the batch {who} approved (MerkleError): {exc}")
        return None
    if not (claims["sub"] == handoff.approver_sub == approval.approver_sub):
        problems.append("the approver of the token, the handoff and the request differ")
        return None
    return _Checked(
        sub=claims["sub"],
        handoff_id=handoff.handoff_id,
        expires_at=int(claims["exp"]),
        kind=kind,
        root=root,
        access_token=access_token,
    )


def _require_batch_inclusion(claims: Mapping[str, Any], change: ChangeBase, proof: Mapping[str, Any] | None) -> str:
    """The signed batch's root, once `proof` shows this change is one of its `count` leaves (MerkleError if not)."""
    # Exactly one aegis-batch object, with a well-formed root and count (ApprovalMismatch otherwise).
    grant = granted_batch(claims)
    if proof is None:
        raise MerkleError("the approval is of a batch and the request carries no Merkle proof for this change")
    # The signed count fixes the tree's size: a proof naming another size is refused even where it hashes alike.
    require_inclusion(change.digest, MerkleProof.from_json(proof), grant.root, tree_size=grant.count)
    return grant.root


def _consistency_problems(checked: Sequence[_Checked], proof: Mapping[str, Any] | None) -> list[str]:
    """The approvals of one change come from one request: one kind, one root (distinct subs are checked on the
    request, and each token's sub is its approval's)."""
    problems = []
    if len({(c.kind, c.root) for c in checked}) > 1:
        problems.append("the approvals of this change come from different requests (kind or Merkle root differ)")
    if proof is not None and all(c.kind == "single" for c in checked):
        problems.append("a Merkle proof came with a single-change approval: the request does not match its approval")
    return problems
