"""The approval function's logic: one catalogue change, one human decision, one sealed handoff at most.

Invoked (asynchronously) by the `RequestApproval` waitForTaskToken state with `{task_token, execution_arn,
mission_id, change}`, or by itself with `{continuation_id}` when an earlier invocation ran short of time. It asks the
configured approver by CIBA with the change's binding message and authorization details, waits for the decision
while sending heartbeats and watching the halt flag, and answers the task token:

- approved → the tokens are verified (signature, issuer, audience, expiry, issued to this client, approver, exactly
  one aegis-change object carrying the change digest in the access token's own authorization_details), sealed into
  the Handoff table without any refresh token, and SendTaskSuccess carries only
  `{decision, approver_sub, handoff_id, approved_at}`;
- otherwise SendTaskFailure with `Approval.Denied`, `Approval.Expired`, `Approval.Halted` or `Approval.Failed`.

While it waits, it watches how long the mission's changes have waited (since the mission's first approval request,
kept in the Continuations table): past `waiting_notify_minutes`, the first invocation to see it appends one
`approval.waiting` record for the mission, which the notifier tells the operator about.

Every outcome is audited. No token, secret, auth_req_id or task token is logged, audited or returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase, InvalidChange, parse_change
from aegis.control import Halted, ensure_not_halted
from aegis.models import Decision
from aegis.secrets_guard import display_text, secret_kind
from aegis_approval.ciba import CibaPoller, CibaRequest, Denied, Expired, Granted, HandOver, Outcome
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
    TaskGone,
)
from aegis_approval.request import backchannel_form
from aegis_approval.settings import ApprovalSettings
from aegis_approval.tasks import TaskTokens
from aegis_auth.errors import ApprovalMismatch, HandoffError
from aegis_auth.handoff import HandoffStore
from aegis_auth.oidc import OidcClient
from aegis_auth.rar import instruction_for, require_granted_digest
from aegis_jwt.errors import AuthError
from aegis_jwt.verify import TokenVerifier, require_authorized_party

logger = Logger(child=True)

Clock = Callable[[], float]
Sleeper = Callable[[float], None]

HEARTBEAT_EVERY_SECONDS = 20.0
ACTOR = "approval"


class ApprovalTaskEvent(BaseModel):
    """What the RequestApproval state sends (docs/CONTRACTS.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_token: str = Field(min_length=1)
    execution_arn: str = Field(min_length=1)
    mission_id: str = Field(min_length=1)
    change: dict[str, Any]


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


@dataclass
class _Run:
    """The task being answered. `task_token` stays out of repr, logs and audit."""

    task_token: str
    mission_id: str
    execution_arn: str
    approver_sub: str
    change: ChangeBase | None = None
    # Since when the mission's changes have waited (epoch seconds), and whether their long wait was told (or cannot
    # be, so is not watched); aegis_approval.continuation.MissionWait.
    waiting_since: float | None = None
    waiting_noticed: bool = False

    def __repr__(self) -> str:
        return f"_Run(mission_id={self.mission_id!r}, change_id={self.change_id!r})"

    @property
    def change_id(self) -> str:
        return self.change.change_id if self.change else ""

    @property
    def digest(self) -> str:
        return self.change.digest if self.change else ""


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
            approver_sub=self.settings.approver_sub,
        )
        return self._guarded(run, lambda: self._begin(event, run, time_left))

    def _begin(self, event: Mapping[str, Any], run: _Run, time_left: Callable[[], float]) -> dict[str, str]:
        ensure_not_halted(self.control_table)
        try:
            task = ApprovalTaskEvent.model_validate(dict(event))
        except ValidationError as exc:
            # Named by location only: pydantic's own message would echo the input, task token included.
            first = exc.errors(include_input=False)[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "event"
            raise MalformedApprovalTask(f"the approval event is malformed at {where}: {first.get('msg')}") from None
        run.change = parse_change(task.change)
        if not self.continuations.claim_task(task.task_token, hold_seconds=self.settings.requested_expiry):
            logger.warning("duplicate delivery of an approval task; the first delivery answers it", extra=_log(run))
            return {"outcome": "duplicate"}
        self._watch_wait(run)
        hooks = _Hooks(self, run, time_left)
        metadata = self.poller.discover(hooks)
        form = backchannel_form(
            run.change,
            issuer=metadata.issuer,
            approver_sub=run.approver_sub,
            scope=self.settings.scope,
            audience=self.settings.audience,
            requested_expiry=self.settings.requested_expiry,
            login_hint_format=self.settings.login_hint_format,
        )
        request = self.poller.start(form, hooks)
        self._audit(
            run,
            "approval.requested",
            "requested",
            expires_at=_iso(request.deadline),
            **shown_to_approver(run.change, form["binding_message"]),
        )
        logger.info("approval requested", extra=_log(run))
        return self._conclude(run, self.poller.wait_for_decision(request, hooks), hops=0)

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
            run.change = parse_change(continuation.change_json)
            self._watch_wait(run)
            hooks = _Hooks(self, run, time_left)
            outcome = self.poller.wait_for_decision(continuation.request, hooks)
            return self._conclude(run, outcome, hops=continuation.hops + 1)

        return self._guarded(run, work)

    # --- outcomes ---------------------------------------------------------------------------------------------------
    def _guarded(self, run: _Run, work: Callable[[], dict[str, str]]) -> dict[str, str]:
        try:
            return work()
        except Halted:
            return self._fail(run, ERROR_HALTED, Decision.HALTED, "the kill switch is engaged")
        except TaskGone as exc:
            logger.warning("the task token is no longer awaited; stopping", extra=_log(run, reason=str(exc)))
            self._audit_quietly(run, "approval.abandoned", "abandoned", reason=str(exc))
            return {"outcome": "abandoned"}
        except (
            AuthError,
            HandoffError,
            CibaFailed,
            InvalidChange,
            MalformedApprovalTask,
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
            case HandOver(request=request):
                return self._hand_over(run, request, hops)
        raise AssertionError(f"unknown outcome {type(outcome).__name__}")  # pragma: no cover

    def _release(self, run: _Run, token_response: Mapping[str, Any]) -> dict[str, str]:
        change = run.change
        if change is None:  # pragma: no cover - a change is parsed before any poll
            raise InvalidChange("no change to release")
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
        require_granted_digest(access_claims, change.digest)
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
        handoff_id = self.handoffs.seal(
            sealed,
            execution_arn=run.execution_arn,
            change_id=change.change_id,
            change_digest=change.digest,
            approver_sub=run.approver_sub,
            expires_at=expires_at,
        )
        approved_at = _iso(now)
        # Audited before release: an approval that cannot be audited is not released.
        self._audit(
            run,
            "approval.decided",
            Decision.APPROVED.value,
            handoff_id=handoff_id,
            approved_at=approved_at,
            **({"refresh_token_discarded": True} if refresh_token_discarded else {}),
        )
        self.tasks.succeed(
            run.task_token,
            {
                "decision": Decision.APPROVED.value,
                "approver_sub": run.approver_sub,
                "handoff_id": handoff_id,
                "approved_at": approved_at,
            },
        )
        logger.info("change approved and sealed", extra=_log(run))
        return {"outcome": Decision.APPROVED.value}

    def _fail(self, run: _Run, error: str, decision: Decision, reason: str) -> dict[str, str]:
        self._audit_quietly(run, "approval.decided", decision.value, reason=reason, error=error)
        logger.info("approval not granted", extra=_log(run, error=error, reason=reason))
        try:
            self.tasks.fail(run.task_token, error, reason)
        except TaskGone as exc:
            logger.warning("the task token is no longer awaited", extra=_log(run, reason=str(exc)))
        return {"outcome": decision.value}

    def _hand_over(self, run: _Run, request: CibaRequest, hops: int) -> dict[str, str]:
        if run.change is None:  # pragma: no cover - a change is parsed before any poll
            raise InvalidChange("no change to hand over")
        continuation_id = self.continuations.save(
            Continuation(
                task_token=run.task_token,
                execution_arn=run.execution_arn,
                mission_id=run.mission_id,
                change_json=run.change.canonical(),
                approver_sub=run.approver_sub,
                request=request,
                hops=hops,
            )
        )
        try:
            self.invoke_self({"continuation_id": continuation_id})
        except Exception:
            # Nobody will go on with it: take it back so a late delivery finds nothing, and fail the task.
            self.continuations.take(continuation_id)
            raise
        self._audit(run, "approval.continued", "continued", hops=hops)
        logger.info("handed over to a fresh invocation", extra=_log(run, hops=hops))
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
        self.audit.append(
            run.mission_id,
            action,
            outcome,
            change_id=run.change_id,
            change_digest=run.digest,
            approver_sub=run.approver_sub,
            execution_arn=run.execution_arn,
            **details,
        )

    def _audit_quietly(self, run: _Run, action: str, outcome: str, **details: Any) -> None:
        try:
            self._audit(run, action, outcome, **details)
        except Exception as exc:
            logger.error("could not write the audit item", extra=_log(run, error=type(exc).__name__))


def shown_to_approver(change: ChangeBase, binding_message: str) -> dict[str, Any]:
    """What the approver's phone shows for `change` (the binding message, and the before/after of its authorization
    details), for the `approval.requested` record: the ops API lists pending approvals from it, so the console shows
    exactly what the phone shows without reading the Handoff or Continuations tables. Resource names are withheld
    where they look like a credential (`display_text`), as in every text shown to people, so that a hostile name
    cannot make the audit writer refuse the record and fail the approval."""
    return {
        "binding_message": display_text(binding_message),
        "instruction": display_text(instruction_for(change)),
        "kind": change.kind,
        "resource_arn": display_text(change.resource_arn),
        "region": change.region,
        "risk": change.risk.value,
        "before_text": display_text(change.describe_before()),
        "after_text": display_text(change.describe_after()),
    }


def _log(run: _Run, **more: object) -> dict[str, object]:
    return {"mission_id": run.mission_id, "change_id": run.change_id, "change_digest": run.digest, **more}
