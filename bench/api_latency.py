"""Ops API latency: p50 and p95 of `GET /missions` (the first page and a deep one) and `GET /findings` on the local
stack holding 1,000 missions, and the DynamoDB calls each request makes (never a Scan).

The local stack runs (moto, the Auth0 emulator, every function of template.yaml, the HTTP API gateway with its JWT
authorizer); the seeded account gets one real dry-run mission (scan, plan, report), whose report is then stored again
for each further mission through the agent's own write path (`aegis_agent.missions.MissionStore`: the mission item,
its report pages, its completion, its latest-findings items), so the tables have the layout production has. Each
request goes through the gateway with a real access token from the emulator (the operator's client, with the ops API's
scopes), and through the ops function, which verifies the token again. Calls are counted by a hook on botocore in
this process, where the stack's functions run, and so is the time spent in them: moto's share ("in moto"), apart
from the rest ("outside moto": the gateway's JWT authorizer, the function's own token check and work, HTTP). Moto
answers a query by walking the whole table and serialises items slowly, where DynamoDB reads one partition of an
index; its share is the local stack's, not the design's. The goal is 300 ms at p95 for every route.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from botocore.client import BaseClient

from aegis.missions_keys import mission_id_for_event
from aegis_agent.missions import MissionStatus, MissionStore
from aegis_agent.report import MissionReport
from aegis_agent.state import MissionRequest, PlanPolicy, Trigger
from aegis_local.auth0 import DEFAULT_OPERATOR_CLIENT_ID
from aegis_local.aws.logs import LogCapture
from aegis_local.aws.stack import LocalStack
from aegis_local.cli.common import endpoint_session
from aegis_local.scenario.seed import seed_account
from bench.common import argument_parser, print_table

MISSIONS = 1_000
SMALL_MISSIONS = 100
SAMPLES = 60
SMALL_SAMPLES = 15
PAGE_SIZE = 25
GOAL_P95_MS = 300.0
# The reads a route may make; a Scan is what the indexes and the latest-findings items exist to avoid.
READ_OPERATIONS = ("GetItem", "Query", "BatchGetItem", "Scan")
MISSION_WAIT_SECONDS = 180


@dataclass(frozen=True)
class RouteFigures:
    route: str
    samples: int
    p50_ms: float
    p95_ms: float
    dynamodb_p50_ms: float  # the time inside the DynamoDB calls (moto, here)
    outside_p95_ms: float  # the rest: gateway, JWT checks, the function's own work, HTTP
    calls: Counter[str]  # per request, rounded
    scans: int  # Scan calls over every request: one is too many, however it rounds

    @property
    def meets_goal(self) -> bool:
        return self.p95_ms <= GOAL_P95_MS


class DynamoDBCalls:
    """Counts the DynamoDB operations made by any boto3 client in this process while `counting()` is active, and
    the time spent in them (moto's share of a request: moto answers every query by walking the whole table, where
    DynamoDB reads only the key's partition, so that share grows with the table on the local stack alone)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._active = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        original = BaseClient._make_api_call
        counter = self

        def counted(client: BaseClient, operation_name: str, api_params: Any) -> Any:
            if not (counter._active and client.meta.service_model.service_name == "dynamodb"):
                return original(client, operation_name, api_params)
            started = time.perf_counter()
            try:
                return original(client, operation_name, api_params)
            finally:
                with counter._lock:
                    counter.calls[operation_name] += 1
                    counter.seconds += time.perf_counter() - started

        BaseClient._make_api_call = counted
        try:
            yield
        finally:
            BaseClient._make_api_call = original

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        with self._lock:
            self.calls = Counter()
            self.seconds = 0.0
            self._active = True
        try:
            yield self.calls
        finally:
            with self._lock:
                self._active = False


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def operator_token(stack: LocalStack, audience: str) -> str:
    """An access token for the ops API from the emulator: the operator's client credentials, every ops scope."""
    emulator = stack.emulator
    answer = httpx.post(
        f"{emulator.issuer}oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_OPERATOR_CLIENT_ID,
            "client_secret": emulator.client_secret(DEFAULT_OPERATOR_CLIENT_ID),
            "audience": audience,
        },
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def run_real_mission(stack: LocalStack, missions: Any) -> str:
    """One dry run of the seeded account, through EventBridge and the agent; its mission id once completed."""
    mission_id = mission_id_for_event(stack.fire_scan({"dry_run": True}))
    deadline = time.monotonic() + MISSION_WAIT_SECONDS
    while time.monotonic() < deadline:
        item = missions.get_item(Key={"mission_id": mission_id}, ConsistentRead=True).get("Item") or {}
        if item.get("status") == MissionStatus.COMPLETED.value:
            return mission_id
        if item.get("status") in (MissionStatus.FAILED.value, MissionStatus.HALTED.value):
            raise RuntimeError(f"the seed mission {mission_id} ended {item['status']}: {item.get('error')}")
        time.sleep(0.5)
    raise RuntimeError(f"the seed mission {mission_id} did not complete in {MISSION_WAIT_SECONDS} s")


def store_missions(missions_table: Any, model_id: str, count: int, report_progress: Callable[[int], None]) -> None:
    """`count` more completed missions like `model_id`, oldest first, written as the agent writes them."""
    store = MissionStore(missions_table)
    model_item = store.get(model_id)
    model_report = store.read_report(model_id)
    if model_report is None:
        raise RuntimeError(f"the seed mission {model_id} has no report")
    summary = {
        name: model_item[name]
        for name in ("account_id", "plan_status", "counts", "by_severity", "by_cis_v5", "by_check", "change_ids")
        if name in model_item
    }
    check_ids = sorted(model_item.get("by_check") or {}) or sorted({f.check_id for f in model_report.findings})
    policy = PlanPolicy(max_changes_per_mission=25, max_share_per_resource_type=0.5, dry_run=True)
    start = datetime.now(UTC) - timedelta(minutes=count + 1)
    for index in range(count):
        created = start + timedelta(minutes=index)
        finished = created + timedelta(seconds=30)
        request = MissionRequest(
            mission_id=mission_id_for_event(f"bench-api-latency-{index}-{created.isoformat()}"),
            trigger=Trigger.SCHEDULED,
            regions=tuple(model_report.regions),
            policy=policy,
            requested_at=created.isoformat(),
        )
        store.create(request, created)
        report: MissionReport = model_report.model_copy(
            update={
                "mission_id": request.mission_id,
                "started_at": created.isoformat(),
                "finished_at": finished.isoformat(),
            }
        )
        pages, digest = store.write_report(report)
        store.record_latest_findings(request, check_ids, report.finished_at)
        store.update(
            request.mission_id,
            MissionStatus.COMPLETED,
            finished,
            report_pages=pages,
            report_digest=digest,
            completed_at=finished.isoformat(),
            **summary,
        )
        if (index + 1) % 100 == 0:
            report_progress(index + 1)


def measure(
    http: httpx.Client, calls: DynamoDBCalls, route: str, url: str, samples: int, check: Callable[[Any], None]
) -> RouteFigures:
    check(http.get(url).json())  # a warm container, as the p95 of a busy API is
    timings: list[float] = []
    in_dynamodb: list[float] = []
    totals: Counter[str] = Counter()
    for _ in range(samples):
        with calls.counting() as made:
            started = time.perf_counter()
            response = http.get(url)
            elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{route} answered {response.status_code}: {response.text[:200]}")
        timings.append(elapsed * 1000)
        in_dynamodb.append(calls.seconds * 1000)
        totals.update(made)
    if not sum(totals.values()):
        # The functions run in this process, so their calls are seen; none seen means the count is broken, not 0.
        raise RuntimeError(f"no DynamoDB call observed behind {route}")
    per_request = Counter({name: round(count / samples) for name, count in totals.items()})
    return RouteFigures(
        route=route,
        samples=samples,
        p50_ms=statistics.median(timings),
        p95_ms=percentile(timings, 0.95),
        dynamodb_p50_ms=statistics.median(in_dynamodb),
        outside_p95_ms=percentile([t - d for t, d in zip(timings, in_dynamodb, strict=True)], 0.95),
        calls=per_request,
        scans=totals["Scan"],
    )


def progress(line: str) -> None:
    # The terminal itself: while the log capture is installed, `print` would go to its process log.
    terminal = sys.__stdout__
    if terminal is not None:
        terminal.write(line + "\n")
        terminal.flush()


def run(mission_count: int, samples: int) -> list[RouteFigures]:
    calls = DynamoDBCalls()
    with (
        tempfile.TemporaryDirectory(prefix="aegis-bench-logs-") as logs,
        LogCapture(Path(logs)),  # the functions' log lines go to files, as on Lambda, not between the figures
        calls.installed(),
        LocalStack() as stack,
    ):
        region = stack.endpoints.region
        moto_url = stack.endpoints.moto_url
        seed_account(endpoint_session(moto_url, region), region)
        # Every handler imported once, up front: the figures measure warm containers, not imports racing each other.
        problems = stack.preload_handlers()
        if problems:
            raise RuntimeError(f"handlers that cannot load: {problems}")
        dynamodb = endpoint_session(moto_url, region).resource("dynamodb", endpoint_url=moto_url)
        missions_table = dynamodb.Table(stack.table_names()["MissionsTable"])
        started = time.perf_counter()
        model_id = run_real_mission(stack, missions_table)
        progress(f"seed mission {model_id} completed in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        store_missions(
            missions_table,
            model_id,
            mission_count - 1,
            lambda done: progress(f"  stored {done + 1} missions ({time.perf_counter() - started:.0f} s)"),
        )
        stack.drain_streams()
        api = stack.http_api_url()
        token = operator_token(stack, str(stack.parameters["OpsApiAudience"]))
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api, headers=headers, timeout=30) as http:
            deep_cursor, offset = deep_page_cursor(http, mission_count)

            def full_page(body: Any) -> None:
                if len(body["missions"]) != PAGE_SIZE:
                    raise RuntimeError(f"a page of {len(body['missions'])} missions, not {PAGE_SIZE}")

            def every_control(body: Any) -> None:
                if not any(control["state"] != "not-scanned" for control in body["controls"]):
                    raise RuntimeError("GET /findings shows no control the stored missions scanned")

            return [
                measure(http, calls, "GET /missions (first page)", f"/missions?limit={PAGE_SIZE}", samples, full_page),
                measure(
                    http,
                    calls,
                    f"GET /missions (page at {offset})",
                    f"/missions?limit={PAGE_SIZE}&next={deep_cursor}",
                    samples,
                    full_page,
                ),
                measure(http, calls, "GET /findings", "/findings", samples, every_control),
            ]


def deep_page_cursor(http: httpx.Client, mission_count: int) -> tuple[str, int]:
    """The cursor of a page about three quarters down the list, reached by following `next` from the first page."""
    target = max(PAGE_SIZE, (mission_count * 3 // 4) // PAGE_SIZE * PAGE_SIZE)
    cursor, offset = "", 0
    while offset < target:
        body = http.get("/missions", params={"limit": str(PAGE_SIZE), **({"next": cursor} if cursor else {})}).json()
        if not body.get("next"):
            break
        cursor, offset = str(body["next"]), offset + len(body["missions"])
    return cursor, offset


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--missions", type=int, default=None, help=f"missions stored (default {MISSIONS})")
    parser.add_argument("--samples", type=int, default=None, help=f"requests per route (default {SAMPLES})")
    parser.add_argument(
        "--small", action="store_true", help=f"a quick run: {SMALL_MISSIONS} missions, {SMALL_SAMPLES} requests"
    )
    args = parser.parse_args(argv)
    mission_count = args.missions or (SMALL_MISSIONS if args.small else MISSIONS)
    samples = args.samples or (SMALL_SAMPLES if args.small else SAMPLES)
    if mission_count < 2 * PAGE_SIZE:
        parser.error(f"--missions must be at least {2 * PAGE_SIZE}: the deep page must be past the first")
    figures = run(mission_count, samples)
    print_table(
        f"ops API on the local stack, {mission_count:,} missions stored, {samples} requests per route "
        f"(goal: p95 <= {GOAL_P95_MS:.0f} ms)",
        ["route", "p50 ms", "p95 ms", "goal", "in moto p50 ms", "outside moto p95 ms", "DynamoDB calls per request"],
        [
            [
                f.route,
                f.p50_ms,
                f.p95_ms,
                "met" if f.meets_goal else "MISSED",
                f.dynamodb_p50_ms,
                f.outside_p95_ms,
                ", ".join(f"{n} {name}" for name, n in sorted(f.calls.items()) if name in READ_OPERATIONS) or "none",
            ]
            for f in figures
        ],
    )
    scans = [f.route for f in figures if f.scans]
    if scans:
        print(f"\nFAILED: a Scan of a table behind {', '.join(scans)}")
    else:
        print("\nno request scanned a table: every read is a Query, GetItem or BatchGetItem")
    return 0 if not scans and all(f.meets_goal for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
