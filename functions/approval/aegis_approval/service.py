"""The approval function's logic: one approval request (one change, or a batch of them), one approver, one human
decision, one sealed handoff per change at most.

Invoked (asynchronously) by the `RequestApproval` waitForTaskToken state, once per approver of a request (a
two-person change is asked of two approvers in parallel), with `{task_token, execution_arn, mission_id,
approver_sub, request}` (`request` is an `aegis.approvals.requests.ApprovalRequest`), or by itself with
`{continuation_id}` when an earlier invocation ran short of time.

Before anything is pushed, the request is checked against the function's own `ApprovalPolicy`: the approver must be
one of the request's and one the policy allows for every change in it; a single request holds exactly one change; a
batch's Merkle root must recompute from its items, each item's proof must lead to it, and every change in it must be
one the policy lets share a request. Anything else is refused (`Approval.Failed`, nothing pushed).

It then asks the approver by CIBA: a single request with the change's binding message and aegis-change authorization
details, a batch with `Approve <n> changes #<root prefix>` and one aegis-batch object carrying the Merkle root. Each
bc-authorize attempt first takes a slot from the approver's pacer (aegis_approval.pacing: at most
APPROVER_PUSHES_PER_MINUTE per approver in any sliding minute, shared by every concurrent invocation); a pacing or
Retry-After wait longer than the invocation has left hands over to a fresh invocation before anything is sent. It
waits for the decision while sending heartbeats and watching the halt flag, and answers the task token:

- approved → the tokens are verified (signature, issuer, audience, expiry, issued to this client, the approver asked,
  and the access token's own authorization_details: exactly one aegis-change object carrying the change digest for a
  single request, exactly one aegis-batch object carrying the batch's Merkle root for a batch), the token response
  without any refresh token is sealed once per change (encryption context: the execution and that change's digest),
  and SendTaskSuccess carries only `{decision, approver_sub, approved_at, handoffs: {change_id: handoff_id}}`;
- otherwise SendTaskFailure with `Approval.Denied`, `Approval.Expired`, `Approval.Halted` or `Approval.Failed`.

While it waits, it watches how long the mission's changes have waited (since the mission's first approval request,
kept in the Continuations table): past `waiting_notify_minutes`, the first invocation to see it appends one
`approval.waiting` record for the mission, which the notifier tells the operator about.

Every outcome is audited: `approval.requested` once per CIBA request (for a batch with every change's display texts,
so the console shows each diff from the audit trail alone), `approval.decided` and `approval.abandoned` once per
change (the trail of each change tells its own decision). No token, secret, auth_req_id or task token is logged,
audited or returned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aegis.approvals.merkle import MerkleError
from aegis.approvals.requests import AnalystNote, ApprovalRequest
from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase, InvalidChange
from aegis.control import Halted, ensure_not_halted
from aegis.models import Decision
from aegis.secrets_guard import display_text, secret_kind
from aegis_approval.ciba import CibaPoller, CibaRequest, Deferred, Denied, Expired, Granted, HandOver, Outcome
from aegis_approval.continuation import Continuation, ContinuationStore
from aegis_approval.errors import (
    ERROR_DENIED,
    ERROR_EXPIRED,
    ERROR_FAILED,
    ERROR_HALTED,
    CibaFailed,
    ContinuationInvalid,
    InvalidApprovalEvent,
    InvalidSettings,
    MalformedApprovalTask,
    RequestRefused,
    TaskGone,
)
from aegis_approval.pacing import ApproverPacer, PacingContended
from aegis_approval.request import backchannel_form, batch_backchannel_form
from aegis_approval.settings import ApprovalSettings
from aegis_approval.tasks import TaskTokens
from aegis_auth.errors import ApprovalMismatch, HandoffError
from aegis_auth.handoff import HandoffStore
from aegis_auth.oidc import OidcClient
from aegis_auth.rar import (
    analyst_value,
    granted_batch,
    granted_kind,
    instruction_for,
    require_granted_digest,
    require_granted_root,
)
from aegis_jwt.errors import AuthError
from aegis_jwt.verify import TokenVerifier, require_authorized_party

logger = Logger(child=True)

Clock = Callable[[], float]
Sleeper = Callable[[float], None]

HEARTBEAT_EVERY_SECONDS = 20.0
ACTOR = "approval"
KIND_SINGLE = "single"
KIND_BATCH = "batch"


class ApprovalTaskEvent(BaseModel):
    """What the RequestApproval state sends for one approver of one request (docs/CONTRACTS.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_token: str = Field(min_length=1)
    execution_arn: str = Field(min_length=1)
    mission_id: str = Field(min_length=1)
    approver_sub: str = Field(min_length=1)
    request: ApprovalRequest


def safe_reason(exc: BaseException) -> str:
    """A reason fit for logs, audit and a failure cause: our own messages, screened once more for secrets."""
    message = str(exc)[:300]
    if not message or secret_kind(message):
        return type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _validation_problem(exc: ValidationError, what: str) -> str:
    # Named by location only: pydantic's own message would echo the input, task token included.
    first = exc.errors(include_input=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or what
    return f"the {what} is malformed at {where}: {first.get('msg')}"


@dataclass
class _Run:
    """The task being answered. `task_token` stays out of repr, logs and audit."""

    task_token: str = field(repr=False)
    mission_id: str
    execution_arn: str
    approver_sub: str
    request: ApprovalRequest | None = None
    # The request's changes, parsed once, in the request's item order.
    changes: tuple[ChangeBase, ...] = ()
    # Since when the mission's changes have waited (epoch seconds), and whether their long wait was told (or cannot
    # be, so is not watched); aegis_approval.continuation.MissionWait.
    waiting_since: float | None = None
    waiting_noticed: bool = False

    @property
    def request_id(self) -> str:
        return self.request.request_id if self.request else ""

    @property
    def kind(self) -> str:
        return self.request.kind if self.request else ""

    def identity(self) -> dict[str, Any]:
        """What every audit record and log line of this run names: the request, and its change when it is one."""
        named: dict[str, Any] = {"request_id": self.request_id, "request_kind": self.kind}
        if self.request is None:
            return named
        if self.kind == KIND_BATCH:
            return named | {"merkle_root": self.request.root}
        if len(self.changes) != 1:
            return named
        change = self.changes[0]
        return named | {"change_id": change.change_id, "change_digest": change.digest}


class _Hooks:
    """Between polls: the halt flag every time, a heartbeat every `heartbeat_every` seconds."""

    def __init__(self, service: ApprovalService, run: _Run, time_left: Callable[[], float]) -> None:
        self._service = service
        self._run = run
        self._time_left = time_left
        self._last_heartbeat: float | None = None

    def checkpoint(self) -> None:
        ensure_not_halted(self._service.control_table)
        now = self._service.clock()
        if self._last_heartbeat is None or now - self._last_heartbeat >= self._service.heartbeat_every:
            self._service.tasks.heartbeat(self._run.task_token)
            self._last_heartbeat = now
        self._service.notice_long_wait(self._run)

    def time_left(self) -> float:
        return self._time_left()


class ApprovalService:
    def __init__(
        self,
        settings: ApprovalSettings,
        *,
        oidc: OidcClient,
        handoffs: HandoffStore,
        continuations: ContinuationStore,
        pacer: ApproverPacer,
        tasks: TaskTokens,
        control_table: Any,
        audit: AuditLog,
        invoke_self: Callable[[dict[str, str]], None],
        clock: Clock = time.time,
        sleep: Sleeper = time.sleep,
        heartbeat_every: float = HEARTBEAT_EVERY_SECONDS,
        verifier: TokenVerifier | None = None,
        poller: CibaPoller | None = None,
    ) -> None:
        self.settings = settings
        self.oidc = oidc
        self.handoffs = handoffs
        self.continuations = continuations
        self.pacer = pacer
        self.tasks = tasks
        self.control_table = control_table
        self.audit = audit
        self.invoke_self = invoke_self
        self.clock = clock
        self.heartbeat_every = heartbeat_every
        self.poller = poller or CibaPoller(oidc, clock=clock, sleep=sleep)
        self._verifier = verifier

    # --- entry ------------------------------------------------------------------------------------------------------
    def handle(self, event: Any, time_left: Callable[[], float]) -> dict[str, str]:
        """Answer one invocation; returns a summary safe to log (`{"outcome": ...}`)."""
        if not isinstance(event, Mapping):
            raise InvalidApprovalEvent("the event is not a JSON object")
        if set(event) == {"continuation_id"}:
            return self._resume(event["continuation_id"], time_left)
        task_token = event.get("task_token")
        if not isinstance(task_token, str) or not task_token:
            raise InvalidApprovalEvent("the event carries no task token and no continuation id")
        run = _Run(
            task_token=task_token,
            mission_id=_text(event.get("mission_id")) or "unknown-mission",
            execution_arn=_text(event.get("execution_arn")),
            approver_sub=_text(event.get("approver_sub")),
        )
        return self._guarded(run, lambda: self._begin(event, run, time_left))

    def _begin(self, event: Mapping[str, Any], run: _Run, time_left: Callable[[], float]) -> dict[str, str]:
        ensure_not_halted(self.control_table)
        try:
            task = ApprovalTaskEvent.model_validate(dict(event))
        except ValidationError as exc:
            raise MalformedApprovalTask(_validation_problem(exc, "approval event")) from None
        self._accept(run, task.request)
        if not self.continuations.claim_task(task.task_token, hold_seconds=self.settings.requested_expiry):
            logger.warning("duplicate delivery of an approval task; the first delivery answers it", extra=_log(run))
            return {"outcome": "duplicate"}
        return self._ask(run, time_left, hops=0)

    def _accept(self, run: _Run, request: ApprovalRequest) -> None:
        """Take `request` for `run` if this function may send it to `run.approver_sub`; RequestRefused otherwise."""
        run.request = request
        changes = tuple(request.changes())
        run.changes = changes
        policy = self.settings.policy
        if request.kind == KIND_SINGLE and len(changes) != 1:
            raise RequestRefused(f"a single approval request must hold exactly one change, not {len(changes)}")
        if not changes:
            raise RequestRefused("the approval request holds no change")
        if run.approver_sub not in request.approvers:
            raise RequestRefused("the approver is not one of the request's approvers")
        for change in changes:
            if run.approver_sub not in policy.eligible(change):
                raise RequestRefused(f"the approver may not approve change {change.change_id} under the policy")
            # A change under the two-person rule asked of fewer approvers could never be applied (the executor wants
            # that many distinct approvals): refused now rather than after a push that cannot count.
            if len(set(request.approvers)) < policy.approvers_needed(change):
                raise RequestRefused(
                    f"change {change.change_id} needs {policy.approvers_needed(change)} distinct approvers"
                )
        if request.kind == KIND_BATCH:
            self._check_batch(request, changes)

    def _check_batch(self, request: ApprovalRequest, changes: tuple[ChangeBase, ...]) -> None:
        """A batch may only hold changes the policy lets share one approval (the executor checks each change against
        the root, not the risk that let it into the batch), at most `batch_max_changes` of them, bound by its root."""
        policy = self.settings.policy
        if len(changes) > policy.batch_max_changes:
            raise RequestRefused(f"a batch may hold at most {policy.batch_max_changes} changes")
        for change in changes:
            if not policy.batchable(change):
                raise RequestRefused(f"change {change.change_id} may not be approved in a batch under the policy")
        try:
            # The root recomputes from the items, and each item's proof is its change's proof under it: what the
            # executor checks each change against, so a request failing it now would only waste the approval.
            request.check_root()
        except MerkleError as exc:
            raise RequestRefused(f"the batch does not bind its changes: {exc}") from None

    # --- asking -----------------------------------------------------------------------------------------------------
    def _ask(self, run: _Run, time_left: Callable[[], float], hops: int) -> dict[str, str]:
        """Send the CIBA request in the approver's next pacing slot and wait for the decision."""
        request = run.request
        if request is None:  # pragma: no cover - accepted before any request is sent
            raise RequestRefused("no approval request to send")
        self._watch_wait(run)
        hooks = _Hooks(self, run, time_left)
        metadata = self.poller.discover(hooks)
        form = self._form(run, request, metadata.issuer)
        started = self.poller.start(form, hooks, take_slot=lambda: self.pacer.take(run.approver_sub))
        if isinstance(started, Deferred):
            logger.info("the approver's next push is further away than this invocation can wait", extra=_log(run))
            return self._hand_over(run, None, hops)
        self._audit(
            run,
            "approval.requested",
            "requested",
            expires_at=_iso(started.deadline),
            approvers=list(request.approvers),
            **self._shown(run, request, form),
        )
        logger.info("approval requested", extra=_log(run))
        return self._conclude(run, self.poller.wait_for_decision(started, hooks), hops)

    def _form(self, run: _Run, request: ApprovalRequest, issuer: str) -> dict[str, str]:
        common: dict[str, Any] = {
            "issuer": issuer,
            "approver_sub": run.approver_sub,
            "scope": self.settings.scope,
            "audience": self.settings.audience,
            "requested_expiry": self.settings.requested_expiry,
            "login_hint_format": self.settings.login_hint_format,
        }
        if request.kind == KIND_SINGLE:
            note = request.items[0].analyst
            return backchannel_form(run.changes[0], **common, analyst=note.shown() if note else None)
        try:
            return batch_backchannel_form(run.mission_id, request, **common)
        except ValueError as exc:
            raise RequestRefused(f"the batch does not fit one approval: {exc}") from None

    @staticmethod
    def _shown(run: _Run, request: ApprovalRequest, form: Mapping[str, str]) -> dict[str, Any]:
        if request.kind == KIND_SINGLE:
            return shown_to_approver(run.changes[0], form["binding_message"], request.items[0].analyst)
        return batch_shown_to_approver(request, run.changes, form)

    def _resume(self, continuation_id: Any, time_left: Callable[[], float]) -> dict[str, str]:
        try:
            continuation = self.continuations.take(continuation_id)
        except ContinuationInvalid as exc:
            raise InvalidApprovalEvent(str(exc)) from None
        if continuation is None:
            logger.warning("continuation already taken; a duplicate delivery stops here")
            return {"outcome": "duplicate"}
        run = _Run(
            task_token=continuation.task_token,
            mission_id=continuation.mission_id,
            execution_arn=continuation.execution_arn,
            approver_sub=continuation.approver_sub,
        )

        def work() -> dict[str, str]:
            ensure_not_halted(self.control_table)
            try:
                request = ApprovalRequest.model_validate_json(continuation.request_json)
            except ValidationError as exc:
                raise MalformedApprovalTask(_validation_problem(exc, "continued approval request")) from None
            # Checked again: the policy is this invocation's (a redeployment may have changed it meanwhile).
            self._accept(run, request)
            hops = continuation.hops + 1
            if continuation.ciba is None:
                return self._ask(run, time_left, hops)
            self._watch_wait(run)
            hooks = _Hooks(self, run, time_left)
            return self._conclude(run, self.poller.wait_for_decision(continuation.ciba, hooks), hops)

        return self._guarded(run, work)

    # --- outcomes ---------------------------------------------------------------------------------------------------
    def _guarded(self, run: _Run, work: Callable[[], dict[str, str]]) -> dict[str, str]:
        try:
            return work()
        except Halted:
            return self._fail(run, ERROR_HALTED, Decision.HALTED, "the kill switch is engaged")
        except TaskGone as exc:
            logger.warning("the task token is no longer awaited; stopping", extra=_log(run, reason=str(exc)))
            self._audit_each_quietly(run, "approval.abandoned", "abandoned", reason=str(exc))
            return {"outcome": "abandoned"}
        except (
            AuthError,
            HandoffError,
            CibaFailed,
            InvalidChange,
            MalformedApprovalTask,
            RequestRefused,
            PacingContended,
            InvalidSettings,
        ) as exc:
            return self._fail(run, ERROR_FAILED, Decision.FAILED, safe_reason(exc))
        except Exception as exc:
            logger.error("unexpected error in the approval function", extra=_log(run, error=type(exc).__name__))
            return self._fail(run, ERROR_FAILED, Decision.FAILED, f"internal error ({type(exc).__name__})")

    def _conclude(self, run: _Run, outcome: Outcome, hops: int) -> dict[str, str]:
        match outcome:
            case Granted(token_response=token_response):
                return self._release(run, token_response)
            case Denied(reason=reason):
                return self._fail(run, ERROR_DENIED, Decision.DENIED, reason)
            case Expired(reason=reason):
                return self._fail(run, ERROR_EXPIRED, Decision.EXPIRED, reason)
            case HandOver(request=ciba):
                return self._hand_over(run, ciba, hops)
        raise AssertionError(f"unknown outcome {type(outcome).__name__}")  # pragma: no cover

    def _release(self, run: _Run, token_response: Mapping[str, Any]) -> dict[str, str]:
        request = run.request
        if request is None or not run.changes:  # pragma: no cover - a request is accepted before any poll
            raise RequestRefused("no approval request to release")
        verifier = self.verifier()
        access_token = str(token_response["access_token"])
        access_claims = verifier.verify(access_token, self.settings.audience)
        require_authorized_party(access_claims, self.settings.client_id)
        if access_claims["sub"] != run.approver_sub:
            raise ApprovalMismatch("the access token was issued for another user than the approver asked")
        id_token = token_response.get("id_token")
        if id_token is not None:
            id_claims = verifier.verify_id_token(str(id_token), self.settings.client_id, access_token=access_token)
            if id_claims["sub"] != run.approver_sub:
                raise ApprovalMismatch("the ID token names another user than the approver asked")
        # What the provider signed must be what was asked: one change's digest for a single request, the batch's
        # Merkle root for a batch (never a single digest standing for a batch, nor a batch for a single change).
        granted = granted_kind(access_claims)
        if granted != request.kind:
            raise ApprovalMismatch(f"the access token grants a {granted} approval; a {request.kind} one was asked")
        if request.kind == KIND_SINGLE:
            require_granted_digest(access_claims, run.changes[0].digest)
        else:
            require_granted_root(access_claims, request.root or "")
            if granted_batch(access_claims).count != len(run.changes):
                raise ApprovalMismatch("the granted aegis-batch object counts another number of changes")
        # offline_access is never requested (ApprovalSettings refuses it), so a refresh token here is the provider's
        # own doing: it is not sealed, so it never reaches the executor, the table or a log.
        sealed = {name: value for name, value in token_response.items() if name != "refresh_token"}
        refresh_token_discarded = len(sealed) != len(token_response)
        if refresh_token_discarded:
            logger.warning("the provider issued a refresh token nobody asked for; it is discarded", extra=_log(run))
        ensure_not_halted(self.control_table)
        now = self.clock()
        expires_at = int(access_claims["exp"])
        expires_in = token_response.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = min(expires_at, int(now + expires_in))
        # One handoff per change, each sealed under that change's digest: the executor of a change can open only its
        # own, and consuming it leaves every other change's handoff in place.
        handoffs = {
            change.change_id: self.handoffs.seal(
                sealed,
                execution_arn=run.execution_arn,
                change_id=change.change_id,
                change_digest=change.digest,
                approver_sub=run.approver_sub,
                expires_at=expires_at,
            )
            for change in run.changes
        }
        approved_at = _iso(now)
        # Audited before release: an approval that cannot be audited is not released.
        self._audit_each(
            run,
            "approval.decided",
            Decision.APPROVED.value,
            per_change={change_id: {"handoff_id": handoff_id} for change_id, handoff_id in handoffs.items()},
            approved_at=approved_at,
            **({"refresh_token_discarded": True} if refresh_token_discarded else {}),
        )
        self.tasks.succeed(
            run.task_token,
            {
                "decision": Decision.APPROVED.value,
                "approver_sub": run.approver_sub,
                "approved_at": approved_at,
                "handoffs": handoffs,
            },
        )
        logger.info("approval granted and sealed", extra=_log(run, sealed_handoffs=len(handoffs)))
        return {"outcome": Decision.APPROVED.value}

    def _fail(self, run: _Run, error: str, decision: Decision, reason: str) -> dict[str, str]:
        self._audit_each_quietly(run, "approval.decided", decision.value, reason=reason, error=error)
        logger.info("approval not granted", extra=_log(run, error=error, reason=reason))
        try:
            self.tasks.fail(run.task_token, error, reason)
        except TaskGone as exc:
            logger.warning("the task token is no longer awaited", extra=_log(run, reason=str(exc)))
        return {"outcome": decision.value}

    def _hand_over(self, run: _Run, ciba: CibaRequest | None, hops: int) -> dict[str, str]:
        """Go on in a fresh invocation: polling `ciba`, or (None) sending the request, which is not sent yet."""
        if run.request is None:  # pragma: no cover - a request is accepted before any hand-over
            raise RequestRefused("no approval request to hand over")
        continuation_id = self.continuations.save(
            Continuation(
                task_token=run.task_token,
                execution_arn=run.execution_arn,
                mission_id=run.mission_id,
                approver_sub=run.approver_sub,
                request_json=run.request.model_dump_json(),
                ciba=ciba,
                hops=hops,
            )
        )
        try:
            self.invoke_self({"continuation_id": continuation_id})
        except Exception:
            # Nobody will go on with it: take it back so a late delivery finds nothing, and fail the task.
            self.continuations.take(continuation_id)
            raise
        phase = "pacing" if ciba is None else "polling"
        self._audit(run, "approval.continued", "continued", hops=hops, phase=phase)
        logger.info("handed over to a fresh invocation", extra=_log(run, hops=hops, phase=phase))
        return {"outcome": "continued"}

    # --- the mission's wait -----------------------------------------------------------------------------------------
    def _watch_wait(self, run: _Run) -> None:
        """Learn since when the mission's changes have waited (starting the wait at its first request). Telling the
        operator is a courtesy: if the wait cannot be read, this request is not held up, only not watched."""
        try:
            wait = self.continuations.mission_waiting(run.execution_arn)
        except Exception as exc:
            logger.error("the mission's wait could not be read", extra=_log(run, error=type(exc).__name__))
            run.waiting_noticed = True
            return
        run.waiting_since, run.waiting_noticed = wait.since, wait.noticed

    def notice_long_wait(self, run: _Run) -> None:
        """Between polls: once the mission's changes have waited `waiting_notify_minutes`, the first invocation to see
        it appends `approval.waiting` (one per mission: the mark in Continuations is conditional)."""
        if run.waiting_noticed or run.waiting_since is None:
            return
        now = self.clock()
        threshold = self.settings.waiting_notify_minutes
        if now - run.waiting_since < threshold * 60:
            return
        run.waiting_noticed = True
        try:
            first = self.continuations.notice_waiting(run.execution_arn)
        except Exception as exc:
            logger.error("the mission's long wait could not be marked", extra=_log(run, error=type(exc).__name__))
            return
        if first:
            self._audit_quietly(
                run,
                "approval.waiting",
                "waiting",
                waiting_since=_iso(run.waiting_since),
                waited_minutes=int((now - run.waiting_since) // 60),
                threshold_minutes=threshold,
            )
            logger.info("the mission's changes have waited long for approval", extra=_log(run))

    # --- helpers ----------------------------------------------------------------------------------------------------
    def verifier(self) -> TokenVerifier:
        if self._verifier is None:
            self._verifier = TokenVerifier.for_provider(self.oidc.metadata, self.oidc.http, clock=self.clock)
        return self._verifier

    def _audit(self, run: _Run, action: str, outcome: str, **details: Any) -> None:
        """One record about the whole request (for a single request, about its change)."""
        self.audit.append(
            run.mission_id,
            action,
            outcome,
            **run.identity(),
            approver_sub=run.approver_sub,
            execution_arn=run.execution_arn,
            **details,
        )

    def _audit_each(
        self,
        run: _Run,
        action: str,
        outcome: str,
        per_change: Mapping[str, Mapping[str, Any]] | None = None,
        **details: Any,
    ) -> None:
        """One record per change of the request (each findable by its change id), or one about the request when its
        changes are not known (a malformed event)."""
        if run.kind != KIND_BATCH or not run.changes:
            only = run.changes[0] if len(run.changes) == 1 else None
            extra = per_change.get(only.change_id, {}) if per_change and only else {}
            self._audit(run, action, outcome, **details, **extra)
            return
        base = run.identity()
        for change in run.changes:
            self.audit.append(
                run.mission_id,
                action,
                outcome,
                **base,
                change_id=change.change_id,
                change_digest=change.digest,
                approver_sub=run.approver_sub,
                execution_arn=run.execution_arn,
                **details,
                **(per_change or {}).get(change.change_id, {}),
            )

    def _audit_quietly(self, run: _Run, action: str, outcome: str, **details: Any) -> None:
        try:
            self._audit(run, action, outcome, **details)
        except Exception as exc:
            logger.error("could not write the audit item", extra=_log(run, error=type(exc).__name__))

    def _audit_each_quietly(self, run: _Run, action: str, outcome: str, **details: Any) -> None:
        try:
            self._audit_each(run, action, outcome, **details)
        except Exception as exc:
            logger.error("could not write the audit item", extra=_log(run, error=type(exc).__name__))


def shown_to_approver(change: ChangeBase, binding_message: str, analyst: AnalystNote | None = None) -> dict[str, Any]:
    """What the approver's phone shows for `change` (the binding message, and the before/after of its authorization
    details), for the `approval.requested` record: the ops API lists pending approvals from it, so the console shows
    exactly what the phone shows without reading the Handoff or Continuations tables. Resource names are withheld
    where they look like a credential (`display_text`), as in every text shown to people, so that a hostile name
    cannot make the audit writer refuse the record and fail the approval. The analyst's note, when the change has
    one, is recorded as the phone shows it (`analyst`)."""
    return {
        "binding_message": display_text(binding_message),
        "instruction": display_text(instruction_for(change)),
        "kind": change.kind,
        "resource_arn": display_text(change.resource_arn),
        "region": change.region,
        "risk": change.risk.value,
        "before_text": display_text(change.describe_before()),
        "after_text": display_text(change.describe_after()),
        **_analyst_shown(analyst),
    }


def _analyst_shown(analyst: AnalystNote | None) -> dict[str, str]:
    return {"analyst": analyst_value(analyst.shown())} if analyst is not None else {}


def batch_item_shown(change: ChangeBase, analyst: AnalystNote | None = None) -> dict[str, Any]:
    """One change of a batch as the console's request page shows it (its diff, screened like `shown_to_approver`,
    and the analyst's note on it when there is one)."""
    return {
        "change_id": change.change_id,
        "change_digest": change.digest,
        "kind": change.kind,
        "resource_arn": display_text(change.resource_arn),
        "region": change.region,
        "risk": change.risk.value,
        "before_text": display_text(change.describe_before()),
        "after_text": display_text(change.describe_after()),
        "instruction": display_text(instruction_for(change)),
        **_analyst_shown(analyst),
    }


def batch_shown_to_approver(
    request: ApprovalRequest, changes: tuple[ChangeBase, ...], form: Mapping[str, str]
) -> dict[str, Any]:
    """What the `approval.requested` record of a batch holds besides its root (which every record of the request
    names): what the phone shows (the binding message and the aegis-batch object's instruction), the summary it is
    built from, and every change's diff, so that the console's request page recomputes the root from the digests it
    displays without reading any other table."""
    (detail,) = json.loads(form["authorization_details"])
    return {
        "binding_message": display_text(form["binding_message"]),
        "instruction": display_text(str(detail.get("instruction", ""))),
        "review_url": request.review_url,
        "count": len(changes),
        "kinds": request.kinds_summary(),
        "risk": request.highest_risk().value,
        "items": [batch_item_shown(change, item.analyst) for change, item in zip(changes, request.items, strict=True)],
    }


def _log(run: _Run, **more: object) -> dict[str, object]:
    return {"mission_id": run.mission_id, **run.identity(), **more}
