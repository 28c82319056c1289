"""Mission overhead: with approvals answered at once, how long a mission takes from the scan event to the end of the
resume, for plans of 10, 50 and 200 changes on the local stack, and where that time goes.

For each size a fresh `LocalStack` (moto server, Auth0 emulator, every function of template.yaml) gets exactly N
remediable findings: N security groups, each with one SSH rule open to 0.0.0.0/0, scanned with that one check
(`ec2-admin-port-open-ipv4`), so nothing else in the account can add a change; the run refuses to report a mission
whose plan is not N changes or whose changes were not all applied. The stack is configured the way `aegis-local
demo` configures it (its emulator helper and parameters: CIBA interval 1 s, share cap 1), with MaxChangesPerMission
= N, the CIBA rate limit per approver raised to at least N a minute (so no request waits for a rate-limit window),
and MapMaxConcurrency as high as the template allows (it bounds how many changes wait for approval, and execute, at
once). `MissionDriver` fires the scan through EventBridge and answers each request on the emulated phone as soon as
it sees it (`--approve all`).

Stage boundaries are real timestamps, never estimates: the event is stamped when it is put on the bus; the
execution history gives the execution start and each change's RequestApproval and ApplyChange states; the emulator
says when each request reached the phone and the bench's phone when it answered; the audit trail says when the
approval function decided and when the agent completed the mission. The wall-clock table splits event -> completed
into scan+plan (event -> execution started), then the approve-and-apply window, instant by instant: execution while
an executor invocation runs, else approvals while a change waits for its approval (request, phone, CIBA polling),
else state machine (hand-offs between states), and finally resume (last executor result -> mission completed).
The per-change table gives each change's own path through those stages, which overlap across changes.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from aegis.audit import read_trail
from aegis.catalogue import parse_change
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
# The agent's environment variable behind the MaxChangesPerMission parameter.
MAX_CHANGES_VARIABLE = "MAX_CHANGES_PER_MISSION"
AGENT_FUNCTIONS = ("AgentScanFunction", "AgentResumeFunction")
# Auth0's own limit on backchannel requests per user and minute (the emulator's default).
AUTH0_REQUESTS_PER_USER_PER_MINUTE = 5
APPROVAL_STATE = "RequestApproval"
EXECUTOR_STATE = "ApplyChange"


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
    # MaxChangesPerMission is capped by the template (MaxValue); above it, the agent's variable is set per run.
    agent_cap_override: int | None
    template_cap: int
    requests_per_minute: int


def _parameter_bounds(template: Mapping[str, Any], name: str) -> tuple[int, int]:
    spec = (template.get("Parameters") or {}).get(name)
    if spec is None:
        raise BenchError(f"template.yaml declares no parameter {name}")
    return int(spec.get("MinValue", 1)), int(spec.get("MaxValue", 2**31 - 1))


def stack_plan(changes: int, template: Mapping[str, Any], concurrency: int | None = None) -> StackPlan:
    """Parameters for a mission of `changes` changes: no blast-radius cap in the way, `concurrency` parallel changes
    (the template's maximum by default)."""
    if changes < 1:
        raise BenchError("a mission needs at least one change")
    low, high = _parameter_bounds(template, "MapMaxConcurrency")
    chosen = high if concurrency is None else concurrency
    if not low <= chosen <= high:
        raise BenchError(f"MapMaxConcurrency must be between {low} and {high} (template.yaml), not {chosen}")
    _, cap = _parameter_bounds(template, "MaxChangesPerMission")
    parameters = {
        **DEMO_PARAMETERS,
        "MaxChangesPerMission": str(min(changes, cap)),
        "MaxSharePerResourceType": "1",
        "MapMaxConcurrency": str(chosen),
    }
    return StackPlan(
        changes=changes,
        concurrency=chosen,
        parameters=parameters,
        agent_cap_override=changes if changes > cap else None,
        template_cap=cap,
        requests_per_minute=max(demo_emulator_config().ciba_requests_per_user_per_minute, changes),
    )


class AgentCapOverride:
    """Runs around each agent invocation: sets MAX_CHANGES_PER_MISSION in that invocation's environment only (the
    local runtime keeps a per-invocation overlay of `os.environ`), for plans larger than the template lets
    MaxChangesPerMission be."""

    def __init__(self, max_changes: int) -> None:
        self.max_changes = max_changes
        self.invocations = 0

    def __call__(self, event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
        os.environ[MAX_CHANGES_VARIABLE] = str(self.max_changes)
        self.invocations += 1
        return handler(event, context)


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
        self.digests: dict[str, str] = {}  # auth_req_id -> the change digest it shows

    def pending(self) -> list[PhoneRequest]:
        found = self._emulator.pending(self.sub)
        requests = [PhoneRequest.from_pending(raw) for raw in found]
        with self._lock:
            for raw, request in zip(found, requests, strict=True):
                if request.auth_req_id not in self.requested_at:
                    self.requested_at[request.auth_req_id] = _parse_time(str(raw["requested_at"]))
                    if request.digest:
                        self.digests[request.auth_req_id] = request.digest
        return requests

    def answer(self, request: PhoneRequest, answer: Answer) -> None:
        super().answer(request, answer)
        with self._lock:
            self.answered_at[request.auth_req_id] = datetime.now(UTC)

    def by_digest(self) -> dict[str, tuple[datetime, datetime | None]]:
        """Change digest -> (on the phone, answered)."""
        with self._lock:
            return {
                digest: (self.requested_at[request_id], self.answered_at.get(request_id))
                for request_id, digest in self.digests.items()
            }


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


def _state_change_id(details: Mapping[str, Any], key: str) -> str | None:
    try:
        body = json.loads(details.get(key) or "{}")
    except ValueError:
        return None
    change = body.get("change") if isinstance(body, dict) else None
    if isinstance(change, dict):
        return str(change.get("change_id"))
    # ApplyChange's output is the sanitized result, which names its change.
    return str(body["change_id"]) if isinstance(body, dict) and "change_id" in body else None


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
        if kind.endswith("StateEntered") and name in (APPROVAL_STATE, EXECUTOR_STATE):
            change_id = _state_change_id(details, "input")
            if change_id is not None:
                entered[(str(name), change_id)] = at
        elif kind.endswith("StateExited") and name in (APPROVAL_STATE, EXECUTOR_STATE):
            change_id = _state_change_id(details, "output")
            if change_id is not None:
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
    """From the audit trail: approval decided (per change), executor outcome and step marks, mission completed."""
    decided: dict[str, datetime] = {}
    results: dict[str, tuple[str, dict[str, float]]] = {}
    completed: datetime | None = None
    for entry in trail:
        action = entry.get("action")
        details = json.loads(str(entry.get("details") or "{}"))
        at = _parse_time(str(entry["at"]))
        if action == "approval.decided" and entry.get("actor") == "approval":
            decided[str(details["change_id"])] = at
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
) -> MissionTiming:
    """One mission of exactly `changes` changes on a fresh local stack, every approval answered at once."""
    from aegis_local.aws.stack import LocalStack

    plan = stack_plan(changes, load_template(TEMPLATE), concurrency)
    emulator_config = demo_emulator_config().model_copy(
        update={"ciba_requests_per_user_per_minute": plan.requests_per_minute}
    )
    timeout = timeout_seconds if timeout_seconds is not None else 120.0 + 5.0 * changes
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
        shown = _Progress(progress)
        driver = MissionDriver(
            stack,
            shown,
            DriveOptions(policy=ApprovalPolicy(approve_all=True), timeout_seconds=timeout),
            phone,
            approver,
        )
        load_average = os.getloadavg()[0]
        detail = {"regions": [stack.identity.region], "checks": [CHECK]}
        with ExitStack() as overrides:
            if plan.agent_cap_override is not None:
                override = AgentCapOverride(plan.agent_cap_override)
                for logical_id in AGENT_FUNCTIONS:
                    overrides.enter_context(stack.lambdas.intercept(logical_id, override))
            cpu_before, driver_before = time.process_time(), time.thread_time()
            event_at = datetime.now(UTC)
            # The driver polls in this thread; the functions, moto and the emulator run in threads of their own.
            run = driver.run(detail)
            cpu_seconds = time.process_time() - cpu_before
            driver_cpu_seconds = time.thread_time() - driver_before
        measured = _Measured(event_at, load_average, build_seconds, cpu_seconds, driver_cpu_seconds)
        return _collect(stack, run, plan, phone, shown, measured)


@dataclass(frozen=True, slots=True)
class _Measured:
    event_at: datetime
    load_average: float
    build_seconds: float
    cpu_seconds: float
    driver_cpu_seconds: float


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
    digests = {parse_change(raw).digest: str(raw["change_id"]) for raw in json.loads(execution_input)["changes"]}
    history = read_history(_history(sfn, run.execution_arn))
    trail = read_trail(resource.Table(stack.physical_id("AuditTable")), run.mission_id)
    decided, results, completed = _trail_facts(trail)
    on_phone = {digests[digest]: times for digest, times in phone.by_digest().items() if digest in digests}
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
    return MissionTiming(
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


def report(missions: Sequence[MissionTiming]) -> None:
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


def _notes(missions: Sequence[MissionTiming]) -> None:
    if not missions:
        return
    first = missions[0].stack_plan
    rate = ", ".join(f"{m.stack_plan.requests_per_minute} ({m.changes})" for m in missions)
    print(
        f"\nsetup: one check ({CHECK}), N security groups with SSH open to 0.0.0.0/0 -> N findings, N changes, "
        f"all applied; MapMaxConcurrency {first.concurrency} (the template's maximum unless --concurrency), CIBA "
        f"interval {DEMO_CIBA_INTERVAL_SECONDS} s, bc-authorize requests per approver and minute {rate}; "
        "MaxChangesPerMission = N, MaxSharePerResourceType 1"
    )
    for m in missions:
        if m.stack_plan.agent_cap_override is not None:
            print(
                f"{m.changes} changes: above the template's MaxChangesPerMission MaxValue "
                f"{m.stack_plan.template_cap}, so the stack got {m.stack_plan.template_cap} and the agent's "
                f"{MAX_CHANGES_VARIABLE} was set to {m.changes} for this run only; a deployed stack refuses such a plan"
            )
    for m in missions:
        floor = max(0, math.ceil(m.changes / AUTH0_REQUESTS_PER_USER_PER_MINUTE) - 1)
        if floor:
            print(
                f"{m.changes} changes at Auth0 with one approver: its {AUTH0_REQUESTS_PER_USER_PER_MINUTE} requests "
                f"per user and minute alone hold the last request back >= {floor} min"
            )
    driver = ", ".join(f"{m.driver_cpu_seconds:,.1f} of {m.cpu_seconds:,.1f} ({m.changes})" for m in missions)
    print(
        f"CPU s of the bench's own driver thread (polling the mission item, the whole audit trail and the phone; "
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
    args = parser.parse_args(argv)
    sizes = chosen_sizes(args.sizes, args.small, PLAN_SIZES, SMALL_PLAN_SIZES)
    stderr = sys.stderr
    missions = []
    for size in sizes:
        print(f"mission of {size} changes ...", file=stderr, flush=True)
        try:
            missions.append(
                measure(
                    size,
                    concurrency=args.concurrency,
                    timeout_seconds=args.timeout,
                    progress=stderr if args.progress else None,
                )
            )
        except BenchError as error:
            print(f"bench.mission_overhead: {error}", file=stderr)
            report(missions)
            return 1
    report(missions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
