"""Organization scale: one organization scan (dry run: scan and plan every account) on the local stack, for
organizations of growing size.

For each size N (default 1, 10, 50 member accounts; `--small`: 1, 3) a fresh local stack heads a moto Organization
of N members, each with member/template.yaml's roles and seeded like the demo account (aegis_local.scenario.seed) in
each of the regions (default three). The security account itself is left out of the scan (OrgScanExcludeAccounts),
so every scanned account is a member read through its AegisScanRole. One `aegis.scan` event with
`{"organization": true, "dry_run": true}` starts the org-scan execution; the run ends when it ended and every
account's mission completed. Printed per size:

- wall time from the event to the end, and per account;
- API calls: each account's scan counts its own (the mission item's `counts.api_calls`); per account and per seeded
  resource, and against the 1-account organization's (an organization scan must cost each account what one account
  costs: the ratio stays 1.00);
- peak RSS of the process (sampled every 50 ms while the size runs; the stack, moto and every handler share it);
- the Distributed Map's largest observed concurrency: the most account scans (AgentScanFunction invocations from the
  Map) running at one time here;
- from the per-item times, the wall time AWS would take at the configured OrgScanMaxConcurrency: each account scan's
  isolated time (locally the scans share one process: while k run, each gets 1/k of it, so its isolated time is the
  integral of 1/k over its interval; on AWS each runs in a Lambda of its own), scheduled greedily, in item order, on
  that many slots, plus the ListAccounts and Summarize steps as measured.
"""

from __future__ import annotations

import heapq
import io
import itertools
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import add_sizes, argument_parser, chosen_sizes, print_table

SIZES = (1, 10, 50)
SMALL_SIZES = (1, 3)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
SECURITY_ACCOUNT = "123456789012"
DEFAULT_MAX_CONCURRENCY = 10
SCAN_FUNCTION = "AgentScanFunction"
ORG_FUNCTION = "OrgScanFunction"
SAMPLE_SECONDS = 0.05
TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Interval:
    start: float  # seconds since the event
    seconds: float

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass(slots=True)
class Row:
    accounts: int
    regions: int
    resources: int  # seeded resources, all accounts
    seed_seconds: float
    wall_seconds: float
    api_calls: int
    statuses: dict[str, int]
    peak_rss_mb: float
    scans: list[Interval] = field(default_factory=list)  # the Map's account scans, in start order
    list_seconds: float = 0.0
    summarize_seconds: float = 0.0
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    problems: list[str] = field(default_factory=list)

    @property
    def calls_per_account(self) -> float:
        return self.api_calls / self.accounts

    @property
    def calls_per_resource(self) -> float:
        return self.api_calls / max(self.resources, 1)

    @property
    def observed_concurrency(self) -> int:
        return largest_overlap(self.scans)

    @property
    def projected_seconds(self) -> float:
        """What AWS would take: ListAccounts, the scans (each at its isolated time) on `max_concurrency` slots,
        Summarize."""
        scans = makespan(isolated_seconds(self.scans), self.max_concurrency)
        return self.list_seconds + scans + self.summarize_seconds


def largest_overlap(intervals: Sequence[Interval]) -> int:
    """The most intervals open at one instant (an interval ending exactly when another starts does not overlap)."""
    edges = sorted([(i.start, 1) for i in intervals] + [(i.end, -1) for i in intervals], key=lambda e: (e[0], e[1]))
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


def isolated_seconds(intervals: Sequence[Interval]) -> list[float]:
    """Each interval's time had it run alone: locally the account scans share one process, so while k of them run
    each gets 1/k of it (processor sharing); on AWS each runs in a Lambda of its own. Same order as `intervals`."""
    edges = sorted({i.start for i in intervals} | {i.end for i in intervals})
    alone = [0.0] * len(intervals)
    for left, right in itertools.pairwise(edges):
        running = [n for n, i in enumerate(intervals) if i.start <= left and i.end >= right]
        for n in running:
            alone[n] += (right - left) / len(running)
    return alone


def makespan(durations: Sequence[float], slots: int) -> float:
    """Wall time of `durations` run in order, each on the first free of `slots` workers (a Map's item scheduling)."""
    if slots < 1:
        raise ValueError("at least one slot")
    free = [0.0] * min(slots, max(len(durations), 1))
    heapq.heapify(free)
    end = 0.0
    for duration in durations:
        start = heapq.heappop(free)
        finish = start + duration
        end = max(end, finish)
        heapq.heappush(free, finish)
    return end


def seeded_resources(seeded: Any, first_region: bool) -> int:
    """What a scan reads of one seeded region: its VPCs, groups, keys and trails; IAM and S3 (global) once."""
    regional = len(seeded.vpcs) + len(seeded.security_groups) + len(seeded.kms_keys) + len(seeded.trails)
    global_ = len(seeded.buckets) + len(seeded.policies) + 1 if first_region else 0
    return regional + global_


class RssSampler:
    """The process's peak resident set while it runs (VmRSS of /proc/self/status, else ru_maxrss)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        self.peak_kb = max(self.peak_kb, current_rss_kb())


def current_rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _since(moment: datetime, origin: datetime) -> float:
    return (moment - origin).total_seconds()


def measure(accounts: int, regions: Sequence[str], max_concurrency: int) -> Row:
    from datetime import UTC

    from aegis_local.aws.logs import LogCapture
    from aegis_local.aws.organization import OrganizationSpec
    from aegis_local.aws.stack import LocalStack
    from aegis_local.scenario.demo import DEMO_PARAMETERS, ORG_DEMO_PARAMETERS, Console, demo_emulator_config
    from aegis_local.scenario.organization import OrganizationDriver, org_mission_items, seed_organization

    quiet = Console(io.StringIO())
    parameters = {
        **DEMO_PARAMETERS,
        **ORG_DEMO_PARAMETERS,
        "OrgScanExcludeAccounts": SECURITY_ACCOUNT,
        "OrgScanMaxConcurrency": str(max_concurrency),
        "OrgScanToleratedFailurePercentage": "0",
        "ScanRegions": ",".join(regions),
    }
    with (
        tempfile.TemporaryDirectory(prefix="aegis-org-scale-") as logs,
        LogCapture(Path(logs)),
        RssSampler() as rss,
        LocalStack(
            emulator_config=demo_emulator_config(),
            parameters=parameters,
            organization=OrganizationSpec(accounts=accounts),
        ) as stack,
    ):
        began = time.perf_counter()
        seeded = seed_organization(stack, regions, quiet, management=False)
        seed_seconds = time.perf_counter() - began
        stack.preload_handlers()
        resources = sum(
            seeded_resources(seeded[(account, region)], index == 0)
            for account in stack.organization.member_account_ids
            for index, region in enumerate(regions)
        )
        fired_at = datetime.now(UTC)
        began = time.perf_counter()
        run = OrganizationDriver(stack, quiet, None, timeout_seconds=TIMEOUT_SECONDS, poll_seconds=0.5).run(
            {"regions": list(regions), "dry_run": True}
        )
        wall = time.perf_counter() - began
        items = org_mission_items(
            stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable")), run.org_scan_id
        )
        records = [r for r in stack.lambdas.records(SCAN_FUNCTION) if r.started_at >= fired_at]
        # The Map's items are synchronous invocations; the event's delivery to the agent is asynchronous.
        scans = sorted(
            (
                Interval(_since(r.started_at, fired_at), r.duration_ms / 1000)
                for r in records
                if str(r.invocation_type) == "RequestResponse"
            ),
            key=lambda i: i.start,
        )
        org_steps = sorted(
            (r for r in stack.lambdas.records(ORG_FUNCTION) if r.started_at >= fired_at), key=lambda r: r.started_at
        )
    statuses: dict[str, int] = {}
    for item in items:
        statuses[str(item.get("status"))] = statuses.get(str(item.get("status")), 0) + 1
    row = Row(
        accounts=accounts,
        regions=len(regions),
        resources=resources,
        seed_seconds=seed_seconds,
        wall_seconds=wall,
        api_calls=sum(int((item.get("counts") or {}).get("api_calls", 0)) for item in items),
        statuses=statuses,
        peak_rss_mb=rss.peak_kb / 1024,
        scans=scans,
        list_seconds=org_steps[0].duration_ms / 1000 if org_steps else 0.0,
        summarize_seconds=org_steps[-1].duration_ms / 1000 if len(org_steps) > 1 else 0.0,
        max_concurrency=max_concurrency,
        problems=list(run.problems),
    )
    if statuses != {"completed": accounts}:
        row.problems.append(f"account missions ended {statuses}, not {accounts} completed")
    if len(scans) != accounts:
        row.problems.append(f"{len(scans)} account scans observed for {accounts} accounts")
    return row


def report(rows: Sequence[Row]) -> None:
    if not rows:
        return
    base = rows[0]
    print_table(
        f"Organization scan (dry run), {base.regions} regions per account, OrgScanMaxConcurrency "
        f"{base.max_concurrency}, on the local stack",
        [
            "accounts",
            "resources",
            "seed s",
            "wall s",
            "s/account",
            "calls",
            "calls/account",
            f"vs {base.accounts} account",
            "calls/resource",
            "peak RSS MB",
            "Map concurrency seen",
            "AWS wall s (projected)",
        ],
        [
            [
                row.accounts,
                row.resources,
                f"{row.seed_seconds:.1f}",
                f"{row.wall_seconds:.1f}",
                f"{row.wall_seconds / row.accounts:.2f}",
                row.api_calls,
                f"{row.calls_per_account:.1f}",
                f"{row.calls_per_account / max(base.calls_per_account, 1e-9):.2f}",
                f"{row.calls_per_resource:.3f}",
                f"{row.peak_rss_mb:.0f}",
                row.observed_concurrency,
                f"{row.projected_seconds:.1f}",
            ]
            for row in rows
        ],
    )
    print_table(
        "Per-item times (one account scan each; isolated = had it run alone) and the projection",
        [
            "accounts",
            "items",
            "median item s",
            "max item s",
            "median isolated s",
            "ListAccounts s",
            "Summarize s",
            "projected s",
        ],
        [
            [
                row.accounts,
                len(row.scans),
                f"{_median([s.seconds for s in row.scans]):.2f}",
                f"{max((s.seconds for s in row.scans), default=0):.2f}",
                f"{_median(isolated_seconds(row.scans)):.2f}",
                f"{row.list_seconds:.2f}",
                f"{row.summarize_seconds:.2f}",
                f"{row.projected_seconds:.1f}",
            ]
            for row in rows
        ],
    )
    problems = [[row.accounts, problem] for row in rows for problem in row.problems]
    if problems:
        print_table("PROBLEMS", ["accounts", "problem"], problems)
    print(
        "\nnote: locally every account scan shares one process (moto, the handlers); the projection schedules the "
        "measured item times on OrgScanMaxConcurrency slots, as the Distributed Map would run child executions on AWS"
    )


def _median(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 2] if values else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    add_sizes(parser, "--sizes", "member accounts per organization", SIZES, SMALL_SIZES)
    parser.add_argument("--regions", default=",".join(REGIONS), help=f"default {','.join(REGIONS)}")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=DEFAULT_MAX_CONCURRENCY,
        help=f"the stack's OrgScanMaxConcurrency (default {DEFAULT_MAX_CONCURRENCY})",
    )
    args = parser.parse_args(argv)
    regions = [region.strip() for region in args.regions.split(",") if region.strip()]
    rows = []
    for accounts in chosen_sizes(args.sizes, args.small, SIZES, SMALL_SIZES):
        rows.append(measure(accounts, regions, args.max_concurrency))
        print(f"measured {accounts} accounts in {rows[-1].wall_seconds:.1f} s", flush=True)
    report(rows)
    return 1 if any(row.problems for row in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", REGIONS[0])
    raise SystemExit(main())
