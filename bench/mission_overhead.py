"""Mission overhead: with approvals answered at once, how long a mission takes from the scan event to the end of the
resume, for plans of 10, 50 and 200 changes on the local stack, and where that time goes.

For each size a fresh `LocalStack` (moto server, Auth0 emulator, every function of template.yaml) gets exactly N
remediable findings: N security groups, each with one SSH rule open to 0.0.0.0/0, scanned with that one check
(`ec2-admin-port-open-ipv4`, medium risk: batched under the default ApprovalBatchMaxRisk), so nothing else in the
account can add a change; the run refuses to report a mission whose plan is not N changes or whose changes were not
all applied. The stack is configured the way `aegis-local demo` configures it (its emulator helper and parameters:
CIBA interval 1 s, share cap 1), with MaxChangesPerMission = N, MapMaxConcurrency as high as the template allows (it
bounds how many requests wait for approval, and how many changes of a request execute, at once), one approver, and
Auth0's real limit of 5 backchannel requests per user and minute, at the emulator and in the approval function's
pacer (ApproverPushesPerMinute 5): the pacing is real, in real time. `MissionDriver` fires the scan through
EventBridge and answers each request on the emulated phone as soon as it sees it (`--approve all`).

The approvals table gives, per mission, the pushes (CIBA requests, one per request and approver) and the approval
wall time: from the first request reaching the phone to the last decision recorded, i.e. the approval traffic the
approver lives through, rate-limit waits included; beside it what one push per change would cost at the same limit.
A size above the template's MaxChangesPerMission cannot run (the validator refuses the plan): its row is
extrapolated from the largest size that ran, and labelled so: the pushes are the planner's own count for that many
such changes (`aegis.approvals.requests.plan_requests`, exact), the wall time is the pacing those pushes need plus
what the measured mission's approvals took besides their own pacing, and the validator's output (the state machine's
largest payload) is computed for that plan. `--batch-max-changes` makes batches smaller, so that a mission within the
cap sends enough pushes to wait for Auth0's window for real (100 changes in batches of 12: 9 pushes, one minute's
wait), which checks the extrapolation's pacing against a measurement.

Real time on the development machine: the default sizes (10, 50, and 100 for 200) take about 2.5 minutes with the
stacks' start; `--sizes 100 --batch-max-changes 12` about 2 minutes, one of them waiting for Auth0's window.

Stage boundaries are real timestamps, never estimates: the event is stamped when it is put on the bus; the
execution history gives the execution start and each change's RequestApproval and ApplyChange states; the emulator
says when each request reached the phone and the bench's phone when it answered; the audit trail says when the
approval function decided and when the agent completed the mission. The wall-clock table splits event -> completed
into scan+plan (event -> execution started), then the approve-and-apply window, instant by instant: execution while
an executor invocation runs, else approvals while a change waits for its approval (request, phone, CIBA polling),
else state machine (hand-offs between states), and finally resume (last executor result -> mission completed).
The per-change table gives each change's own path through those stages, which overlap across changes.

The driver's table is the issue's flat line: what `MissionDriver`'s polling costs per change, beside the smallest
size's figure. The Audit table queries its thread makes and the items they return are counted at botocore's own events
(whatever the driver's code), with its thread's CPU time, the mean duration of one poll (its loop, the pause between
polls excluded: the driver's own count), and "on phone" (a request on the phone -> its answer, which one poll's
duration delays). Goal: the items read and the CPU time per change stay within x1.5 of the smallest size's (flat),
and "on phone" under the poll period plus one poll. The poll's duration is shown, not judged: a poll is a few requests
to moto whatever the size, each as slow as the process's load makes it. Since the driver reads the trail on the
chain's positions, the items read per change are about twice the records per change (each once as it is linked, and
the whole trail once at the mission's end); re-reading the whole trail every poll made them grow with the mission.

Everything runs in one Python process on loopback, on a shared machine: the figures compare sizes and stages of this
code with each other; they are not AWS or Auth0 latencies.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from aegis.approvals.policy import ApprovalPolicy as DeploymentApprovalPolicy
from aegis.approvals.requests import plan_requests
from aegis.audit import read_trail
from aegis.catalogue import ChangeBase
from aegis.named_errors import ConfigurationError
from aegis.reporting.assembly import pushes, request_changes
from aegis_local.auth0 import DEFAULT_APPROVER_SUB
from aegis_local.aws.logs import LogCapture
from aegis_local.aws.template import load_template
from aegis_local.scenario.demo import DEMO_CIBA_INTERVAL_SECONDS, DEMO_PARAMETERS, demo_emulator_config
from aegis_local.scenario.driver import DriveOptions, MissionDriver, MissionRun
from aegis_local.scenario.phone import Answer, ApprovalPolicy, EmulatedPhone, PhoneRequest
from bench.common import TEMPLATE, add_sizes, argument_parser, chosen_sizes, median, print_table

CHECK = "ec2-admin-port-open-ipv4"
PLAN_SIZES = (10, 50, 200)
SMALL_PLAN_SIZES = (3,)
# Step Functions' quota for an execution's input and for any state's input or output.
PAYLOAD_LIMIT_BYTES = 256 * 1024
# Auth0's own limit on backchannel requests per user and minute (the emulator's default), and its window.
AUTH0_REQUESTS_PER_USER_PER_MINUTE = 5
RATE_WINDOW_SECONDS = 60.0
PACING_PARAMETER = "ApproverPushesPerMinute"
BATCH_SIZE_PARAMETER = "ApprovalBatchMaxChanges"
APPROVAL_STATE = "RequestApproval"
EXECUTOR_STATE = "ApplyChange"
# The issue's goals for a 200-change mission with one approver at Auth0's limit.
GOAL_CHANGES = 200
GOAL_PUSHES = 10
GOAL_APPROVAL_SECONDS = 180.0
# The goal for the driver: its per-change overhead stays flat from the smallest size to the largest, read as
# within this factor of the smallest size's figure.
GOAL_FLAT_RATIO = 1.5
# The driver's per-change figures the flat goal judges: Audit items read, and its thread's CPU time.
JUDGED = ("items", "cpu")


class BenchError(RuntimeError):
    """The mission did not run as the benchmark needs (wrong plan, a change not applied, a missing timestamp)."""


# ----------------------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True, slots=True)
class StackPlan:
    """How the stack is configured for a plan of `changes` changes."""

    changes: int
    concurrency: int
    parameters: dict[str, str]
    # MaxChangesPerMission's MaxValue: the validator refuses a larger plan, so no larger mission can run.
    template_cap: int
    requests_per_minute: int
    batch_max_changes: int = 0  # ApprovalBatchMaxChanges of the stack (0: the template declares none)


def _parameter_bounds(template: Mapping[str, Any], name: str) -> tuple[int, int]:
    spec = (template.get("Parameters") or {}).get(name)
    if spec is None:
        raise BenchError(f"template.yaml declares no parameter {name}")
    return int(spec.get("MinValue", 1)), int(spec.get("MaxValue", 2**31 - 1))


def template_cap(template: Mapping[str, Any]) -> int:
    """The largest plan a deployment runs: MaxChangesPerMission's MaxValue."""
    return _parameter_bounds(template, "MaxChangesPerMission")[1]


def stack_plan(
    changes: int,
    template: Mapping[str, Any],
    concurrency: int | None = None,
    batch_max_changes: int | None = None,
) -> StackPlan:
    """Parameters for a mission of `changes` changes: no blast-radius cap in the way, `concurrency` parallel
    requests and changes (the template's maximum by default), Auth0's real per-approver limit, and batches of at most
    `batch_max_changes` (the template's default when None)."""
    if changes < 1:
        raise BenchError("a mission needs at least one change")
    low, high = _parameter_bounds(template, "MapMaxConcurrency")
    chosen = high if concurrency is None else concurrency
    if not low <= chosen <= high:
        raise BenchError(f"MapMaxConcurrency must be between {low} and {high} (template.yaml), not {chosen}")
    cap = template_cap(template)
    if changes > cap:
        raise BenchError(
            f"{changes} changes: above MaxChangesPerMission's MaxValue {cap}, the validator refuses the plan "
            "(the bench extrapolates such a size from the largest one that runs)"
        )
    parameters = {
        **DEMO_PARAMETERS,
        "MaxChangesPerMission": str(changes),
        "MaxSharePerResourceType": "1",
        "MapMaxConcurrency": str(chosen),
    }
    if PACING_PARAMETER in (template.get("Parameters") or {}):
        parameters[PACING_PARAMETER] = str(AUTH0_REQUESTS_PER_USER_PER_MINUTE)
    if batch_max_changes is not None:
        low, high = _parameter_bounds(template, BATCH_SIZE_PARAMETER)
        if not low <= batch_max_changes <= high:
            raise BenchError(f"{BATCH_SIZE_PARAMETER} must be between {low} and {high} (template.yaml)")
        parameters[BATCH_SIZE_PARAMETER] = str(batch_max_changes)
    batch_spec = (template.get("Parameters") or {}).get(BATCH_SIZE_PARAMETER) or {}
    batch_size = int(parameters.get(BATCH_SIZE_PARAMETER, batch_spec.get("Default", 0)))
    return StackPlan(
        changes=changes,
        concurrency=chosen,
        parameters=parameters,
        template_cap=cap,
        requests_per_minute=AUTH0_REQUESTS_PER_USER_PER_MINUTE,
        batch_max_changes=batch_size,
    )


# ----------------------------------------------------------------------------------------------------------------
# the phone, with a clock


class TimedPhone(EmulatedPhone):
    """The emulated phone, remembering when each request reached it (the emulator's bc-authorize time) and when it
    was answered."""

    def __init__(self, emulator: Any, sub: str) -> None:
        super().__init__(emulator, sub)
        self._lock = threading.Lock()
        self.requested_at: dict[str, datetime] = {}  # auth_req_id -> on the phone
        self.answered_at: dict[str, datetime] = {}  # auth_req_id -> answered
        self.shown: dict[str, str] = {}  # auth_req_id -> the change digest, or the batch's Merkle root, it shows

    def pending(self) -> list[PhoneRequest]:
        found = self._emulator.pending(self.sub)
        requests = [PhoneRequest.from_pending(raw, sub=self.sub) for raw in found]
        with self._lock:
            for raw, request in zip(found, requests, strict=True):
                if request.auth_req_id not in self.requested_at:
                    self.requested_at[request.auth_req_id] = _parse_time(str(raw["requested_at"]))
                    shown = request.merkle_root or request.digest
                    if shown:
                        self.shown[request.auth_req_id] = shown
        return requests

    def answer(self, request: PhoneRequest, answer: Answer) -> None:
        super().answer(request, answer)
        with self._lock:
            self.answered_at[request.auth_req_id] = datetime.now(UTC)

    def by_shown(self) -> dict[str, tuple[datetime, datetime | None]]:
        """Change digest or batch root -> (on the phone, answered)."""
        with self._lock:
            return {
                shown: (self.requested_at[request_id], self.answered_at.get(request_id))
                for request_id, shown in self.shown.items()
            }

    def first_on_phone(self) -> datetime | None:
        with self._lock:
            return min(self.requested_at.values(), default=None)


class _Progress:
    """The driver's progress lines: kept for the error message, and shown on `stream` when given."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.kept: list[str] = []
        self._lock = threading.Lock()

    def step(self, label: str, text: str) -> None:
        self.lines([f"[{time.monotonic() - self.started:6.1f}s] {label:<8} {text}"])

    def lines(self, lines: Iterable[str]) -> None:
        with self._lock:
            for line in lines:
                self.kept.append(line)
                if self.stream is not None:
                    print(line, file=self.stream, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# what one mission measured


@dataclass(slots=True)
class ChangeTiming:
    """One change's path, as timestamps."""

    change_id: str
    approval_entered: datetime
    on_phone: datetime
    answered: datetime
    decided: datetime
    approval_exited: datetime
    executor_entered: datetime
    executor_exited: datetime
    outcome: str
    executor_marks_ms: dict[str, float] = field(default_factory=dict)

    def stages(self) -> dict[str, float]:
        return {
            "to phone": _seconds(self.approval_entered, self.on_phone),
            "on phone": _seconds(self.on_phone, self.answered),
            "CIBA polling": _seconds(self.answered, self.decided),
            "hand-off": _seconds(self.decided, self.executor_entered),
            "executor": _seconds(self.executor_entered, self.executor_exited),
        }

    @property
    def executor_pipeline(self) -> float:
        """The executor's own time from its first step to its result (its `result` mark), in seconds."""
        return self.executor_marks_ms.get("result", 0.0) / 1000

    @property
    def latency(self) -> float:
        return _seconds(self.approval_entered, self.executor_exited)


@dataclass(slots=True)
class MissionTiming:
    mission_id: str
    changes: int
    findings: int
    concurrency: int
    event_at: datetime
    execution_started: datetime
    map_started: datetime
    completed: datetime
    per_change: list[ChangeTiming]
    execution_input_bytes: int
    largest_payload_bytes: int
    largest_payload_where: str
    stack_plan: StackPlan
    load_average: float
    build_seconds: float
    cpu_seconds: float  # this process's CPU time (every thread: moto, the emulator, the functions, the driver)
    driver_cpu_seconds: float  # the driver's own thread (client side of its polling)
    approvals: ApprovalTraffic
    driver: DriverOverhead
    sample_change: ChangeBase  # one change of the plan: the model of the changes an extrapolated size would hold

    @property
    def last_result(self) -> datetime:
        return max(change.executor_exited for change in self.per_change)

    @property
    def total(self) -> float:
        return _seconds(self.event_at, self.completed)

    def wall_split(self) -> dict[str, float]:
        """event -> completed in consecutive, non-overlapping parts (see the module docstring)."""
        window = sweep(
            self.execution_started,
            self.last_result,
            executing=[(c.executor_entered, c.executor_exited) for c in self.per_change],
            approving=[(c.approval_entered, c.approval_exited) for c in self.per_change],
        )
        return {
            "scan+plan": _seconds(self.event_at, self.execution_started),
            **window,
            "resume": _seconds(self.last_result, self.completed),
        }


@dataclass(frozen=True, slots=True)
class ApprovalTraffic:
    """What the approver lived through: the requests, the pushes, and the approval wall time."""

    requests: int
    batches: int
    pushes: int  # CIBA requests sent (`approval.requested` records): one per request and approver asked
    first_push: datetime  # the first request on the phone
    last_decision: datetime  # the last `approval.decided` record
    push_to_decision: float  # mean s from a request on the phone to its decision (answered at once)

    @property
    def wall_seconds(self) -> float:
        return _seconds(self.first_push, self.last_decision)


@dataclass(frozen=True, slots=True)
class DriverOverhead:
    """What the driver's polling cost over one mission (see the module docstring)."""

    records: int  # the mission's audit records at its end
    audit_queries: int  # Audit table queries (pages) made from the driver's thread
    audit_items: int  # the items they returned
    polls: int | None  # the driver's loop iterations (None: a driver that does not count them)
    poll_seconds: float | None  # their wall time, pauses excluded
    poll_period: float  # the pause between polls (DriveOptions.poll_seconds)
    catch_up_seconds: float | None = None  # the end's catch-up: the chainer linking the last records, one more read

    @property
    def mean_poll(self) -> float | None:
        if not self.polls or self.poll_seconds is None:
            return None
        return self.poll_seconds / self.polls


class AuditReads:
    """Counts the Audit table queries one thread makes, and the items they return, at botocore's events of the
    session its clients are made from (installed before the driver makes its table): independent of how the driver
    reads, so that drivers can be compared."""

    def __init__(self, session: Any, table_name: str) -> None:
        self._events = session.events
        self._table = table_name
        self._thread = threading.get_ident()
        self.queries = 0
        self.items = 0

    def __enter__(self) -> AuditReads:
        self._events.register("before-parameter-build.dynamodb.Query", self._named, unique_id=f"bench-{id(self)}-p")
        self._events.register("after-call.dynamodb.Query", self._counted, unique_id=f"bench-{id(self)}-c")
        return self

    def __exit__(self, *exc: object) -> None:
        self._events.unregister("before-parameter-build.dynamodb.Query", unique_id=f"bench-{id(self)}-p")
        self._events.unregister("after-call.dynamodb.Query", unique_id=f"bench-{id(self)}-c")

    def _named(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_table"] = params.get("TableName")

    def _counted(self, parsed: Mapping[str, Any], context: Mapping[str, Any], **_: Any) -> None:
        if threading.get_ident() == self._thread and context.get("bench_table") == self._table:
            self.queries += 1
            self.items += len(parsed.get("Items") or [])


def pacing_seconds(pushes: int, per_minute: int = AUTH0_REQUESTS_PER_USER_PER_MINUTE) -> float:
    """The least time between the first and the last of `pushes` requests to one approver under a sliding window of
    `per_minute` requests a minute: each block of `per_minute` waits one window after the previous block."""
    return RATE_WINDOW_SECONDS * ((pushes - 1) // per_minute) if pushes > 0 else 0.0


def sweep(
    start: datetime,
    end: datetime,
    *,
    executing: Sequence[tuple[datetime, datetime]],
    approving: Sequence[tuple[datetime, datetime]],
) -> dict[str, float]:
    """Split [start, end] instant by instant: "execution" while any executing interval covers it, else "approvals"
    while any approving interval does, else "state machine". The three add up to end - start."""
    points = sorted({start, end, *(t for pair in [*executing, *approving] for t in pair if start < t < end)})
    split = {"approvals": 0.0, "execution": 0.0, "state machine": 0.0}
    for left, right in itertools.pairwise(points):
        middle = left + (right - left) / 2
        if any(a <= middle < b for a, b in executing):
            stage = "execution"
        elif any(a <= middle < b for a, b in approving):
            stage = "approvals"
        else:
            stage = "state machine"
        split[stage] += _seconds(left, right)
    return split


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------------------------------------------
# reading the mission back


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**request)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        request["nextToken"] = page["nextToken"]


def _state_change_ids(details: Mapping[str, Any], key: str) -> list[str]:
    """The changes a state's input or output is about: ApplyChange's `change` (in) or result (out); RequestApproval's
    `request` (in: every item's change) or its approval (out: the change ids its hand-offs are sealed for)."""
    try:
        body = json.loads(details.get(key) or "{}")
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    change = body.get("change")
    if isinstance(change, dict):
        return [str(change.get("change_id"))]
    request = body.get("request")
    if isinstance(request, dict):
        items = request.get("items") or []
        return [str(item["change"]["change_id"]) for item in items if isinstance(item, dict) and "change" in item]
    handoffs = body.get("handoffs")
    if isinstance(handoffs, dict):
        return [str(change_id) for change_id in handoffs]
    # ApplyChange's output is the sanitized result, which names its change.
    return [str(body["change_id"])] if "change_id" in body else []


@dataclass(slots=True)
class _HistoryFacts:
    execution_started: datetime
    map_started: datetime
    entered: dict[tuple[str, str], datetime]  # (state, change id) -> timestamp
    exited: dict[tuple[str, str], datetime]
    largest_payload_bytes: int
    largest_payload_where: str


def read_history(events: Sequence[Mapping[str, Any]]) -> _HistoryFacts:
    """The state boundaries of each change, and the largest payload any event carried."""
    started = map_started = None
    entered: dict[tuple[str, str], datetime] = {}
    exited: dict[tuple[str, str], datetime] = {}
    largest, where = 0, ""
    for event in events:
        kind, at = str(event["type"]), _as_utc(event["timestamp"])
        if kind == "ExecutionStarted":
            started = at
        elif kind == "MapStateStarted" and map_started is None:
            map_started = at
        details: Mapping[str, Any] = next(
            (value for name, value in event.items() if name.endswith("EventDetails") and isinstance(value, Mapping)),
            {},
        )
        for key in ("input", "output"):
            size = len(str(details.get(key) or "").encode("utf-8"))
            if size > largest:
                largest, where = size, f"{details.get('name') or kind} {key}"
        name = details.get("name")
        # A request's approval is entered once per approver: a change waits from the first entry to the last exit.
        if kind.endswith("StateEntered") and name in (APPROVAL_STATE, EXECUTOR_STATE):
            for change_id in _state_change_ids(details, "input"):
                entered.setdefault((str(name), change_id), at)
        elif kind.endswith("StateExited") and name in (APPROVAL_STATE, EXECUTOR_STATE):
            for change_id in _state_change_ids(details, "output"):
                exited[(str(name), change_id)] = at
    if started is None or map_started is None:
        raise BenchError("the execution history has no ExecutionStarted or MapStateStarted event")
    return _HistoryFacts(started, map_started, entered, exited, largest, where)


def _as_utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else _parse_time(str(value))
    return moment.astimezone(UTC)


def _trail_facts(
    trail: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, datetime], dict[str, tuple[str, dict[str, float]]], datetime]:
    """From the audit trail: approval decided (per change: a batch's decision decides each of its changes), executor
    outcome and step marks, mission completed."""
    decided: dict[str, datetime] = {}
    results: dict[str, tuple[str, dict[str, float]]] = {}
    completed: datetime | None = None
    trail = list(trail)
    by_request = request_changes(trail)
    for entry in trail:
        action = entry.get("action")
        details = json.loads(str(entry.get("details") or "{}"))
        at = _parse_time(str(entry["at"]))
        if action == "approval.decided" and entry.get("actor") == "approval":
            about = [details["change_id"]] if "change_id" in details else by_request.get(details.get("request_id"), [])
            for change_id in about:
                decided[str(change_id)] = max(at, decided.get(str(change_id), at))
        elif action == "executor.result":
            marks = {str(k): float(v) for k, v in (details.get("timings_ms") or {}).items()}
            results[str(details["change_id"])] = (str(entry.get("outcome")), marks)
        elif action == "mission.completed" and entry.get("actor") == "agent":
            completed = at
    if completed is None:
        raise BenchError("the audit trail has no mission.completed entry")
    return decided, results, completed


# ----------------------------------------------------------------------------------------------------------------
# one mission


def build_open_groups(ec2: Any, count: int) -> list[str]:
    """`count` security groups in the default VPC, each with one SSH rule from 0.0.0.0/0 (one finding each)."""
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    groups = []
    for index in range(count):
        group_id = ec2.create_security_group(
            GroupName=f"bench-ssh-open-{index:04d}", Description="aegis bench: SSH open to the world", VpcId=vpc_id
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
        groups.append(group_id)
    return groups


def measure(
    changes: int,
    *,
    concurrency: int | None = None,
    timeout_seconds: float | None = None,
    progress: TextIO | None = None,
    batch_max_changes: int | None = None,
) -> MissionTiming:
    """One mission of exactly `changes` changes on a fresh local stack, every approval answered at once."""
    from aegis_local.aws.stack import LocalStack

    plan = stack_plan(changes, load_template(TEMPLATE), concurrency, batch_max_changes)
    emulator_config = demo_emulator_config(approvers=1).model_copy(
        update={"ciba_requests_per_user_per_minute": plan.requests_per_minute}
    )
    # Beyond the per-change work, the approvals wait for Auth0's window: one minute per 5 pushes after the first 5.
    timeout = timeout_seconds if timeout_seconds is not None else 180.0 + 5.0 * changes
    with (
        tempfile.TemporaryDirectory(prefix="aegis-bench-logs-") as logs,
        LogCapture(Path(logs)),
        LocalStack(emulator_config=emulator_config, parameters=plan.parameters) as stack,
    ):
        began = time.monotonic()
        build_open_groups(stack.client("ec2"), changes)
        problems = stack.preload_handlers()
        if problems:
            raise BenchError(f"handlers that cannot load: {problems}")
        build_seconds = time.monotonic() - began
        approver = str(stack.parameters["ApproverSubs"]).split(",")[0]
        phone = TimedPhone(stack.emulator, approver)
        if stack.emulator.config.ciba_requests_per_user_per_minute != plan.requests_per_minute:
            raise BenchError("the emulator is not at Auth0's per-user limit")
        shown = _Progress(progress)
        options = DriveOptions(policy=ApprovalPolicy(approve_all=True), timeout_seconds=timeout)
        approvers = [sub for sub in str(stack.parameters["ApproverSubs"]).split(",") if sub]
        if len(approvers) != 1:
            raise BenchError(f"the bench measures one approver; the stack names {len(approvers)}")
        detail = {"regions": [stack.identity.region], "checks": [CHECK]}
        # Counting starts before the driver makes its table: its client copies the session's handlers.
        with AuditReads(stack.session(), stack.physical_id("AuditTable")) as reads:
            driver = MissionDriver(stack, shown, options, phone, approver)
            load_average = os.getloadavg()[0]
            cpu_before, driver_before = time.process_time(), time.thread_time()
            event_at = datetime.now(UTC)
            # The driver polls in this thread; the functions, moto and the emulator run in threads of their own.
            run = driver.run(detail)
            cpu_seconds = time.process_time() - cpu_before
            driver_cpu_seconds = time.thread_time() - driver_before
        stats = getattr(driver, "stats", None)  # a driver that counts nothing of its own (the one before the cursor)
        overhead = DriverOverhead(
            records=0,  # the trail's length, once read back
            audit_queries=reads.queries,
            audit_items=reads.items,
            polls=getattr(stats, "polls", None),
            poll_seconds=getattr(stats, "poll_seconds", None),
            poll_period=options.poll_seconds,
            catch_up_seconds=getattr(stats, "catch_up_seconds", None),
        )
        measured = _Measured(event_at, load_average, build_seconds, cpu_seconds, driver_cpu_seconds, overhead)
        return _collect(stack, run, plan, phone, shown, measured)


@dataclass(frozen=True, slots=True)
class _Measured:
    event_at: datetime
    load_average: float
    build_seconds: float
    cpu_seconds: float
    driver_cpu_seconds: float
    driver: DriverOverhead


def _collect(
    stack: Any,
    run: MissionRun,
    plan: StackPlan,
    phone: TimedPhone,
    shown: _Progress,
    measured: _Measured,
) -> MissionTiming:
    def fail(message: str) -> BenchError:
        tail = "\n".join(shown.kept[-15:])
        return BenchError(f"{plan.changes} changes: {message}\nlast progress lines:\n{tail}")

    if not run.ended or run.status != "completed" or run.execution_arn is None:
        raise fail(f"the mission did not complete (status {run.status}; {'; '.join(run.problems) or 'no problem'})")
    resource = stack.session().resource("dynamodb")
    item = resource.Table(stack.physical_id("MissionsTable")).get_item(Key={"mission_id": run.mission_id})["Item"]
    counts = item.get("counts") or {}
    findings, planned = int(counts.get("findings", -1)), int(counts.get("changes", -1))
    if findings != plan.changes or planned != plan.changes:
        raise fail(f"expected {plan.changes} findings and changes, the mission has {findings} and {planned}")
    sfn = stack.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=run.execution_arn)
    execution_input = str(execution.get("input") or "")
    digests = {change.digest: change.change_id for change in run.plan}
    history = read_history(_history(sfn, run.execution_arn))
    trail = read_trail(resource.Table(stack.physical_id("AuditTable")), run.mission_id)
    decided, results, completed = _trail_facts(trail)
    # What the phone showed: a change's digest, or a batch's root (which stands for each change of the batch).
    covered = {digest: [change_id] for digest, change_id in digests.items()}
    covered.update({r.root: [c.change_id for c in r.changes] for r in run.requests if r.root is not None})
    on_phone = {change_id: times for shown, times in phone.by_shown().items() for change_id in covered.get(shown, [])}
    per_change = []
    for change_id in digests.values():
        try:
            requested, answered = on_phone[change_id]
            outcome, marks = results[change_id]
            if answered is None:
                raise fail(f"change {change_id} reached the phone but was never answered")
            timing = ChangeTiming(
                change_id=change_id,
                approval_entered=history.entered[(APPROVAL_STATE, change_id)],
                on_phone=requested,
                answered=answered,
                decided=decided[change_id],
                approval_exited=history.exited[(APPROVAL_STATE, change_id)],
                executor_entered=history.entered[(EXECUTOR_STATE, change_id)],
                executor_exited=history.exited[(EXECUTOR_STATE, change_id)],
                outcome=outcome,
                executor_marks_ms=marks,
            )
        except KeyError as missing:
            raise fail(f"change {change_id} has no timestamp for {missing}") from None
        if outcome != "applied":
            raise fail(f"change {change_id} ended {outcome}, not applied")
        per_change.append(timing)
    first_push = phone.first_on_phone()
    if first_push is None or not decided:
        raise fail("no request reached the phone, or none was decided")
    pushed = [
        (on, decided[ids[0]])
        for shown, (on, _) in phone.by_shown().items()
        if (ids := covered.get(shown, [])) and ids[0] in decided
    ]
    approvals = ApprovalTraffic(
        requests=len(run.requests) or len(pushed),
        batches=sum(1 for request in run.requests if request.root is not None),
        pushes=pushes(trail),
        first_push=first_push,
        last_decision=max(decided.values()),
        push_to_decision=statistics.fmean(_seconds(on, done) for on, done in pushed),
    )
    return MissionTiming(
        mission_id=run.mission_id,
        changes=plan.changes,
        findings=findings,
        concurrency=plan.concurrency,
        event_at=measured.event_at,
        execution_started=history.execution_started,
        map_started=history.map_started,
        completed=completed,
        per_change=per_change,
        execution_input_bytes=len(execution_input.encode("utf-8")),
        largest_payload_bytes=history.largest_payload_bytes,
        largest_payload_where=history.largest_payload_where,
        stack_plan=plan,
        load_average=measured.load_average,
        build_seconds=measured.build_seconds,
        cpu_seconds=measured.cpu_seconds,
        driver_cpu_seconds=measured.driver_cpu_seconds,
        approvals=approvals,
        driver=replace(measured.driver, records=len(trail)),
        sample_change=run.plan[0],
    )


# ----------------------------------------------------------------------------------------------------------------
# a size the template does not let run


class _BenchSettingsError(ConfigurationError):
    """The template's approval defaults do not make an approval policy (a template bug the bench names)."""

    error_name = "Bench.InvalidSettings"


@dataclass(frozen=True, slots=True)
class Extrapolation:
    """A plan of `changes` changes, above what a deployment runs: its approval requests as the planner makes them,
    and the approval wall time its pushes need at Auth0's limit, from the measured `basis` mission."""

    changes: int
    basis: MissionTiming
    requests: int
    batches: int
    pushes: int
    validate_output_bytes: int

    @property
    def beyond_pacing(self) -> float:
        """What the measured mission's approvals took besides waiting for Auth0's window: requests reaching the
        phone, CIBA polling, decisions recorded, under the load of its changes executing meanwhile."""
        measured = self.basis.approvals
        return max(0.0, measured.wall_seconds - pacing_seconds(measured.pushes))

    @property
    def wall_seconds(self) -> float:
        # The last push waits for the pacing; the rest is what the measured mission's approvals took besides.
        return pacing_seconds(self.pushes) + self.beyond_pacing


def deployment_policy(
    template: Mapping[str, Any], approver: str, parameters: Mapping[str, str] | None = None
) -> DeploymentApprovalPolicy:
    """The approval policy of a deployment with the template's defaults (or `parameters`) and one approver."""
    defaults = {name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()}
    defaults.update(parameters or {})
    environ = {
        "APPROVER_SUBS": approver,
        "APPROVAL_BATCH_MAX_RISK": defaults.get("ApprovalBatchMaxRisk", "medium"),
        "APPROVAL_BATCH_MAX_CHANGES": defaults.get("ApprovalBatchMaxChanges", "25"),
        "APPROVAL_TWO_PERSON_RISK": defaults.get("ApprovalTwoPersonRisk", "high"),
        "APPROVER_ROUTING": "",
        "APPROVAL_REVIEW_URL_BASE": "",
    }
    return DeploymentApprovalPolicy.from_env(environ, _BenchSettingsError)


def like(change: ChangeBase, count: int) -> list[ChangeBase]:
    """`count` distinct changes like `change` (the same kind, check and risk), each about a resource of its own."""
    fields = change.model_dump(exclude={"change_id", "kind"})
    return [
        type(change).propose(**{**fields, "resource_arn": f"{change.resource_arn}{index:04d}"})
        for index in range(count)
    ]


def extrapolate(changes: int, basis: MissionTiming, template: Mapping[str, Any], approver: str) -> Extrapolation:
    plan = like(basis.sample_change, changes)
    policy = deployment_policy(template, approver, basis.stack_plan.parameters)
    requests = plan_requests(basis.mission_id, plan, policy)
    # ValidatePlan's output, the state machine's largest state once it carries every change inside its request.
    output = json.dumps({"mission_id": basis.mission_id, "requests": [r.model_dump(mode="json") for r in requests]})
    return Extrapolation(
        changes=changes,
        basis=basis,
        requests=len(requests),
        batches=sum(1 for request in requests if request.kind == "batch"),
        pushes=sum(len(request.approvers) for request in requests),
        validate_output_bytes=len(output.encode("utf-8")),
    )


# ----------------------------------------------------------------------------------------------------------------
# the tables


def _s(value: float) -> str:
    return f"{value:,.2f}"


def _kb(size: int) -> str:
    return f"{size / 1024:,.1f}"


def _share(size: int, limit: int) -> str:
    return f"{100 * size / limit:.1f}% ({'under' if size < limit else 'OVER'})"


def _step_deltas(marks: Mapping[str, float]) -> dict[str, float]:
    """Cumulative executor marks (ms since the invocation began) -> time spent reaching each mark."""
    deltas: dict[str, float] = {}
    previous = 0.0
    for name, at in sorted(marks.items(), key=lambda item: item[1]):
        deltas[name] = at - previous
        previous = at
    return deltas


def _step_values(mission: MissionTiming, step: str) -> list[float]:
    deltas = (_step_deltas(change.executor_marks_ms) for change in mission.per_change)
    return [found[step] for found in deltas if step in found]


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _goals(changes: int, pushes: int, wall: float) -> str:
    if changes != GOAL_CHANGES:
        return ""
    verdicts = [
        f"pushes {'<=' if pushes <= GOAL_PUSHES else 'OVER'} {GOAL_PUSHES}",
        f"wall {'<=' if wall <= GOAL_APPROVAL_SECONDS else 'OVER'} {GOAL_APPROVAL_SECONDS / 60:.0f} min",
    ]
    return ", ".join(verdicts)


def approvals_report(missions: Sequence[MissionTiming], extrapolated: Sequence[Extrapolation] = ()) -> None:
    """Pushes per mission and approval wall time at Auth0's limit, with one push per change beside them."""
    rows: list[list[Any]] = []
    for m in missions:
        a = m.approvals
        rows.append(
            [
                m.changes,
                "measured",
                a.requests,
                a.batches,
                a.pushes,
                _s(a.wall_seconds),
                _minutes(a.wall_seconds),
                m.changes,
                _minutes(pacing_seconds(m.changes)),
                _goals(m.changes, a.pushes, a.wall_seconds),
            ]
        )
    for e in extrapolated:
        rows.append(
            [
                e.changes,
                f"EXTRAPOLATED from {e.basis.changes}",
                e.requests,
                e.batches,
                e.pushes,
                _s(e.wall_seconds),
                _minutes(e.wall_seconds),
                e.changes,
                _minutes(pacing_seconds(e.changes)),
                _goals(e.changes, e.pushes, e.wall_seconds),
            ]
        )
    print_table(
        f"Approvals at Auth0's limit ({AUTH0_REQUESTS_PER_USER_PER_MINUTE} requests per minute per approver), one "
        "approver answering at once: pushes per mission and approval wall time (first push -> last decision)",
        [
            "changes",
            "how",
            "requests",
            "batches",
            "pushes per mission",
            "approval wall time s",
            "m:ss",
            "pushes, one per change",
            "their pacing alone",
            f"goals at {GOAL_CHANGES}",
        ],
        rows,
    )
    for e in extrapolated:
        print(
            f"{e.changes} changes EXTRAPOLATED (MaxChangesPerMission allows at most {e.basis.stack_plan.template_cap}, "
            f"so no such mission runs): {e.pushes} pushes is the planner's count for {e.changes} changes like the "
            f"measured mission's ({e.basis.sample_change.kind}, risk {e.basis.sample_change.risk.value}); the wall "
            f"time is their pacing at {AUTH0_REQUESTS_PER_USER_PER_MINUTE}/min ({_s(pacing_seconds(e.pushes))} s) "
            f"plus the {_s(e.beyond_pacing)} s the measured {e.basis.changes}-change mission's approvals took besides "
            f"their own pacing ({_s(e.basis.approvals.wall_seconds)} s in all, {e.basis.approvals.pushes} pushes, "
            f"{_s(e.basis.approvals.push_to_decision)} s from a push to its decision on average); ValidatePlan's "
            f"output for that plan is {_kb(e.validate_output_bytes)} KB, "
            f"{_share(e.validate_output_bytes, PAYLOAD_LIMIT_BYTES)} of Step Functions' {PAYLOAD_LIMIT_BYTES // 1024} "
            "KB quota"
        )


def report(missions: Sequence[MissionTiming], extrapolated: Sequence[Extrapolation] = ()) -> None:
    approvals_report(missions, extrapolated)
    stages = ["scan+plan", "approvals", "execution", "state machine", "resume"]
    print_table(
        "Mission overhead, event -> mission completed (wall clock s; the five stages add up to the total)",
        ["changes", "parallel", "total s", *stages, "s/change", "CPU s/change"],
        [
            [
                m.changes,
                m.concurrency,
                _s(m.total),
                *[_s(m.wall_split()[stage]) for stage in stages],
                _s(m.total / m.changes),
                _s(m.cpu_seconds / m.changes),
            ]
            for m in missions
        ],
    )
    change_stages = ["to phone", "on phone", "CIBA polling", "hand-off", "executor"]
    print_table(
        "Per change, mean s (RequestApproval entered -> ApplyChange exited; changes overlap up to 'parallel')",
        ["changes", "waited for a slot", *change_stages, "of which pipeline", "latency", "max latency"],
        [
            [
                m.changes,
                _s(statistics.fmean(_seconds(m.map_started, c.approval_entered) for c in m.per_change)),
                *[_s(statistics.fmean(c.stages()[stage] for c in m.per_change)) for stage in change_stages],
                _s(statistics.fmean(c.executor_pipeline for c in m.per_change)),
                _s(statistics.fmean(c.latency for c in m.per_change)),
                _s(max(c.latency for c in m.per_change)),
            ]
            for m in missions
        ],
    )
    driver_report(missions)
    steps: list[str] = []
    for m in missions:
        for change in m.per_change:
            for name in _step_deltas(change.executor_marks_ms):
                if name not in steps:
                    steps.append(name)
    print_table(
        "Executor invocation, median ms to reach each step (its own timings in the executor.result audit entry)",
        ["changes", *steps],
        [
            [
                m.changes,
                *[f"{median(_step_values(m, step)):,.0f}" for step in steps],
            ]
            for m in missions
        ],
    )
    print_table(
        f"Step Functions payloads (quota {PAYLOAD_LIMIT_BYTES // 1024} KB for the execution input and each state's "
        "input or output)",
        ["changes", "execution input KB", "of quota", "largest payload KB", "of quota", "where"],
        [
            [
                m.changes,
                _kb(m.execution_input_bytes),
                _share(m.execution_input_bytes, PAYLOAD_LIMIT_BYTES),
                _kb(m.largest_payload_bytes),
                _share(m.largest_payload_bytes, PAYLOAD_LIMIT_BYTES),
                m.largest_payload_where,
            ]
            for m in missions
        ],
    )
    _notes(missions)


def _on_phone(mission: MissionTiming) -> float:
    return statistics.fmean(change.stages()["on phone"] for change in mission.per_change)


def _ratio(value: float | None, basis: float | None) -> str:
    if value is None or basis is None:
        return "-"
    if basis <= 0:
        return "-" if value <= 0 else "inf"
    return f"x{value / basis:.2f}"


def _flat(value: float | None, basis: float | None) -> bool | None:
    if value is None or basis is None or basis <= 0:
        return None
    return value / basis <= GOAL_FLAT_RATIO


def driver_overhead_rows(missions: Sequence[MissionTiming]) -> list[list[Any]]:
    """One row per mission: the driver's per-change figures, each beside its ratio to the smallest mission's, and
    the verdict against the goals (see the module docstring)."""
    if not missions:
        return []
    smallest = min(missions, key=lambda m: m.changes)

    def figures(m: MissionTiming) -> dict[str, float | None]:
        mean_poll = m.driver.mean_poll
        return {
            "items": m.driver.audit_items / m.changes,
            "cpu": 1000 * m.driver_cpu_seconds / m.changes,
            "poll": None if mean_poll is None else 1000 * mean_poll,
        }

    basis = figures(smallest)
    rows: list[list[Any]] = []
    for m in missions:
        mine = figures(m)
        # The poll's duration is shown, not judged: it is a handful of requests whatever the size, each as slow as
        # the process's load makes it (the functions' threads share this process and its 2 cores).
        verdicts = {name: _flat(mine[name], basis[name]) for name in JUDGED}
        grows = [name for name, flat in verdicts.items() if flat is False]
        judged = [name for name, flat in verdicts.items() if flat is not None]
        mean_poll = m.driver.mean_poll
        phone_bound = None if mean_poll is None else m.driver.poll_period + mean_poll
        phone = _on_phone(m)
        goal = (
            "-"
            if m is smallest
            else ("GROWS: " + ", ".join(grows) if grows else f"flat ({', '.join(judged)} <= x{GOAL_FLAT_RATIO:g})")
        )
        if phone_bound is not None:
            goal += f"; on phone {'<=' if phone <= phone_bound else 'OVER'} {_s(phone_bound)} s"
        rows.append(
            [
                m.changes,
                m.driver.records,
                f"{m.driver.records / m.changes:.1f}",
                "-" if m.driver.polls is None else m.driver.polls,
                m.driver.audit_queries,
                f"{m.driver.audit_items:,}",
                f"{mine['items']:,.1f}",
                _ratio(mine["items"], basis["items"]),
                f"{mine['cpu']:,.1f}",
                _ratio(mine["cpu"], basis["cpu"]),
                "-" if mine["poll"] is None else f"{mine['poll']:,.1f}",
                _ratio(mine["poll"], basis["poll"]),
                _s(phone),
                _ratio(phone, _on_phone(smallest)),
                goal,
            ]
        )
    return rows


def driver_report(missions: Sequence[MissionTiming]) -> None:
    if not missions:
        return
    smallest = min(m.changes for m in missions)
    print_table(
        f"The driver's overhead per change, beside the {smallest}-change mission's (x): goal flat (items read and "
        f"CPU per change within x{GOAL_FLAT_RATIO:g}), and 'on phone' under the poll period plus one poll",
        [
            "changes",
            "audit records",
            "per change",
            "polls",
            "audit queries",
            "items read",
            "items read per change",
            "x",
            "driver CPU ms per change",
            "x",
            "mean poll ms",
            "x",
            "on phone s",
            "x",
            "goal",
        ],
        driver_overhead_rows(missions),
    )
    catch_up = [m for m in missions if m.driver.catch_up_seconds is not None]
    if catch_up:
        print(
            "the end's catch-up (waiting for the chainer to link the last records, then one read of the whole trail "
            "for any it never linked): "
            + ", ".join(f"{m.driver.catch_up_seconds:,.2f} s ({m.changes})" for m in catch_up)
            + "; the mean poll is a few requests to moto whatever the size, each as slow as the process's load "
            "makes it"
        )


def _notes(missions: Sequence[MissionTiming]) -> None:
    if not missions:
        return
    first = missions[0].stack_plan
    print(
        f"\nsetup: one check ({CHECK}), N security groups with SSH open to 0.0.0.0/0 -> N findings, N changes, "
        f"all applied; MapMaxConcurrency {first.concurrency} (the template's maximum unless --concurrency), CIBA "
        f"interval {DEMO_CIBA_INTERVAL_SECONDS} s, one approver, {first.requests_per_minute} bc-authorize requests "
        f"per approver and minute at the emulator and in the approval function's pacer (Auth0's limit, waited out "
        f"in real time); MaxChangesPerMission = N, MaxSharePerResourceType 1, batches of at most "
        f"{first.batch_max_changes} changes"
    )
    for m in missions:
        floor = math.ceil(pacing_seconds(m.changes) / 60)
        if floor:
            print(
                f"{m.changes} changes as one push each with one approver: Auth0's {AUTH0_REQUESTS_PER_USER_PER_MINUTE} "
                f"requests per user and minute alone would hold the last request back >= {floor} min; batched: "
                f"{m.approvals.pushes} push{'' if m.approvals.pushes == 1 else 'es'}"
            )
    driver = ", ".join(f"{m.driver_cpu_seconds:,.1f} of {m.cpu_seconds:,.1f} ({m.changes})" for m in missions)
    print(
        f"CPU s of the bench's own driver thread (polling the mission item, the audit trail and the phone; "
        f"moto's side of those requests not included) of the process's: {driver}"
    )
    loads = ", ".join(f"{m.load_average:.1f} ({m.changes})" for m in missions)
    print(f"1-minute load average at each start: {loads}; one process, loopback only: compare, do not quote as AWS")


# ----------------------------------------------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    add_sizes(parser, "--sizes", "changes per mission", PLAN_SIZES, SMALL_PLAN_SIZES)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="MapMaxConcurrency (default: the template's maximum)"
    )
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="per mission")
    parser.add_argument("--progress", action="store_true", help="show the mission's progress on stderr")
    parser.add_argument(
        "--batch-max-changes",
        type=int,
        default=None,
        metavar="N",
        help=f"{BATCH_SIZE_PARAMETER} (default: the template's); smaller batches mean more pushes, so a mission within "
        "MaxChangesPerMission can hit Auth0's per-minute limit for real",
    )
    args = parser.parse_args(argv)
    sizes = chosen_sizes(args.sizes, args.small, PLAN_SIZES, SMALL_PLAN_SIZES)
    template = load_template(TEMPLATE)
    cap = template_cap(template)
    # A size above the cap runs as the cap (once), and is extrapolated from it.
    runs = sorted({min(size, cap) for size in sizes})
    stderr = sys.stderr
    missions: list[MissionTiming] = []
    for size in runs:
        print(f"mission of {size} changes ...", file=stderr, flush=True)
        started = time.monotonic()
        try:
            missions.append(
                measure(
                    size,
                    concurrency=args.concurrency,
                    timeout_seconds=args.timeout,
                    progress=stderr if args.progress else None,
                    batch_max_changes=args.batch_max_changes,
                )
            )
        except BenchError as error:
            print(f"bench.mission_overhead: {error}", file=stderr)
            report(missions)
            return 1
        print(f"mission of {size} changes: {time.monotonic() - started:,.0f} s of real time", file=stderr, flush=True)
    extrapolated = []
    if missions and any(size > cap for size in sizes):
        basis = next(m for m in missions if m.changes == min(max(sizes), cap))
        extrapolated = [extrapolate(size, basis, template, DEFAULT_APPROVER_SUB) for size in sizes if size > cap]
    report(missions, extrapolated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
