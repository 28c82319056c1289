"""Load: 1, 5, 10 and 20 missions started at once, each on a seeded account of its own, on one local stack; the time
from the scan event to each mission's completion, and what the stack went through meanwhile.

Separate accounts, through moto's multi-account support: an `aegis.scan` event always scans the deployment's own
account, and the agent reaches any other account only as an organization scan's account (it assumes the member's
AegisScanRole; the executor the member's AegisRemediationRole). So for each size N a fresh `LocalStack` heads a
local Organization of N member accounts (member/template.yaml's roles), each seeded like the demo account
(`aegis_local.scenario.seed`, one region), the security account left out of the scan (OrgScanExcludeAccounts), and
OrgScanMaxConcurrency = N so that the Distributed Map starts every account's mission at once. One region per mission
in one account would not be separate accounts: IAM and S3 are global, and every mission would read the others'.
The checks are a small set (`CHECKS`: each seeded account plans a handful of changes: its open admin ports and EBS
default encryption), every approval request is approved on the emulated phones as soon as it shows
(`aegis_local.scenario.organization.OrganizationDriver`), with the demo's tenant (CIBA interval 1 s, two approvers,
100 backchannel requests per user and minute) and the approval function's pacer at the template's most,
ApproverPushesPerMinute 60 (`--pushes-per-minute`). At Auth0's real 5 per user and minute (the parameter's default)
every five pushes to one approver after the first five wait a minute, whatever the stack does (20 missions on two
approvers: about two minutes): that pacing is bench.mission_overhead's subject, so here it is only computed, beside
the figures (the pushes per approver, and the least time the last one would wait at 5 a minute). The driver polls
once a second (its default, 0.3 s, reads every mission's execution that often: a sizeable share of the process).

Printed per size:
- time to the last completion, and per mission (event -> the mission item's `completed_at`): median and slowest, and
  the slowest against the single mission's;
- Lambda invocations (the local runtime's count, every function) and the most running at one time;
- the most Step Functions executions running at one time (every execution of the stack's state machines: the
  organization scan's and the missions');
- DynamoDB conditional conflicts: ConditionalCheckFailed answers (and transactions cancelled for one) seen by every
  boto3 client of the process (functions and driver), by operation, table and key kind (the key's prefix, e.g. the
  approvers' `pace#` items: a hot key shows as many conflicts on one kind);
- errors, which must be 0: failed Lambda invocations, missions not completed, changes not applied, executions not
  SUCCEEDED, the driver's problems;
- the peak RSS of the process (the stack, moto, the emulator and every function share it), sampled every 50 ms, and
  the process's CPU seconds.

The goal, printed beside the figures: 20 missions at once complete with 0 errors, and each mission's time at most x2
the single mission's. The exit status is 1 when a size has errors or a mission over x2 (the single mission always runs
first: it is the reference). Everything runs in one Python process on loopback: N missions share its interpreter,
where on AWS each function gets a sandbox of its own, so CPU seconds per mission are printed beside the times.
"""

from __future__ import annotations

import io
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import add_sizes, argument_parser, chosen_sizes, print_table
from bench.org_scale import Interval, RssSampler, largest_overlap

SIZES = (1, 5, 10, 20)
SMALL_SIZES = (1, 2)
GOAL_MISSIONS = 20
GOAL_RATIO = 2.0
REGION = "us-east-1"
SECURITY_ACCOUNT = "123456789012"
# The template's MaxValue of ApproverPushesPerMinute; the demo tenant allows 100 per user and minute.
PUSHES_PER_MINUTE = 60
AUTH0_PUSHES_PER_MINUTE = 5
# A handful of changes per seeded account: its four groups with admin ports open to the world, and EBS encryption.
CHECKS = ("ec2-admin-port-open-ipv4", "ec2-ebs-default-encryption-off")
TIMEOUT_SECONDS = 900.0
POLL_SECONDS = 1.0
CONDITIONAL_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELLED = "TransactionCanceledException"
KEY_PREFIX = re.compile(r"^[A-Za-z]{1,16}[#-]")


class BenchError(RuntimeError):
    """The run could not be measured (no baseline, the stack did not start)."""


# ----------------------------------------------------------------------------------------------------------------
# DynamoDB conditional conflicts, as every client of the process sees them


class ConflictCounter:
    """ConditionalCheckFailed answers of DynamoDB to any boto3 client of this process while installed, by
    (operation, table, key kind): a wrapper of botocore's `BaseClient._make_api_call`, the one path every client's
    calls take (the functions build their own clients and sessions, so a hook on one session would miss them). The
    key kind is the prefix of the item's key (`pace#`, `cont-`, `m-`...; never the key itself), which tells a hot key
    from conflicts spread over many items."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str, str]] = Counter()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.counts)

    def record(self, operation: str, params: Mapping[str, Any], error: Any) -> None:
        """Count `error` (a botocore ClientError) when it is a conditional conflict."""
        answer = getattr(error, "response", None) or {}
        code = str((answer.get("Error") or {}).get("Code", ""))
        if code == CONDITIONAL_FAILED:
            places = [(str(params.get("TableName", "?")), key_kind(params.get("Key"), params.get("Item")))]
        elif code == TRANSACTION_CANCELLED:
            reasons = answer.get("CancellationReasons") or []
            items = params.get("TransactItems") or []
            places = [
                _transact_place(items[index]) if index < len(items) else ("?", "?")
                for index, reason in enumerate(reasons)
                if isinstance(reason, Mapping) and reason.get("Code") == "ConditionalCheckFailed"
            ]
        else:
            return
        with self._lock:
            for table, kind in places:
                self.counts[(operation, table, kind)] += 1

    @contextmanager
    def installed(self) -> Iterator[ConflictCounter]:
        from botocore.client import BaseClient
        from botocore.exceptions import ClientError

        original = BaseClient._make_api_call
        counter = self

        def counting(client: Any, operation_name: str, api_params: Any) -> Any:
            try:
                return original(client, operation_name, api_params)
            except ClientError as error:
                if client.meta.service_model.service_name == "dynamodb":
                    counter.record(operation_name, api_params or {}, error)
                raise

        BaseClient._make_api_call = counting
        try:
            yield self
        finally:
            BaseClient._make_api_call = original


def key_kind(key: Any, item: Any = None) -> str:
    """The prefix of a key's first value up to its first `#` or `-` (`pace#`, `m-`), "-" without one. A put names
    no key attributes: its item's first attribute stands in (the key, as this project builds its items), marked so."""
    if isinstance(key, Mapping) and key:
        return _prefix(next(iter(key.values())))
    if isinstance(item, Mapping) and item:
        return f"{_prefix(next(iter(item.values())))} (first attribute of the item)"
    return "?"


def _prefix(value: Any) -> str:
    if isinstance(value, Mapping):  # a low-level client's typed value, {"S": "..."}
        value = next(iter(value.values()), "")
    found = KEY_PREFIX.match(str(value))
    return found.group(0) if found else "-"


def _transact_place(item: Any) -> tuple[str, str]:
    if isinstance(item, Mapping):
        for part in item.values():
            if isinstance(part, Mapping) and "TableName" in part:
                return str(part["TableName"]), key_kind(part.get("Key"), part.get("Item"))
    return "?", "?"


# ----------------------------------------------------------------------------------------------------------------
# what one size measured


@dataclass(slots=True)
class MissionTime:
    account_id: str
    mission_id: str
    status: str
    seconds: float | None  # event -> completed_at; None when it never completed
    changes: int
    applied: int


@dataclass(slots=True)
class LoadRow:
    missions: int
    seed_seconds: float
    load_average: float
    last_completion: float
    per_mission: list[MissionTime]
    invocations: int
    most_in_flight: int
    most_executions: int
    executions: int
    conflicts: dict[tuple[str, str, str], int]  # (operation, table, key kind) -> count
    pushes: dict[str, int]  # approver -> CIBA requests sent to them (`approval.requested` records of the approval)
    failed_invocations: dict[str, int]  # "Function: ErrorType" -> count
    errors: list[str]
    peak_rss_mb: float
    cpu_seconds: float
    run_seconds: float  # the driver's run: the event to the end of the last mission and the functions' last work
    mission_starts_spread: float  # first to last mission execution start, s
    map_concurrency: int  # account scans (the Map's items) running at one time
    notes: list[str] = field(default_factory=list)

    @property
    def times(self) -> list[float]:
        return [m.seconds for m in self.per_mission if m.seconds is not None]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def slowest_seconds(self) -> float:
        return max(self.times) if self.times else float("nan")

    @property
    def changes(self) -> int:
        return sum(m.changes for m in self.per_mission)

    @property
    def applied(self) -> int:
        return sum(m.applied for m in self.per_mission)

    @property
    def error_count(self) -> int:
        return len(self.errors)


def auth0_pacing_seconds(pushes: int) -> float:
    """The least wait before the last of `pushes` requests to one approver at Auth0's per-user limit: each block of
    five waits one minute after the previous block (as bench.mission_overhead's `pacing_seconds`)."""
    return 60.0 * ((pushes - 1) // AUTH0_PUSHES_PER_MINUTE) if pushes > 0 else 0.0


def ratio(row: LoadRow, single: LoadRow) -> float:
    """The slowest mission of `row` against the single mission."""
    return row.slowest_seconds / single.slowest_seconds


def verdict(rows: Sequence[LoadRow]) -> list[str]:
    """What misses the goal: a size with errors, a mission over x2 the single mission, no run of 20 that completed."""
    single = next((row for row in rows if row.missions == 1), None)
    if single is None or not single.times:
        return ["no completed single mission to compare with"]
    missed = []
    for row in rows:
        if row.error_count:
            missed.append(f"{row.missions} missions: {row.error_count} error(s)")
        if len(row.times) == row.missions and ratio(row, single) > GOAL_RATIO:
            missed.append(
                f"{row.missions} missions: the slowest took {row.slowest_seconds:.1f} s, "
                f"x{ratio(row, single):.2f} the single mission's {single.slowest_seconds:.1f} s "
                f"(goal <= x{GOAL_RATIO:g})"
            )
    return missed


# ----------------------------------------------------------------------------------------------------------------
# one size


def stack_parameters(missions: int, pushes_per_minute: int = PUSHES_PER_MINUTE) -> dict[str, str]:
    from aegis_local.scenario.demo import DEMO_PARAMETERS, ORG_DEMO_PARAMETERS

    return {
        **DEMO_PARAMETERS,
        **ORG_DEMO_PARAMETERS,
        "ApproverPushesPerMinute": str(pushes_per_minute),
        "OrgScanExcludeAccounts": SECURITY_ACCOUNT,
        # Every account's mission at once: the Map's default (10) would hold the others back.
        "OrgScanMaxConcurrency": str(missions),
        "OrgScanToleratedFailurePercentage": "0",
        "ScanRegions": REGION,
    }


def _since(moment: datetime, origin: datetime) -> float:
    return (moment - origin).total_seconds()


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _executions(sfn: Any, machine_arns: Sequence[str], since: datetime) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for arn in machine_arns:
        request: dict[str, Any] = {"stateMachineArn": arn, "maxResults": 1000}
        while True:
            page = sfn.list_executions(**request)
            found += [e for e in page["executions"] if e["startDate"] >= since]
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    return found


def pushes_by_approver(trails: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, int]:
    """Approver -> the CIBA requests the approval function sent them, over the missions' audit trails."""
    import json

    from aegis.reporting.assembly import is_push

    found: Counter[str] = Counter()
    for trail in trails:
        for entry in trail:
            if is_push(entry):
                found[str(json.loads(str(entry.get("details") or "{}")).get("approver_sub", "?"))] += 1
    return dict(found)


def measure(
    missions: int,
    *,
    timeout_seconds: float = TIMEOUT_SECONDS,
    progress: Any = None,
    pushes_per_minute: int = PUSHES_PER_MINUTE,
) -> LoadRow:
    """`missions` account missions started at once by one organization scan on a fresh local stack."""
    from aegis.audit import read_trail
    from aegis_local.aws.logs import LogCapture
    from aegis_local.aws.organization import OrganizationSpec
    from aegis_local.aws.stack import LocalStack
    from aegis_local.scenario.demo import Console, demo_emulator_config
    from aegis_local.scenario.organization import (
        OrganizationDriver,
        applied_by_account,
        org_mission_items,
        seed_organization,
    )
    from aegis_local.scenario.phone import EmulatedPhone

    console = Console(progress if progress is not None else io.StringIO())
    with (
        tempfile.TemporaryDirectory(prefix="aegis-bench-load-") as logs,
        LogCapture(Path(logs)),
        LocalStack(
            emulator_config=demo_emulator_config(),
            parameters=stack_parameters(missions, pushes_per_minute),
            organization=OrganizationSpec(accounts=missions),
        ) as stack,
    ):
        began = time.perf_counter()
        seed_organization(stack, [REGION], console, management=False)
        problems = stack.preload_handlers()
        if problems:
            raise BenchError(f"handlers that cannot load: {problems}")
        seed_seconds = time.perf_counter() - began
        approvers = [sub for sub in str(stack.parameters.get("ApproverSubs", "")).split(",") if sub]
        phone = EmulatedPhone(stack.emulator, approvers[0], also=approvers[1:])
        # The driver reads every mission's execution on each poll: at 20 missions every 0.3 s (its default) that is
        # a sizeable share of the process the missions run in; once a second is enough to answer the phones.
        driver = OrganizationDriver(stack, console, phone, timeout_seconds=timeout_seconds, poll_seconds=POLL_SECONDS)
        conflicts = ConflictCounter()
        load_average = os.getloadavg()[0]
        stack.lambdas.reset_load()
        with RssSampler() as rss, conflicts.installed():
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            fired_at = datetime.now(UTC)
            run = driver.run({"regions": [REGION], "checks": list(CHECKS)})
            cpu_seconds, run_seconds = time.process_time() - cpu_before, time.perf_counter() - wall_before
        invocations, most_in_flight = stack.lambdas.load()
        table = stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable"))
        items = org_mission_items(table, run.org_scan_id)
        applied = applied_by_account(stack, run)
        audit = stack.session().resource("dynamodb").Table(stack.physical_id("AuditTable"))
        pushes = pushes_by_approver([read_trail(audit, str(item["mission_id"])) for item in items])
        records = [r for r in stack.lambdas.records() if r.started_at >= fired_at]
        sfn = stack.client("stepfunctions")
        machines = [stack.state_machine_arn("MissionStateMachine"), stack.state_machine_arn("OrgScanStateMachine")]
        executions = _executions(sfn, machines, fired_at)

    errors = [f"driver: {problem}" for problem in run.problems]
    per_mission: list[MissionTime] = []
    for item in items:
        account, status = str(item.get("account_id")), str(item.get("status"))
        completed = item.get("completed_at")
        seconds = _since(_parse_time(str(completed)), fired_at) if status == "completed" and completed else None
        planned = int((item.get("counts") or {}).get("changes", 0))
        done = applied.get(account, 0)
        per_mission.append(MissionTime(account, str(item["mission_id"]), status, seconds, planned, done))
        if status != "completed":
            errors.append(f"account {account}: mission {item['mission_id']} ended {status}")
        elif done != planned:
            errors.append(f"account {account}: {done} of {planned} changes applied")
        if planned == 0:
            errors.append(f"account {account}: no change planned (the seed should give it a handful)")
    if len(items) != missions:
        errors.append(f"{len(items)} account missions for {missions} accounts")
    failed: Counter[str] = Counter(f"{r.logical_id}: {r.error_type}" for r in records if r.error_type)
    errors += [f"Lambda {what} x{count}" for what, count in sorted(failed.items())]
    errors += [f"execution {e['name']} ended {e['status']}" for e in executions if e["status"] not in ("SUCCEEDED",)]
    mission_starts = sorted(
        e["startDate"] for e in executions if e["stateMachineArn"].endswith(":" + machines[0].rsplit(":", 1)[-1])
    )
    account_scans = [
        Interval(_since(r.started_at, fired_at), r.duration_ms / 1000)
        for r in records
        if r.logical_id == "AgentScanFunction" and str(r.invocation_type) == "RequestResponse"
    ]
    times = [m.seconds for m in per_mission if m.seconds is not None]
    return LoadRow(
        missions=missions,
        seed_seconds=seed_seconds,
        load_average=load_average,
        last_completion=max(times) if times else float("nan"),
        per_mission=per_mission,
        invocations=invocations,
        most_in_flight=most_in_flight,
        most_executions=largest_overlap(
            [
                Interval(
                    _since(e["startDate"], fired_at),
                    _since(e.get("stopDate") or datetime.now(UTC), e["startDate"]),
                )
                for e in executions
            ]
        ),
        executions=len(executions),
        conflicts=conflicts.snapshot(),
        pushes=pushes,
        failed_invocations=dict(failed),
        errors=errors,
        peak_rss_mb=rss.peak_kb / 1024,
        cpu_seconds=cpu_seconds,
        run_seconds=run_seconds,
        mission_starts_spread=_since(mission_starts[-1], mission_starts[0]) if mission_starts else float("nan"),
        map_concurrency=largest_overlap(account_scans),
    )


# ----------------------------------------------------------------------------------------------------------------
# the tables


def report(rows: Sequence[LoadRow]) -> list[str]:
    """Print the load table (and what went wrong); returns what misses the goal."""
    single = next((row for row in rows if row.missions == 1 and row.times), None)
    print_table(
        f"Missions started at once, one seeded account each (checks {', '.join(CHECKS)}; every approval approved at "
        "once); times from the scan event",
        [
            "missions",
            "changes",
            "applied",
            "last done s",
            "per mission median s",
            "slowest s",
            "slowest / single",
            "Lambda invocations",
            "most in flight",
            "most executions",
            "DDB conflicts",
            "errors",
            "peak RSS MB",
            "CPU s",
        ],
        [
            [
                row.missions,
                row.changes,
                row.applied,
                f"{row.last_completion:.1f}",
                f"{row.median_seconds:.1f}",
                f"{row.slowest_seconds:.1f}",
                f"x{ratio(row, single):.2f}" if single is not None and row.times else "-",
                row.invocations,
                row.most_in_flight,
                row.most_executions,
                sum(row.conflicts.values()),
                row.error_count,
                f"{row.peak_rss_mb:.0f}",
                f"{row.cpu_seconds:.1f}",
            ]
            for row in rows
        ],
    )
    print(
        f"goal: {GOAL_MISSIONS} missions at once, 0 errors, each mission <= x{GOAL_RATIO:g} the single mission's time"
    )
    print(
        "each size: a fresh stack heading an organization of that many member accounts (seeded in "
        f"{REGION}); missions started by one organization scan, OrgScanMaxConcurrency = the size"
    )
    for row in rows:
        print(
            f"{row.missions} missions: account scans at one time {row.map_concurrency}, mission executions started "
            f"within {row.mission_starts_spread:.1f} s, {row.executions} executions in all, seeding "
            f"{row.seed_seconds:.0f} s, 1-minute load average at the start {row.load_average:.1f}, "
            f"CPU s per mission {row.cpu_seconds / row.missions:.1f}, the process busy "
            f"{100 * row.cpu_seconds / row.run_seconds:.0f}% of one core meanwhile (one interpreter: Python code "
            "runs on one core at a time)"
        )
        most = max(row.pushes.values(), default=0)
        print(
            f"  pushes: {sum(row.pushes.values())} to {len(row.pushes)} approver(s), at most {most} to one; at Auth0's "
            f"{AUTH0_PUSHES_PER_MINUTE} per user and minute the last of those would wait >= "
            f"{auth0_pacing_seconds(most):.0f} s"
        )
        for (operation, table, kind), count in sorted(row.conflicts.items(), key=lambda pair: -pair[1]):
            print(f"  conditional conflicts: {operation} on {table}, keys {kind}...: {count}")
        for error in row.errors:
            print(f"  ERROR: {error}")
        for note in row.notes:
            print(f"  {note}")
    missed = verdict(rows)
    largest = max((row.missions for row in rows), default=0)
    if largest < GOAL_MISSIONS:
        print(f"(the largest size run is {largest}: the goal's {GOAL_MISSIONS} missions were not tried)")
    for line in missed:
        print(f"over the goal: {line}")
    if not missed:
        print("goal met for every size run")
    return missed


# ----------------------------------------------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    add_sizes(parser, "--missions", "missions started at once", SIZES, SMALL_SIZES)
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, metavar="SECONDS", help="per size")
    parser.add_argument("--progress", action="store_true", help="show the driver's progress on stderr")
    parser.add_argument(
        "--pushes-per-minute",
        type=int,
        default=PUSHES_PER_MINUTE,
        metavar="N",
        help=f"ApproverPushesPerMinute (default {PUSHES_PER_MINUTE}; Auth0's limit and the template's default: 5)",
    )
    args = parser.parse_args(argv)
    # The single mission is the reference for every other size: it always runs, first.
    sizes = sorted({1, *chosen_sizes(args.missions, args.small, SIZES, SMALL_SIZES)})
    rows: list[LoadRow] = []
    for size in sizes:
        print(f"{size} mission(s) at once ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        rows.append(
            measure(
                size,
                timeout_seconds=args.timeout,
                progress=sys.stderr if args.progress else None,
                pushes_per_minute=args.pushes_per_minute,
            )
        )
        print(f"{size} mission(s): {time.monotonic() - started:,.0f} s of real time", file=sys.stderr, flush=True)
    return 1 if report(rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
