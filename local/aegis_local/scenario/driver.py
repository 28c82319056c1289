"""Walk one mission on a running local stack, from the scan event to the end, and say what happens as it happens.

The driver fires the scan the way EventBridge delivers it (`LocalStack.fire_scan`), then watches what the mission
persists — the mission item, the execution, the audit trail — and plays its part:

- **the phone**: each approval request that reaches an approver's (emulated) phone is matched to the plan: a single
  change's by its digest, a batch's by its Merkle root, to the request of the plan the validator made (read from the
  execution's ValidatePlan output, else from the approval function's `approval.requested` record). It is answered as
  a whole by the `ApprovalPolicy` or the person at the terminal, with the same answer on every approver's phone of a
  two-person request. With an external provider there is no emulated phone: the driver shows what the approval
  function is waiting for, and the real phone answers.
- **--drift**: the local Lambda runtime runs `ExecutorInterceptor` around each executor invocation, i.e. after the
  change was approved and its task succeeded, and before the executor reads the resource. For a change to drift, it
  edits the resource out of band first (`aegis_local.scenario.drift`), exactly in that window.
- **--kill-after N**: once N changes were applied, the driver triggers the real KillSwitchFunction (a direct Lambda
  invocation, as an operator's IAM-authorised call would). So that "after N" is exact even though changes run in
  parallel, the interceptor holds any executor invocation that could become the (N+1)th application until the kill
  switch has fired; released, that executor finds the halt flag and applies nothing.

The audit trail is read incrementally (`TrailCursor`): each poll asks the Audit table's `ByChainPosition` index for
the records linked after the last chain position seen (`aegis.audit.read_chained_after`), so a poll costs what is new,
not the whole trail, and a mission's per-change overhead stays flat however many changes it has. The chain's
positions, not `seq`, are the cursor: the one chainer numbers records in the order the table committed them, whereas a
`seq` cursor would pass a record a slower concurrent writer commits later with an earlier timestamp. A record shows
there only once linked (a stream delay behind its write), and a stack may have no chainer on the Audit table's stream,
or one that keeps failing: then each poll reads the whole trail instead (correct, not flat), and at the mission's end
one read of the whole trail shows whatever the chain had not linked, so the driver never loses a record.

Nothing here touches a token: the phone sees what Guardian shows, the rest reads tables that refuse secrets.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aegis.approvals.merkle import merkle_root
from aegis.audit import read_chained_after, read_trail
from aegis.audit_chain import POSITION
from aegis.catalogue import ChangeBase, parse_change
from aegis_local.reporting.report import KillSwitchSummary
from aegis_local.scenario.drift import drift_resource
from aegis_local.scenario.phone import Answer, ApprovalPolicy, EmulatedPhone, PhoneRequest, TerminalApprover

__all__ = [
    "DriveOptions",
    "ExecutorInterceptor",
    "MissionDriver",
    "MissionRun",
    "PlannedRequest",
    "PollStats",
    "Progress",
    "TrailCursor",
    "invoke_kill_switch",
    "planned_requests",
]

TERMINAL_STATUSES = frozenset({"completed", "failed", "halted"})
# Execution statuses that end a mission without the state machine resuming the agent.
ENDED_WITHOUT_RESUME = frozenset({"ABORTED", "FAILED", "TIMED_OUT"})
# The state whose output is the plan of approval requests (`{"mission_id", "requests": [...]}`).
VALIDATE_STATE = "ValidatePlan"
# A request on the phone that matches nothing of the plan yet may be one whose record the approval function is about
# to write; past this it is denied as matching nothing.
UNMATCHED_GRACE_SECONDS = 15.0
KILL_REQUESTER = "aegis-local demo"
# An executor held at the gate goes on (and is reported) rather than outlive its function timeout.
GATE_MARGIN_SECONDS = 5.0
# The function that links the Audit table's records into their chain (aegis.audit_chain), from its stream.
AUDIT_CHAINER = "AuditChainFunction"
# At the mission's end, how long the driver waits for the stream consumers (the chainer among them) to catch up.
CATCH_UP_DRAIN_SECONDS = 10.0


class Progress(Protocol):
    def step(self, label: str, text: str) -> None: ...

    def lines(self, lines: Iterable[str]) -> None: ...


@dataclass(frozen=True)
class DriveOptions:
    policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    approver: TerminalApprover | None = None  # asks about the changes the policy does not answer
    kill_after: int | None = None
    timeout_seconds: float = 900.0
    poll_seconds: float = 0.2
    # Without news for this long, say what the mission is waiting for.
    quiet_seconds: float = 6.0


@dataclass(frozen=True)
class PlannedRequest:
    """One approval request of the mission's plan: a single change, or a batch approved on its Merkle root."""

    request_id: str
    kind: str
    root: str | None
    approvers: tuple[str, ...]
    changes: tuple[ChangeBase, ...]

    @property
    def label(self) -> str:
        if self.root is not None:
            return f"{self.request_id} (batch of {len(self.changes)}, #{self.root[:6]})"
        return self.request_id


def planned_requests(raw: Any) -> list[PlannedRequest]:
    """The requests of a ValidatePlan output (`ApprovalRequest` JSON); what cannot be read is left out."""
    found = []
    for entry in raw if isinstance(raw, list) else []:
        try:
            changes = tuple(parse_change(item["change"]) for item in entry["items"])
            found.append(
                PlannedRequest(
                    request_id=str(entry["request_id"]),
                    kind=str(entry.get("kind") or ("batch" if entry.get("root") else "single")),
                    root=str(entry["root"]) if entry.get("root") else None,
                    approvers=tuple(str(sub) for sub in entry.get("approvers") or ()),
                    changes=changes,
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


@dataclass
class MissionRun:
    """What happened, for the report and the exit code."""

    event_id: str = ""
    mission_id: str = ""
    status: str = "unknown"
    execution_arn: str | None = None
    execution_status: str | None = None
    plan: list[ChangeBase] = field(default_factory=list)
    answers: dict[str, tuple[Answer, str]] = field(default_factory=dict)  # change id -> (answer, why)
    requests: list[PlannedRequest] = field(default_factory=list)  # the plan's approval requests, once known
    request_answers: dict[str, tuple[Answer, str]] = field(default_factory=dict)  # request id -> (answer, why)
    out_of_band: dict[str, str] = field(default_factory=dict)  # change id -> what --drift did
    kill_switch: KillSwitchSummary | None = None
    ended: bool = False
    problems: list[str] = field(default_factory=list)  # what kept the mission from its end
    notes: list[str] = field(default_factory=list)  # what the report should say besides
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def halted(self) -> bool:
        return self.kill_switch is not None or self.status == "halted"

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at


def invoke_kill_switch(lambda_client: Any, function_name: str, action: str, reason: str, requested_by: str) -> Any:
    """Invoke the KillSwitchFunction directly (the IAM-authorised path) and return its report."""
    answer = lambda_client.invoke(
        FunctionName=function_name,
        Payload=json.dumps({"action": action, "reason": reason, "requested_by": requested_by}).encode(),
    )
    body = json.loads(answer["Payload"].read() or b"null")
    if "FunctionError" in answer:
        detail = body if isinstance(body, dict) else {}
        raise RuntimeError(f"the kill switch failed: {detail.get('errorType')}: {detail.get('errorMessage')}")
    return body


class ExecutorInterceptor:
    """Runs around each ExecutorFunction invocation (see the module docstring): --drift edits, --kill-after gate."""

    def __init__(
        self,
        *,
        drift_checks: frozenset[str] = frozenset(),
        edit: Callable[[ChangeBase], str] | None = None,
        kill_after: int | None = None,
    ) -> None:
        self._drift_checks = drift_checks
        self._edit = edit
        self._kill_after = kill_after
        self._condition = threading.Condition()
        self.applied = 0
        self.running = 0
        self.killed = False
        self.drifted: dict[str, str] = {}

    def __call__(self, event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        change = _change_of(event)
        self._enter(context)
        result: Any = None
        try:
            if (
                change is not None
                and self._edit is not None
                and (change.check_id in self._drift_checks or change.change_id in self._drift_checks)
                and change.change_id not in self.drifted
            ):
                try:
                    description = self._edit(change)
                except Exception as error:
                    description = f"the out-of-band edit failed: {type(error).__name__}: {error}"
                with self._condition:
                    self.drifted[change.change_id] = description
            result = handler(event, context)
            return result
        finally:
            self._leave(result)

    def _enter(self, context: Any) -> None:
        remaining = getattr(context, "get_remaining_time_in_millis", lambda: 60_000)() / 1000
        deadline = time.monotonic() + max(0.0, remaining - GATE_MARGIN_SECONDS)
        with self._condition:
            while (
                self._kill_after is not None
                and not self.killed
                and self.applied + self.running >= self._kill_after
                and time.monotonic() < deadline
            ):
                self._condition.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            self.running += 1

    def _leave(self, result: Any) -> None:
        with self._condition:
            self.running -= 1
            if isinstance(result, dict) and result.get("outcome") == "applied":
                self.applied += 1
            self._condition.notify_all()

    def applied_count(self) -> int:
        with self._condition:
            return self.applied

    def mark_killed(self) -> None:
        with self._condition:
            self.killed = True
            self._condition.notify_all()


def _change_of(event: Any) -> ChangeBase | None:
    try:
        return parse_change(event["change"])
    except Exception:
        return None


# -- reading the audit trail ----------------------------------------------------------------------------------------


@dataclass
class PollStats:
    """What the driver's polling cost, for `bench.mission_overhead`: its loop, and what it read of the audit trail."""

    polls: int = 0  # iterations of the driver's loop
    poll_seconds: float = 0.0  # their wall time, the pauses between them excluded
    trail_queries: int = 0  # Audit table queries (pages) the driver made
    trail_items: int = 0  # items those queries returned
    whole_trail_reads: int = 0  # reads of the whole trail: without a usable chain, and once at the end
    caught_up: int = 0  # records first seen by the end's whole read (never linked while the driver polled)
    catch_up_seconds: float = 0.0  # the end's catch-up: waiting for the chainer to link the last records, reading


class _CountedTable:
    """An Audit table that counts the queries made through it and the items they returned into `stats`."""

    def __init__(self, table: Any, stats: PollStats) -> None:
        self._table = table
        self._stats = stats

    def query(self, **kwargs: Any) -> Any:
        page = self._table.query(**kwargs)
        self._stats.trail_queries += 1
        self._stats.trail_items += len(page.get("Items", []))
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


class TrailCursor:
    """One mission's audit trail, each record handed out once (by its `seq`, the table's sort key).

    `linked()` reads only the records linked after `position` (the ByChainPosition index, in chain order) and moves
    the cursor over the gap-free run of positions it got: the chainer numbers records 1, 2, 3... without a gap, so a
    gap is a record not readable yet (an index read behind the chainer's write), read again on the next poll rather
    than passed over. `whole()` reads the whole trail and hands out what was not handed out yet, oldest first (by
    `seq`): the fallback when the chain cannot be relied on, and the end's catch-up of records never linked."""

    def __init__(self, table: Any, mission_id: str, stats: PollStats | None = None) -> None:
        self.mission_id = mission_id
        self.position = 0
        self._table = table
        self._stats = stats if stats is not None else PollStats()
        self._seen: set[str] = set()

    def linked(self) -> list[dict[str, Any]]:
        fresh = []
        for record in read_chained_after(self._table, self.mission_id, self.position):
            if int(record[POSITION]) == self.position + 1:
                self.position += 1
            if self._first_time(record):
                fresh.append(record)
        return fresh

    def whole(self) -> list[dict[str, Any]]:
        self._stats.whole_trail_reads += 1
        trail = sorted(read_trail(self._table, self.mission_id), key=lambda record: str(record.get("seq", "")))
        return [record for record in trail if self._first_time(record)]

    def _first_time(self, record: dict[str, Any]) -> bool:
        seq = str(record.get("seq"))
        if seq in self._seen:
            return False
        self._seen.add(seq)
        return True


class ChainWatch:
    """Whether the chain positions can drive the trail's reading on `stack`: an `AUDIT_CHAINER` mapping reads the
    Audit table's stream, and it has reported no failed delivery since this watch began (a failing chainer retries
    its batch, and records after it stay unlinked until it succeeds). Once not usable, never again for this watch:
    the driver then reads the whole trail each poll, which is always correct."""

    def __init__(self, stack: Any, audit_table_name: str) -> None:
        self._progress: Callable[[], Any] | None = None
        self._failures_before = 0
        try:
            streams = stack.streams
            chainer = str(stack.physical_id(AUDIT_CHAINER))
        except Exception:  # no stream deliveries, or no chainer in the template
            return
        for mapping in getattr(streams, "mappings", ()):
            if str(mapping.function_arn).endswith(f":function:{chainer}") and (
                f":table/{audit_table_name}/stream/" in str(mapping.stream_arn)
            ):
                self._progress = functools.partial(streams.progress, mapping.name)
                self._failures_before = self._failures()
                return

    def usable(self) -> bool:
        if self._progress is None:
            return False
        if self._failures() > self._failures_before:
            self._progress = None
            return False
        return True

    def _failures(self) -> int:
        assert self._progress is not None
        progress = self._progress()
        return len(progress.errors) + int(progress.failed_batches)


class MissionDriver:
    """One mission on `stack` (a running `aws.stack.LocalStack`); `phone` is None with an external provider."""

    def __init__(
        self, stack: Any, progress: Progress, options: DriveOptions, phone: EmulatedPhone | None, approver_sub: str
    ) -> None:
        self._stack = stack
        self._progress = progress
        self._options = options
        self._phone = phone
        self._approver_sub = approver_sub
        resource = stack.session().resource("dynamodb")
        self._missions = resource.Table(stack.physical_id("MissionsTable"))
        self.stats = PollStats()
        audit_name = str(stack.physical_id("AuditTable"))
        self._audit = _CountedTable(resource.Table(audit_name), self.stats)
        self._chain = ChainWatch(stack, audit_name)
        self._trail: TrailCursor | None = None
        self._sfn = stack.client("stepfunctions")
        self._handled_requests: set[str] = set()
        self._decided: dict[str, str] = {}
        self._requested: set[str] = set()
        self._finished: set[str] = set()
        self._last_news = time.monotonic()
        self._interceptor: ExecutorInterceptor | None = None
        self._requests: dict[str, PlannedRequest] = {}
        self._requests_from_plan = False
        self._first_unmatched: dict[str, float] = {}

    # -- the run --------------------------------------------------------------------------------------------------

    def run(self, detail: dict[str, Any]) -> MissionRun:
        from contextlib import nullcontext

        options = self._options
        run = MissionRun()
        needs_interceptor = bool(options.policy.drift) or options.kill_after is not None
        if needs_interceptor:
            self._interceptor = ExecutorInterceptor(
                drift_checks=options.policy.drift,
                edit=lambda change: drift_resource(change, self._stack.client),
                kill_after=options.kill_after,
            )
        scope = (
            self._stack.lambdas.intercept("ExecutorFunction", self._interceptor)
            if self._interceptor is not None
            else nullcontext()
        )
        with scope:
            self._drive(run, detail)
        self._stack.lambdas.wait_idle(timeout=30)
        self._catch_up(run)
        if self._interceptor is not None:
            run.out_of_band = dict(self._interceptor.drifted)
        run.requests = list(self._requests.values())
        if run.plan:
            for name in options.policy.unused(self._requests, run.plan):
                run.notes.append(
                    f"{name} was named on the command line, but this mission had no such change or request"
                )
        run.finished_at = time.monotonic()
        return run

    def _drive(self, run: MissionRun, detail: dict[str, Any]) -> None:
        from aegis.missions_keys import mission_id_for_event

        fired_at = datetime.now(UTC)
        run.event_id = self._stack.fire_scan(detail)
        run.mission_id = mission_id_for_event(run.event_id)
        scope = f"checks {', '.join(detail['checks'])}" if detail.get("checks") else "every check"
        self._say(
            "scan",
            f"event {run.event_id[:8]}… (source aegis.scan, {scope}{', dry run' if detail.get('dry_run') else ''}) "
            f"→ rule → AgentScanFunction: mission {run.mission_id}",
        )
        deadline = time.monotonic() + self._options.timeout_seconds
        while True:
            began = time.perf_counter()
            # The phone is looked at after each of the poll's requests to the stack (it is in-process, and cheap):
            # a request waits for its answer about one request's time, not a whole poll's, when the stack is busy.
            item = self._poll_mission(run, fired_at)
            self._look_at_phone(run)
            self._poll_trail(run)
            self._look_at_phone(run)
            self._maybe_kill(run)
            ended = self._ended(run, item)
            if not ended:
                self._look_at_phone(run)
            self.stats.polls += 1
            self.stats.poll_seconds += time.perf_counter() - began
            if ended:
                run.ended = not run.problems
                return
            if time.monotonic() > deadline:
                run.problems.append(f"the mission did not end within {self._options.timeout_seconds:.0f} s")
                self._say("timeout", run.problems[-1])
                return
            if time.monotonic() - self._last_news > self._options.quiet_seconds:
                self._say("waiting", self._waiting_for(run))
            time.sleep(self._options.poll_seconds)

    # -- the mission item and the plan ----------------------------------------------------------------------------

    def _poll_mission(self, run: MissionRun, fired_at: datetime) -> dict[str, Any] | None:
        item = self._missions.get_item(Key={"mission_id": run.mission_id}, ConsistentRead=True).get("Item")
        if item is None:
            scans = [r for r in self._stack.lambdas.records("AgentScanFunction") if r.started_at >= fired_at]
            if scans and self._stack.lambdas.wait_idle(0):
                failed = next((r for r in scans if r.error_type), None)
                if failed is not None:
                    run.problems.append(f"the agent's scan failed: {failed.error_type}: {failed.error_message}")
                else:
                    refused = self._refusal(run)
                    run.problems.append(refused or "the agent created no mission for the scan event")
                self._say("failed", run.problems[-1])
            return None
        status = str(item.get("status"))
        if item.get("execution_arn") and run.execution_arn is None:
            run.execution_arn = str(item["execution_arn"])
        if status != run.status:
            run.status = status
            self._on_status(run, item)
        if run.execution_arn is not None and not run.plan:
            self._load_plan(run)
        return dict(item)

    def _refusal(self, run: MissionRun) -> str | None:
        for entry in read_trail(self._audit, run.mission_id):
            if entry.get("action") == "mission.refused":
                return "the kill switch is engaged: the agent refused to start a mission (re-arm it first)"
        return None

    def _on_status(self, run: MissionRun, item: dict[str, Any]) -> None:
        counts = item.get("counts") or {}
        if run.status == "scanning":
            self._say("scan", "the agent is scanning the account (read-only)")
        elif run.status == "awaiting_approval":
            self._say(
                "plan",
                f"{counts.get('findings', '?')} findings, {counts.get('changes', '?')} changes proposed; "
                f"execution {str(run.execution_arn).rsplit(':', 1)[-1]} asks for their approval, request by request "
                "(a batch's one push approves many changes)",
            )
        elif run.status == "completed" and not run.plan:
            self._say(
                "plan",
                f"{counts.get('findings', '?')} findings; plan {item.get('plan_status', '?')}: "
                f"{counts.get('changes', 0)} changes, nothing requested",
            )
        elif run.status == "failed":
            self._say("failed", f"mission failed: {item.get('error', 'unknown error')}")

    def _load_plan(self, run: MissionRun) -> None:
        try:
            execution = self._sfn.describe_execution(executionArn=run.execution_arn)
        except Exception:
            return
        changes = [parse_change(raw) for raw in json.loads(execution.get("input") or "{}").get("changes", [])]
        if not changes:
            # The changes may travel only inside their requests: the plan is theirs, in request order.
            self._load_requests(run)
            changes = [change for request in self._requests.values() for change in request.changes]
        if not changes:
            return
        run.plan = changes
        lines = []
        for change in changes:
            lines.append(
                f"          {self._label(run, change.change_id)} {change.risk.value:<6} {change.check_id:<34} "
                f"{change.summary()}"
            )
        self._progress.lines(lines)

    def _load_requests(self, run: MissionRun) -> None:
        """The plan of approval requests, from ValidatePlan's output in the execution's history (once it exists)."""
        if self._requests_from_plan or run.execution_arn is None:
            return
        try:
            output = validated_output(self._sfn, run.execution_arn)
        except Exception:
            return
        if output is None:
            return
        self._requests_from_plan = True
        requests = planned_requests(output.get("requests"))
        self._requests = {request.request_id: request for request in requests}
        if requests and run.plan:
            batches = [r for r in requests if r.root is not None]
            self._say(
                "plan",
                f"{len(run.plan)} changes in {len(requests)} approval requests: {len(batches)} "
                f"batch{'' if len(batches) == 1 else 'es'} ({sum(len(r.changes) for r in batches)} changes), "
                f"{len(requests) - len(batches)} single",
            )
            self._progress.lines(
                [
                    f"          {request.label}: {', '.join(self._label(run, c.change_id) for c in request.changes)}"
                    for request in requests
                ]
            )

    def _request_of(self, change_id: str) -> PlannedRequest | None:
        return next((r for r in self._requests.values() if any(c.change_id == change_id for c in r.changes)), None)

    def _changes_of(self, run: MissionRun, details: dict[str, Any]) -> list[str]:
        """The changes an approval record is about: its change id, else the changes of the request it names."""
        change_id = details.get("change_id")
        if isinstance(change_id, str):
            return [change_id]
        items = details.get("items")
        if isinstance(items, list):
            return [str(item["change_id"]) for item in items if isinstance(item, dict) and "change_id" in item]
        request = self._requests.get(str(details.get("request_id")))
        return [change.change_id for change in request.changes] if request is not None else []

    def _remember_request(self, run: MissionRun, details: dict[str, Any]) -> None:
        """A request the approval function recorded and the plan did not say (its ValidatePlan output unread)."""
        request_id = details.get("request_id")
        if not isinstance(request_id, str) or request_id in self._requests:
            return
        by_id = {change.change_id: change for change in run.plan}
        changes = tuple(by_id[c] for c in self._changes_of(run, details) if c in by_id)
        if not changes:
            return
        root = details.get("merkle_root")
        self._requests[request_id] = PlannedRequest(
            request_id=request_id,
            kind=str(details.get("request_kind") or ("batch" if root else "single")),
            root=str(root) if root else None,
            approvers=tuple(str(sub) for sub in details.get("approvers") or ()),
            changes=changes,
        )

    def _label(self, run: MissionRun, change_id: str) -> str:
        for index, change in enumerate(run.plan, start=1):
            if change.change_id == change_id:
                width = len(str(len(run.plan)))
                return f"[{index:>{width}}/{len(run.plan)}]"
        return f"[{change_id}]"

    # -- the audit trail --------------------------------------------------------------------------------------------

    def _cursor(self, run: MissionRun) -> TrailCursor:
        if self._trail is None or self._trail.mission_id != run.mission_id:
            self._trail = TrailCursor(self._audit, run.mission_id, self.stats)
        return self._trail

    def _poll_trail(self, run: MissionRun) -> None:
        """What the trail got since the last poll: from the chain cursor while the chain can be relied on (see the
        module docstring), else from the whole trail, as a stack without a working chainer allows."""
        cursor = self._cursor(run)
        for entry in cursor.linked() if self._chain.usable() else cursor.whole():
            self._on_trail(run, entry)

    def _catch_up(self, run: MissionRun) -> None:
        """At the end: the records written last, once the chainer linked them (within CATCH_UP_DRAIN_SECONDS), then
        one read of the whole trail for any record the chain never linked (no chainer, a failing one, or one still
        behind). The cursor alone would miss those, and the driver must not lose a record: this read is what makes
        the chain cursor safe to use in the loop, at the cost of reading the trail once more per mission."""
        if not run.mission_id:
            return
        began = time.perf_counter()
        cursor = self._cursor(run)
        chained = self._chain.usable()
        if chained:
            drain = getattr(self._stack, "drain_streams", None)
            if drain is not None:
                drain(CATCH_UP_DRAIN_SECONDS)
            for entry in cursor.linked():
                self._on_trail(run, entry)
        late = cursor.whole()
        self.stats.caught_up += len(late)
        if late and chained:
            self._say(
                "audit",
                f"{len(late)} audit record{'' if len(late) == 1 else 's'} not linked into the mission's chain by its "
                "end: shown from the whole trail",
            )
        for entry in late:
            self._on_trail(run, entry)
        self.stats.catch_up_seconds = time.perf_counter() - began

    def _on_trail(self, run: MissionRun, entry: dict[str, Any]) -> None:
        actor, action, outcome = entry.get("actor"), entry.get("action"), str(entry.get("outcome"))
        try:
            details = json.loads(entry.get("details") or "{}")
        except ValueError:
            details = {}
        change_id = details.get("change_id")
        label = self._label(run, change_id) if isinstance(change_id, str) else ""
        if actor == "approval" and action in ("approval.requested", "approval.decided"):
            self._remember_request(run, details)
            about = self._changes_of(run, details)
            request = self._requests.get(str(details.get("request_id")))
            if request is not None and request.root is not None:
                label = request.label
        else:
            about = [change_id] if isinstance(change_id, str) else []
        if actor == "approval" and action == "approval.requested" and about:
            self._requested.update(about)
            if self._phone is None:
                change = next((c for c in run.plan if c.change_id == change_id), None)
                message = details.get("binding_message") or (
                    change.binding_message() if change is not None else change_id
                )
                shown = (
                    f"root {str(details.get('merkle_root'))[:12]}…, {len(about)} changes"
                    if details.get("merkle_root")
                    else f"digest {str(details.get('change_digest', ''))[:12]}…"
                )
                self._say(
                    "waiting",
                    f"{label} for {details.get('approver_sub')} to answer on their phone: «{message}» "
                    f"({shown}, until {details.get('expires_at')})",
                )
        elif action == "approval.decided" and about:
            for decided in about:
                # Under the two-person rule one refusal decides; a later approval does not undo it.
                if self._decided.get(decided) in (None, "approved"):
                    self._decided[decided] = outcome
            if outcome == "approved":
                if self._phone is None:
                    self._say("approved", f"{label} by {details.get('approver_sub')} at {details.get('approved_at')}")
            else:
                reason = details.get("reason") or details.get("error") or ""
                self._say(outcome, f"{label} {reason}".rstrip())
        elif action == "executor.result" and isinstance(change_id, str):
            self._finished.add(change_id)
            result = details.get("result") or {}
            reason = result.get("reason") or ""
            drift = self._interceptor.drifted.get(change_id) if self._interceptor is not None else None
            extra = f" (out of band: {drift})" if drift and outcome == "drift" else ""
            self._say(outcome, f"{label} {reason}{extra}".rstrip())
        elif actor == "killswitch" and action == "mission.halted":
            self._say(
                "halted",
                f"the kill switch stopped execution {run.mission_id} and failed "
                f"{details.get('approvals_failed', 0)} waiting approvals",
            )
        elif actor == "agent" and action == "mission.halted":
            self._say("halted", "the agent resumed after the kill switch: mission halted, no re-scan")
        elif actor == "agent" and action == "mission.report":
            totals = details.get("totals") or {}
            self._say(
                "resume",
                f"the agent re-scanned the touched resources: {totals.get('verified_fixed', 0)} verified fixed, "
                f"{totals.get('applied', 0)} applied; report stored ({details.get('report_pages', '?')} page)",
            )
        elif actor == "agent" and action == "mission.completed":
            self._say("done", "mission completed" + ("" if outcome == "proposed" else f" (plan {outcome})"))
        elif actor == "agent" and action == "mission.failed":
            self._say("failed", f"mission failed: {outcome}")

    def _waiting_for(self, run: MissionRun) -> str:
        if run.status in ("unknown", "scanning"):
            return "for the agent's scan and plan"
        if not run.plan:
            return f"for the mission (status {run.status})"
        undecided = self._requested - set(self._decided)
        answered = undecided & set(run.answers)
        on_phone = len(undecided - answered)
        executing = len({c for c, d in self._decided.items() if d == "approved"} - self._finished)
        not_yet = len(run.plan) - len(self._requested)
        parts = []
        if on_phone:
            whom = "the approver" if self._phone is not None else self._approver_sub
            parts.append(f"{on_phone} on the phone of {whom}")
        if answered:
            parts.append(f"{len(answered)} answered on the phone, for the approval function's next poll")
        if executing:
            parts.append(f"{executing} approved, executing")
        if not_yet:
            parts.append(f"{not_yet} not yet requested (at most MapMaxConcurrency at a time)")
        return "for " + ("; ".join(parts) if parts else "the state machine to resume the agent")

    # -- the phone --------------------------------------------------------------------------------------------------

    def _look_at_phone(self, run: MissionRun) -> None:
        if self._phone is not None:
            self._answer_phone(run)

    def _answer_phone(self, run: MissionRun) -> None:
        assert self._phone is not None
        try:
            pending = self._phone.pending()
        except Exception as error:
            self._say("phone", f"cannot read the phone: {error}")
            return
        for request in pending:
            if request.auth_req_id in self._handled_requests:
                continue
            if not run.plan and run.execution_arn is None:
                run.execution_arn = self._execution_arn(run)
            if not run.plan and run.execution_arn is not None:
                self._load_plan(run)
            self._load_requests(run)
            planned, changes = self._match(run, request)
            # A request id named on the command line needs the request known, not only its change.
            unplaced = planned is None and self._options.policy.names_requests
            if not changes or unplaced:
                first = self._first_unmatched.setdefault(request.auth_req_id, time.monotonic())
                if not run.plan or time.monotonic() - first < UNMATCHED_GRACE_SECONDS:
                    continue  # the plan or the request's record is not readable yet: answer on a later poll
            self._handled_requests.add(request.auth_req_id)
            self._answer(run, request, planned, changes)

    def _match(self, run: MissionRun, request: PhoneRequest) -> tuple[PlannedRequest | None, list[ChangeBase]]:
        """The plan's request and changes this phone request asks about: a batch by its root (recomputed from the
        plan's changes: the count must agree too), a single change by its digest. Nothing when it matches nothing."""
        if request.is_batch:
            for planned in self._requests.values():
                if (
                    planned.root == request.merkle_root
                    and request.count in (None, len(planned.changes))
                    and merkle_root(change.digest for change in planned.changes) == planned.root
                ):
                    return planned, list(planned.changes)
            return None, []
        change = request.matching_change(run.plan)
        if change is None:
            return None, []
        return self._request_of(change.change_id), [change]

    def _execution_arn(self, run: MissionRun) -> str:
        machine = self._stack.state_machine_arn()
        return machine.replace(":stateMachine:", ":execution:", 1) + f":{run.mission_id}"

    def _answer(
        self, run: MissionRun, request: PhoneRequest, planned: PlannedRequest | None, changes: list[ChangeBase]
    ) -> None:
        assert self._phone is not None
        request_id = planned.request_id if planned is not None else None
        label = planned.label if planned is not None and planned.root is not None else ""
        if len(changes) == 1:
            label = f"{self._label(run, changes[0].change_id)}{' ' + request_id if request_id else ''}"
        if not changes:
            answer, why = Answer.DENY, "the request matches no change or request of this mission's plan"
            label = "[?]"
        elif request_id is not None and request_id in run.request_answers:
            # The other phone of a two-person request: the same answer (one denial denies the request anyway).
            answer, why = run.request_answers[request_id]
        else:
            scripted = self._options.policy.answer_for_request(request_id, changes)
            if scripted is not None:
                answer, why = scripted
                if answer is Answer.DENY and why.startswith("--drift"):
                    run.notes.append(f"{label or request_id} was denied: {why}")
            elif self._options.approver is not None:
                self._say("phone", f"{label} asks the approver:")
                answer, why = self._options.approver.ask(request, changes), "answered at the terminal"
            else:
                answer, why = Answer.DENY, "nobody to ask"
        shown = (
            f"root #{str(request.merkle_root)[:6]} = plan's {len(changes)} changes"
            if request.is_batch and changes
            else f"digest {request.digest[:12]}… = plan"
            if changes and request.digest
            else "no digest"
        )
        whose = f" on {request.sub}'s phone" if len(getattr(self._phone, "subs", ())) > 1 else ""
        try:
            self._phone.answer(request, answer)
        except Exception as error:
            self._say("phone", f"{label} «{request.binding_message}»{whose}: could not {answer.value}: {error}")
            return
        for change in changes:
            run.answers[change.change_id] = (answer, why)
        if request_id is not None:
            run.request_answers[request_id] = (answer, why)
        verb = {Answer.APPROVE: "approve", Answer.DENY: "deny", Answer.EXPIRE: "let it expire"}[answer]
        self._say("phone", f"{label} «{request.binding_message}»{whose} {shown} → {verb} ({why})")

    # -- the kill switch --------------------------------------------------------------------------------------------

    def _maybe_kill(self, run: MissionRun) -> None:
        wanted = self._options.kill_after
        if wanted is None or run.kill_switch is not None or self._interceptor is None:
            return
        applied = self._interceptor.applied_count()
        if applied < wanted:
            return
        reason = f"aegis-local demo: --kill-after {wanted}"
        self._say("kill", f"{applied} changes applied: triggering KillSwitchFunction ({reason})")
        try:
            report = invoke_kill_switch(
                self._stack.client("lambda"),
                self._stack.physical_id("KillSwitchFunction"),
                "trigger",
                reason,
                KILL_REQUESTER,
            )
        except Exception as error:
            run.problems.append(str(error))
            self._say("kill", run.problems[-1])
            self._interceptor.mark_killed()
            return
        self._interceptor.mark_killed()
        steps = [{"step": s.get("step"), "ok": s.get("ok"), "reason": s.get("reason")} for s in report.get("steps", [])]
        run.kill_switch = KillSwitchSummary(
            operation_id=str(report.get("operation_id", "")),
            requested_by=str(report.get("requested_by", KILL_REQUESTER)),
            reason=str(report.get("reason", reason)),
            triggered_at=str(report.get("at", datetime.now(UTC).isoformat())),
            after_applied=applied,
            ok=bool(report.get("ok")),
            steps=steps,
        )
        failed = [str(s["step"]) for s in steps if not s["ok"]]
        self._say(
            "kill",
            f"halted={report.get('halted')}: {', '.join(str(s['step']) for s in steps if s['ok'])} done"
            + (f"; failed: {', '.join(failed)}" if failed else ""),
        )

    # -- the end ----------------------------------------------------------------------------------------------------

    def _ended(self, run: MissionRun, item: dict[str, Any] | None) -> bool:
        if run.problems:
            return True
        if item is None:
            return False
        execution_running = False
        if run.execution_arn is not None:
            try:
                run.execution_status = str(self._sfn.describe_execution(executionArn=run.execution_arn)["status"])
            except Exception:
                run.execution_status = None
            execution_running = run.execution_status == "RUNNING"
        idle = self._stack.lambdas.wait_idle(0)
        if run.status in TERMINAL_STATUSES and not execution_running and idle:
            return True
        # A stopped execution never resumes the agent: the mission item keeps its last status. So does one stopped
        # by hand (ABORTED), or that timed out or failed: the mission is over all the same.
        if run.execution_status in ENDED_WITHOUT_RESUME and idle:
            return True
        return run.kill_switch is not None and run.execution_arn is not None and not execution_running and idle

    def _say(self, label: str, text: str) -> None:
        self._last_news = time.monotonic()
        self._progress.step(label, text)


def validated_output(sfn: Any, execution_arn: str) -> dict[str, Any] | None:
    """What the validator answered a mission's execution (its requests), from the execution's history; None until
    the ValidatePlan task has ended."""
    query: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 200}
    while True:
        page = sfn.get_execution_history(**query)
        for event in page.get("events", []):
            exited = event.get("stateExitedEventDetails") or {}
            if event.get("type") == "TaskStateExited" and exited.get("name") == VALIDATE_STATE:
                output = json.loads(exited.get("output") or "{}")
                return output if isinstance(output, dict) else None
        if not page.get("nextToken"):
            return None
        query["nextToken"] = page["nextToken"]
