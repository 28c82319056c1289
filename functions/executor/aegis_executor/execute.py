"""The execution pipeline: the only code path that changes infrastructure.

    halt flag → recorded result? → a role for the change's account? → consume + verify every approval of the change
    (its digest, or its Merkle proof against the batch root the approver signed; two distinct approvers at or above
    APPROVAL_TWO_PERSON_RISK) → Token Vault (the first approver's token) → STS session for this change only, in the
    change's account (its own role there for a member account) → re-read (drift?) → apply (halt flag before each
    mutating call) → verify → drop credentials → result

One invocation is one change. Its request carries the change, its Merkle proof when it was approved in a batch (else
null), and the request's approval `{decision, approvals: [{decision, approver_sub, approved_at, handoffs: {change_id:
handoff_id}}]}` (aegis_executor.approval). What leaves the executor is `{change_id, outcome, reason,
verified_after}`; every step is audited with the approvals (`[{approver_sub, handoff_id, approved_at}]`), the batch
root when batched, the digest and timings, never a token. Named errors (`Executor.*`) are raised only where nothing
was applied: `Executor.ApprovalInvalid` for approvals that do not release the change, `Executor.ApprovalExpired` for
an approval whose token expired before the change ran, `Executor.WrongAccount` for a change about an account the
deployment has no role in, or whose STS session is in another account than the change's.

Resource data can look like a secret (AWS lets an IAM user be called like an access key id): what the executor
records and returns is redacted, never refused, so such a name is applied like any other. Once the ledger says an
apply has started, nothing raises: an error becomes a `failed` outcome, and an audit write that fails is logged while
the result is still returned (and kept in the ledger).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase, InvalidChange, direction_of, forward_target, parse_change
from aegis.control import halt_state
from aegis.models import Frozen, Risk
from aegis.partitions import PARTITION_PATTERN
from aegis.secrets_guard import error_location, error_message, withhold_secrets
from aegis_auth.handoff import HandoffStore
from aegis_auth.oidc import OidcClient
from aegis_auth.token_vault import ConnectionToken, TokenExchangeUnavailable, exchange_for_connection_token
from aegis_auth.token_vault import NoConnectedAccount as VaultNoConnectedAccount
from aegis_executor.approval import ApprovalOutcome, VerifiedApproval, approvers_needed, open_approval
from aegis_executor.credentials import (
    HaltedBeforeMutation,
    MutationGuard,
    SessionInWrongAccount,
    UndeclaredOperation,
    account_of_arn,
    assume_remediation_role,
    error_code,
    is_throttling,
    partition_of_arn,
)
from aegis_executor.errors import (
    ApprovalExpired,
    ApprovalInvalid,
    InvalidRequest,
    NoConnectedAccount,
    Throttled,
    TokenExchangeFailed,
    UndoDisabled,
    WrongAccount,
)
from aegis_executor.ledger import Ledger
from aegis_executor.remediations import Remediation, RemediationFailed, Verification, remediation_for
from aegis_jwt.errors import AuthError
from aegis_jwt.verify import TokenVerifier

logger = Logger(child=True)

AUDIT_ACTOR = "executor"
Outcome = Literal["applied", "drift", "failed", "halted"]


# --- the request ----------------------------------------------------------------------------------------------------
class ExecutorRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    execution_arn: str = Field(pattern=rf"^arn:{PARTITION_PATTERN}:states:[\w-]+:\d{{12}}:execution:[^\s]+$")
    mission_id: str = Field(min_length=1, max_length=256)
    change: dict[str, Any]
    # The change's RFC 9162 inclusion proof in the batch it was approved in; null for a change approved on its own.
    # Public data, parsed strictly (MerkleProof.from_json) once the handoffs are consumed: a malformed proof is an
    # approval that does not release the change, and costs its handoffs like any other.
    proof: dict[str, Any] | None = None
    approval: ApprovalOutcome


def parse_request(payload: Any) -> tuple[ExecutorRequest, ChangeBase]:
    """Validate the invocation payload; InvalidRequest names the first problem."""
    try:
        request = ExecutorRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = error_location(first.get("loc", ())) or "payload"
        raise InvalidRequest(f"not an executor request: {where}: {error_message(first)}") from None
    try:
        change = parse_change(request.change)
    except InvalidChange as exc:
        raise InvalidRequest(str(exc)) from None
    return request, change


def sanitized_result(
    change_id: str, outcome: Outcome, reason: str = "", verified_after: Frozen | None = None
) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "outcome": outcome,
        "reason": reason,
        "verified_after": verified_after.model_dump(mode="json") if verified_after is not None else None,
    }


# --- the executor ---------------------------------------------------------------------------------------------------
@dataclass
class Executor:
    """Everything the pipeline talks to, injected (the handler builds it once per container from the environment)."""

    control_table: Any
    audit_table: Any
    handoffs: HandoffStore
    oidc: OidcClient
    audience: str
    # The approval application's client id: the access token must have been issued to it (azp / client_id).
    approval_client_id: str
    connection: str
    remediation_role_arn: str
    sts: Any
    ledger: Ledger
    # Undo has a role and a Token Vault connection of its own (UndoRole holds the widening actions, and only the undo
    # connection's tokens can assume it); empty when the deployment disables undo.
    undo_role_arn: str = ""
    undo_connection: str = ""
    # The role names a member account's change is applied as, in that account (MEMBER_REMEDIATION_ROLE_NAME,
    # MEMBER_UNDO_ROLE_NAME); empty: no change (undo) is applied in another account than the deployment's own.
    member_remediation_role_name: str = ""
    member_undo_role_name: str = ""
    # The risk at or above which a change needs two distinct approvers (APPROVAL_TWO_PERSON_RISK); None: never.
    two_person_risk: Risk | None = Risk.HIGH
    verifier: TokenVerifier | None = None
    clock: Callable[[], float] = time.time
    # IAM and some other services are eventually consistent: a just-applied change may take a moment to read back.
    verify_delays: tuple[float, ...] = (1.0, 2.0)
    # Token Vault unreachable or answering 5xx once the approval is spent: the waits before each new attempt (3 in
    # all, each bounded by the HTTP client's timeouts, well within the function's timeout).
    exchange_retry_delays: tuple[float, ...] = (1.0, 2.0)
    sleep: Callable[[float], None] = time.sleep

    def execute(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        request, change = parse_request(payload)
        return _Run(self, request, change).run()

    def token_verifier(self) -> TokenVerifier:
        if self.verifier is None:
            self.verifier = TokenVerifier.for_provider(self.oidc.metadata, self.oidc.http, clock=self.clock)
        return self.verifier

    def is_halted(self) -> bool:
        return halt_state(self.control_table) is not None

    @property
    def undo_enabled(self) -> bool:
        return bool(self.undo_role_arn and self.undo_connection)

    @property
    def own_account(self) -> str:
        """The deployment's account: that of its RemediationRole."""
        return account_of_arn(self.remediation_role_arn)

    def is_member_change(self, change: ChangeBase) -> bool:
        return change.account_id != self.own_account

    def refusal_before_use(self, change: ChangeBase) -> UndoDisabled | WrongAccount | None:
        """Why no role can apply `change`, known before its approval is used; None when one can."""
        undo = direction_of(change) == "undo"
        if undo and not self.undo_enabled:
            return UndoDisabled("undo is disabled in this deployment (no UndoTokenVaultConnection)")
        if not self.is_member_change(change):
            return None
        if undo and not self.member_undo_role_name:
            return UndoDisabled("undo is disabled in member accounts in this deployment (no MEMBER_UNDO_ROLE_NAME)")
        if not undo and not self.member_remediation_role_name:
            return WrongAccount(
                f"the change is about account {change.account_id}, and this deployment names no role to apply "
                "changes in other accounts than its own (MEMBER_REMEDIATION_ROLE_NAME)"
            )
        return None

    def role_and_connection(self, change: ChangeBase) -> tuple[str, str]:
        """The role to assume and the Token Vault connection for this change's direction and account: the
        deployment's own roles for its own account, else the member account's role of the configured name (same
        partition as the deployment's roles, whose web identity provider the member roles trust too)."""
        undo = direction_of(change) == "undo"
        own_role, connection = (
            (self.undo_role_arn, self.undo_connection) if undo else (self.remediation_role_arn, self.connection)
        )
        if not self.is_member_change(change):
            return own_role, connection
        name = self.member_undo_role_name if undo else self.member_remediation_role_name
        partition = partition_of_arn(self.remediation_role_arn)
        return f"arn:{partition}:iam::{change.account_id}:role/{name}", connection


@dataclass
class _Run:
    """One invocation: its audit trail, its timings, and the secrets it must let go of."""

    executor: Executor
    request: ExecutorRequest
    change: ChangeBase
    audit: AuditLog = field(init=False)
    started: float = field(init=False, default_factory=time.perf_counter)
    marks: dict[str, float] = field(init=False, default_factory=dict)
    # Once the approval is consumed the invocation cannot be repeated: its outcome goes to the ledger.
    consumed: bool = field(init=False, default=False)
    # Who approved, as the request names them (then as verified): `[{approver_sub, handoff_id, approved_at}]`.
    approvals: list[dict[str, Any]] = field(init=False, default_factory=list)
    # The Merkle root the change's proof was verified against; known once the approval is verified.
    batch_root: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.executor.audit_table, AUDIT_ACTOR)
        self.approvals = [
            {
                "approver_sub": approval.approver_sub,
                "handoff_id": approval.handoffs.get(self.change.change_id),
                "approved_at": approval.approved_at,
            }
            for approval in self.request.approval.approvals
        ]

    # --- bookkeeping ------------------------------------------------------------------------------------------------
    def mark(self, name: str) -> None:
        self.marks[name] = round((time.perf_counter() - self.started) * 1000, 1)

    def record(self, action: str, outcome: str, **details: Any) -> None:
        # Redacted, not refused: a resource name shaped like a key must not make the record (or the run) fail.
        redacted, _ = withhold_secrets(
            {
                "change_id": self.change.change_id,
                "execution_arn": self.request.execution_arn,
                "digest": self.change.digest,
                # Whose account the change is about (an undo is allowed by the record of applying it there).
                "account_id": self.change.account_id,
                # The approver whose token Token Vault exchanges: the identity the AWS session acts as.
                "approver_sub": self.request.approval.approvals[0].approver_sub,
                "approvals": self.approvals,
                **({"batch_root": self.batch_root} if self.batch_root else {}),
                **details,
            }
        )
        self.audit.append(self.request.mission_id, action, outcome, **redacted)

    def result(self, outcome: Outcome, reason: str = "", verified_after: Frozen | None = None) -> dict[str, Any]:
        """The result, redacted like a record (it reaches the state machine and the agent's documents); written to
        the ledger once the approval is used, and audited. Neither write may cost the caller the result."""
        result, _ = withhold_secrets(sanitized_result(self.change.change_id, outcome, reason, verified_after))
        if self.consumed:
            self._ledger_finished_safely(result)
        self.mark("result")
        self._record_safely("executor.result", outcome, result=result, timings_ms=self.marks)
        logger.info("change executed", extra={"change_id": self.change.change_id, "outcome": outcome})
        return dict(result)

    # --- the pipeline -----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            halted = self.executor.is_halted()
            self.record(
                "executor.started",
                "halted" if halted else "started",
                kind=self.change.kind,
                batched=self.request.proof is not None,
            )
            recorded = self.executor.ledger.recorded_result(self.request.execution_arn, self.change.change_id)
            if recorded is not None:
                # A retry of an invocation that got as far as changing the resource: its answer, not a new attempt.
                self.record("executor.replayed", str(recorded.get("outcome")), result=recorded)
                return recorded
            if halted:
                self._discard_unused_approval()
                return self.result("halted", "kill switch engaged before the approval was used")
            refusal = self.executor.refusal_before_use(self.change)
            if refusal is not None:
                # Before consuming: the approval stays unused, and the deployment's choice is named.
                if isinstance(refusal, UndoDisabled):
                    self._record_safely("executor.undo_disabled", "refused")
                else:
                    self._record_safely("executor.wrong_account", "refused", error=type(refusal).__name__)
                self._discard_unused_approval()
                raise refusal
            # Discovery before consuming: an unreachable provider must not cost the human's approval.
            verifier = self.executor.token_verifier()
            self.consumed = True
            approval = self._open_approval(verifier)
        except ClientError as exc:
            if is_throttling(exc):
                reason = f"AWS throttled the executor before the approval was used ({error_code(exc)})"
                raise Throttled(reason) from None
            raise
        except AuthError as exc:
            self.record("executor.provider_unavailable", "failed", error=type(exc).__name__)
            if not self.consumed:
                self._discard_unused_approval()
            raise TokenExchangeFailed(f"the identity provider is not usable ({type(exc).__name__})") from None
        self.mark("approval_consumed")
        return self._spend(approval)

    def _open_approval(self, verifier: TokenVerifier) -> VerifiedApproval:
        try:
            return open_approval(
                self.executor.handoffs,
                verifier,
                audience=self.executor.audience,
                approval_client_id=self.executor.approval_client_id,
                execution_arn=self.request.execution_arn,
                change=self.change,
                proof=self.request.proof,
                approvals=self.request.approval.approvals,
                required_approvers=approvers_needed(self.change, self.executor.two_person_risk),
            )
        except ApprovalInvalid as exc:
            self._record_safely("executor.approval_invalid", "refused", reason=str(exc))
            raise
        except ApprovalExpired as exc:
            self._record_safely("executor.approval_expired", "expired", reason=str(exc))
            raise

    def _spend(self, approval: VerifiedApproval) -> dict[str, Any]:
        """Everything after the approval is consumed: it cannot be retried, so failures become outcomes."""
        self.approvals = [approver.as_json() for approver in approval.approvers]
        self.batch_root = approval.batch_root
        self.record("executor.approval_verified", "verified", token_expires_at=approval.token_expires_at)
        role_arn, connection = self.executor.role_and_connection(self.change)
        try:
            connection_token = self._exchange(approval, connection)
        except VaultNoConnectedAccount as exc:
            self.record("executor.token_exchange", "no_connected_account", error=exc.error)
            raise NoConnectedAccount(f"the approver has no connected account on {connection!r}") from None
        except AuthError as exc:
            self.record("executor.token_exchange", "failed", error=type(exc).__name__)
            raise TokenExchangeFailed(f"Token Vault exchange failed ({type(exc).__name__})") from None
        finally:
            del approval
        self.mark("token_exchanged")
        try:
            session, facts = assume_remediation_role(
                self.executor.sts,
                role_arn=role_arn,
                change=self.change,
                web_identity_token=connection_token.access_token,
            )
        except ClientError as exc:
            self.record("executor.session", "refused", error=error_code(exc), role_arn=role_arn)
            return self.result("failed", f"AssumeRoleWithWebIdentity failed: {error_code(exc) or 'error'}")
        except SessionInWrongAccount as exc:
            # No session was built from STS's answer: nothing was read or changed in any account.
            self.record(
                "executor.session",
                "wrong_account",
                error=WrongAccount.__name__,
                role_arn=role_arn,
                assumed_role_arn=exc.assumed_role_arn,
            )
            raise WrongAccount(
                f"STS gave a session in another account than the change's ({self.change.account_id}); "
                "nothing was applied"
            ) from None
        finally:
            del connection_token
        self.mark("session_obtained")
        self.record(
            "executor.session",
            "obtained",
            role_session_name=facts.role_session_name,
            assumed_role_arn=facts.assumed_role_arn,
            expiration=facts.expiration,
        )
        guard = MutationGuard(self.change, self.executor.is_halted)
        guard.install(session)
        try:
            outcome, reason, state = self._remediate(session, guard)
        finally:
            del session
            self.mark("credential_dropped")
        return self.result(outcome, reason, state)

    def _exchange(self, approval: VerifiedApproval, connection: str) -> ConnectionToken:
        """Token Vault's provider token for the approver. The approval is spent by now, so an exchange that got no
        answer (transport error, 5xx) is sent again after each of `exchange_retry_delays`: it consumes nothing (the
        access token stays valid until it expires), and giving up would cost the human's approval."""
        delays = iter(self.executor.exchange_retry_delays)
        while True:
            try:
                return exchange_for_connection_token(
                    self.executor.oidc, subject_token=approval.access_token, connection=connection
                )
            except TokenExchangeUnavailable as exc:
                delay = next(delays, None)
                if delay is None:
                    raise
                self._record_safely("executor.token_exchange", "retrying", error=type(exc).__name__)
                self.executor.sleep(delay)

    def _remediate(self, session: Any, guard: MutationGuard) -> tuple[Outcome, str, Frozen | None]:
        """The approval is used: from here on every failure is an outcome, never an error."""
        undo = self.change.kind == "undo"
        target = forward_target(self.change)
        started = False
        try:
            fix = remediation_for(target)
            current = fix.read_current(session, target)
            if not (fix.is_after(current, target) if undo else fix.is_before(current, target)):
                self._record_safely("executor.drift", "drift", current=current.model_dump(mode="json"))
                return "drift", "the resource no longer matches the approved before-state; nothing was applied", current
            self.mark("resource_read")
            # Written before the first mutating call: the before-state an undo restores, and the ledger's proof that
            # an apply had started should this invocation die.
            self.executor.ledger.started(self.request.execution_arn, self.change.change_id)
            started = True
            if not self._record_safely("executor.applying", "applying", before_state=current.model_dump(mode="json")):
                # No change without its before-state on record.
                return "failed", "the audit trail could not be written; nothing was applied", None
            (fix.undo if undo else fix.apply)(session, target)
            self.mark("changed")
            verification = self._verify(fix, session, target, undo)
            self.mark("verified")
        except HaltedBeforeMutation as exc:
            return "halted", str(exc), None
        except UndeclaredOperation as exc:
            return "failed", f"refused an undeclared operation: {exc}", None
        except RemediationFailed as exc:
            return "failed", f"{exc} ({len(guard.mutations_sent)} mutating calls sent)", None
        except ClientError as exc:
            operation = str(exc.operation_name) if hasattr(exc, "operation_name") else "call"
            sent = len(guard.mutations_sent)
            prefix = "throttled after the approval was used" if is_throttling(exc) else "AWS refused"
            return "failed", f"{prefix}: {operation} {error_code(exc) or 'error'} ({sent} mutating calls sent)", None
        except Exception as exc:  # the approval is spent: an unforeseen error is this change's outcome
            sent = len(guard.mutations_sent)
            where = "after the apply started" if started else "before anything was applied"
            # By name only: the error's text may carry resource data or a response body.
            logger.error("remediation failed", extra={"change_id": self.change.change_id, "error": type(exc).__name__})
            return "failed", f"{type(exc).__name__} {where} ({sent} mutating calls sent)", None
        if not verification.ok:
            return "failed", "the resource did not reach the approved after-state", verification.state
        result, _ = withhold_secrets(sanitized_result(self.change.change_id, "applied", "", verification.state))
        # Done before anything else can fail: a retry of this invocation returns this answer.
        self._ledger_finished_safely(result)
        self._record_safely(
            "executor.applied",
            "applied",
            before_state=current.model_dump(mode="json"),
            approved_before=_json(target.before if not undo else target.after),
            result=result,
            mutations=guard.mutations_sent,
        )
        return "applied", "", verification.state

    def _verify(self, fix: Remediation[Any, Any], session: Any, target: ChangeBase, undo: bool) -> Verification:
        check = fix.verify_undone if undo else fix.verify
        verification = check(session, target)
        for delay in self.executor.verify_delays:
            if verification.ok:
                break
            self.executor.sleep(delay)
            verification = check(session, target)
        return verification

    def _discard_unused_approval(self) -> None:
        """On a path that ends before the approval is consumed (and is not retried), delete every handoff named for
        this change unopened: nobody will use them, and a sealed approval must not outlive its change. The other
        changes' handoffs of a batch are theirs to consume. Best effort, audited per handoff; the kill switch purges
        whatever an ended execution left behind all the same."""
        handoff_ids = [a["handoff_id"] for a in self.approvals if a["handoff_id"]]
        for handoff_id in dict.fromkeys(handoff_ids):
            try:
                discarded = self.executor.handoffs.discard(handoff_id, execution_arn=self.request.execution_arn)
            except Exception as exc:
                self._record_safely(
                    "executor.approval_discarded", "failed", handoff_id=handoff_id, error=type(exc).__name__
                )
                continue
            self._record_safely(
                "executor.approval_discarded", "discarded" if discarded else "already_gone", handoff_id=handoff_id
            )

    def _record_safely(self, action: str, outcome: str, **details: Any) -> bool:
        """Audit on a path that is already failing or finishing, or that has changed the resource: an audit error is
        logged, not allowed to replace the error or result being reported. True when the record was written."""
        try:
            self.record(action, outcome, **details)
        except Exception as exc:  # the caller's own outcome must win; reported here
            logger.error("audit write failed", extra={"action": action, "error": type(exc).__name__})
            return False
        return True

    def _ledger_finished_safely(self, result: dict[str, Any]) -> None:
        """The ledger's `done` entry, once the approval is used. A failure to write it is logged: the result still
        goes back (a retry would then report the apply as interrupted, never apply again)."""
        try:
            self.executor.ledger.finished(self.request.execution_arn, self.change.change_id, result)
        except Exception as exc:  # the result is what the state machine needs; reported here
            logger.error("ledger write failed", extra={"error": type(exc).__name__})


def _json(state: Any) -> Any:
    return state.model_dump(mode="json") if isinstance(state, BaseModel) else state
