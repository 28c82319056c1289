"""Scan scale: the read-only scan of scan-account against a moto server, on accounts of growing size.

For each size (multiples of a base of 1,000 security-group rules, 100 buckets and 200 customer policies, built by
`bench.fixtures`; the moto server is reset between sizes) it prints the wall time of the scan, the API calls per
resource type and per resource, and compares every operation's calls with the floor: the fewest calls the AWS APIs
allow for that account.

The floor, per operation (AWS's page sizes):
- listings: one call per page: `DescribeSecurityGroupRules`, `DescribeSecurityGroups` and `DescribeVpcs` 1,000 a
  page; `GetAccountAuthorizationDetails` 1,000 items a page, every customer policy with its documents and every
  role with its attachments (no `GetPolicyVersion` per policy); `ListBuckets` 10,000 a page; the account-wide
  singletons (caller identity, password policy, account summary, EBS default, account Block Public Access, trails,
  KMS keys and aliases) once; the bucket list only when the account-level block leaves buckets to check;
- `DescribeNetworkInterfaces` (is a default group with rules in use?): one call per 1,000 interfaces, or per 200
  such groups with a `group-id` filter, whichever is fewer;
- per finding: `ListPolicyTags` per flagged policy and `GetBucketTagging` per public bucket (tags are in no listing;
  the planner needs `aegis:exempt`);
- per bucket, what S3 requires: nothing when the account-level Block Public Access ignores public ACLs and restricts
  public policies; otherwise `GetPublicAccessBlock` for every bucket, then `GetBucketAcl` and `GetBucketPolicy`
  only for buckets whose own block does not neutralise them. A bucket's region is free: `ListBuckets` with
  `MaxBuckets` returns `BucketRegion` - unless the server omits it (moto does; probed each run), in which case a
  public bucket also needs `GetBucketLocation`.
Moto returns every security-group rule and every IAM item in one page whatever the page size, so on moto the
listing calls sit below AWS's page floor; their pagination cannot be exercised here.

Each scan is repeated (`--repeats`, default 3; the scan only reads) and the fastest wall time kept, with the process
CPU time of that run (the client and the in-process moto server together), which a busy machine disturbs less. Cost
grows linearly when the time per resource stays roughly constant: the table prints the scaling exponent of CPU time
against resources between consecutive sizes, and the last line the exponent across the whole series (log of the time
ratio over log of the size ratio; 1.0 is linear).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from aegis.scan import ScanResult, run_scan
from aegis_local.cli.scan_account import ReadOnlySession
from bench.common import add_sizes, argument_parser, chosen_sizes, print_table
from bench.fixtures import FAKE_CREDENTIALS, REGION, AccountShape, BuiltAccount, MotoServer, build_account

BASE = AccountShape(rules=1_000, buckets=100, policies=200)
SMALL_BASE = AccountShape(rules=100, buckets=10, policies=20)
SIZES = (1, 4, 16)
SMALL_SIZES = (1, 4)
ISSUE4 = AccountShape(rules=5_000, buckets=500, policies=1_000)
LINEAR_EXPONENT_MAX = 1.25
RESOURCE_TYPES = {"ec2": "rules", "s3": "buckets", "s3control": "buckets", "iam": "policies"}
PAGE = {"ec2": 1_000, "iam": 1_000, "s3.ListBuckets": 10_000, "eni_filter": 200}


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    shape: AccountShape
    in_scaling: bool = True  # part of the growth series (same mix, growing size)


@dataclass(slots=True)
class Row:
    case: Case
    account: BuiltAccount
    result: ScanResult
    scan_seconds: float  # fastest wall time of the repeats
    cpu_seconds: float  # process CPU time of that run
    floor: dict[str, int]
    server_lists_bucket_regions: bool
    exponent: float | None = None
    above_floor: dict[str, tuple[int, int]] = field(default_factory=dict)  # operation -> (calls, floor)
    findings_mismatch: dict[str, tuple[int, int]] = field(default_factory=dict)  # check -> (found, expected)

    @property
    def resources(self) -> int:
        return self.account.rules + self.account.buckets + self.account.policies

    @property
    def calls(self) -> int:
        return self.result.total_api_calls

    def calls_by_type(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for operation, count in self.result.api_calls.items():
            totals[RESOURCE_TYPES.get(operation.split(".", 1)[0], "fixed")] += count
        return totals


def _pages(items: int, page_size: int) -> int:
    return max(1, math.ceil(items / page_size))


def api_floor(account: BuiltAccount, server_lists_bucket_regions: bool) -> dict[str, int]:
    """The fewest calls per operation the AWS APIs allow for a full scan of `account` (one region)."""
    floor = {
        "sts.GetCallerIdentity": 1,
        "ec2.DescribeSecurityGroupRules": _pages(account.rules, PAGE["ec2"]),
        "ec2.DescribeSecurityGroups": _pages(account.security_groups, PAGE["ec2"]),
        "ec2.DescribeVpcs": _pages(account.vpcs, PAGE["ec2"]),
        "ec2.DescribeFlowLogs": 1,
        "ec2.GetEbsEncryptionByDefault": 1,
        "iam.GetAccountAuthorizationDetails": _pages(account.policies + account.roles, PAGE["iam"]),
        "iam.GetAccountPasswordPolicy": 1,
        "iam.GetAccountSummary": 1,
        "s3control.GetPublicAccessBlock": 1,
        "kms.ListAliases": 1,
        "kms.ListKeys": 1,
        "cloudtrail.DescribeTrails": 1,
    }
    if account.default_groups_with_rules:
        # Whether a default group is in use: one listing of every interface, or one filtered on the default groups.
        floor["ec2.DescribeNetworkInterfaces"] = min(
            _pages(account.network_interfaces, PAGE["ec2"]),
            math.ceil(account.default_groups_with_rules / PAGE["eni_filter"]),
        )
    if account.admin_policies_attached:
        floor["iam.ListPolicyTags"] = account.admin_policies_attached
    # With the account-level block on, no bucket can be public: not even the bucket list is needed.
    if not account.shape.account_block_public_access and account.buckets:
        unblocked = account.buckets - account.buckets_fully_blocked
        floor["s3.ListBuckets"] = _pages(account.buckets, PAGE["s3.ListBuckets"])
        floor["s3.GetPublicAccessBlock"] = account.buckets
        floor["s3.GetBucketAcl"] = unblocked
        floor["s3.GetBucketPolicy"] = unblocked
        if account.public_buckets:
            floor["s3.GetBucketTagging"] = account.public_buckets
            if not server_lists_bucket_regions:
                floor["s3.GetBucketLocation"] = account.public_buckets
    return {operation: count for operation, count in floor.items() if count}


def expected_findings(account: BuiltAccount) -> dict[str, int]:
    """Findings whose number grows with the account, as the fixture built them."""
    return {
        "ec2-admin-port-open-ipv4": account.open_ssh_groups,
        "s3-bucket-public": 0 if account.shape.account_block_public_access else account.public_buckets,
        "iam-admin-policy-attached": account.admin_policies_attached,
    }


def lists_bucket_regions(server: MotoServer) -> bool:
    """Whether this server's ListBuckets returns BucketRegion when asked with a parameter, as AWS does."""
    buckets = server.session().client("s3").list_buckets(MaxBuckets=1).get("Buckets", [])
    return bool(buckets) and "BucketRegion" in buckets[0]


def timed_scan(server: MotoServer, max_workers: int) -> tuple[ScanResult, float, float]:
    session = ReadOnlySession(endpoint_url=server.url, region_name=REGION, **FAKE_CREDENTIALS)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_scan(session, [REGION], max_workers=max_workers)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure(server: MotoServer, case: Case, max_workers: int = 8, repeats: int = 3) -> Row:
    server.reset()
    account = build_account(server.session(), case.shape, REGION)
    runs = [timed_scan(server, max_workers) for _ in range(max(repeats, 1))]
    if len({json.dumps(result.api_calls, sort_keys=True) for result, _, _ in runs}) != 1:
        raise RuntimeError(f"{case.label}: repeated scans of the same account made different calls")
    result, scan_seconds, cpu_seconds = min(runs, key=lambda run: run[1])
    regions_listed = lists_bucket_regions(server)
    row = Row(case, account, result, scan_seconds, cpu_seconds, api_floor(account, regions_listed), regions_listed)
    for operation in sorted(set(result.api_calls) | set(row.floor)):
        calls, floor = result.api_calls.get(operation, 0), row.floor.get(operation, 0)
        if calls > floor:
            row.above_floor[operation] = (calls, floor)
    found = Counter(f.check_id for f in result.findings)
    for check_id, expected in expected_findings(account).items():
        if found[check_id] != expected:
            row.findings_mismatch[check_id] = (found[check_id], expected)
    return row


def cases(sizes: Sequence[int], base: AccountShape, issue4: bool, account_bpa_row: bool) -> list[Case]:
    chosen = [Case(f"{size}x", base.scaled(size)) for size in sizes]
    if issue4:
        chosen.append(Case("issue 4", ISSUE4))
    chosen.sort(key=lambda c: c.shape.rules + c.shape.buckets + c.shape.policies)
    if account_bpa_row:
        first = sizes[0] if sizes else 1
        shape = base.scaled(first)
        blocked = AccountShape(shape.rules, shape.buckets, shape.policies, account_block_public_access=True)
        chosen.append(Case(f"{first}x, account BPA on", blocked, in_scaling=False))
    return chosen


def run(
    sizes: Sequence[int],
    base: AccountShape = BASE,
    issue4: bool = True,
    account_bpa_row: bool = True,
    max_workers: int = 8,
    repeats: int = 3,
) -> list[Row]:
    rows: list[Row] = []
    with MotoServer() as server:
        for case in cases(sizes, base, issue4, account_bpa_row):
            rows.append(measure(server, case, max_workers, repeats))
    previous: Row | None = None
    for row in rows:
        if not row.case.in_scaling:
            continue
        if previous is not None:
            row.exponent = scaling_exponent(previous, row)
        previous = row
    return rows


def scaling_exponent(smaller: Row, larger: Row) -> float | None:
    """How CPU time grew with resources from `smaller` to `larger`: 1.0 linear, 2.0 quadratic."""
    if larger.resources <= smaller.resources or smaller.cpu_seconds <= 0 or larger.cpu_seconds <= 0:
        return None
    return math.log(larger.cpu_seconds / smaller.cpu_seconds) / math.log(larger.resources / smaller.resources)


def report(rows: Sequence[Row]) -> None:
    print_table(
        f"Scan scale: full scan of one region ({REGION}) on a moto server",
        [
            "size",
            "rules",
            "buckets",
            "policies",
            "build s",
            "scan s",
            "CPU s",
            "CPU ms/resource",
            "exponent",
            "findings",
            "calls",
            "calls/resource",
            "floor",
            "vs floor",
        ],
        [
            [
                row.case.label,
                row.account.rules,
                row.account.buckets,
                row.account.policies,
                row.account.build_seconds,
                f"{row.scan_seconds:.2f}",
                f"{row.cpu_seconds:.2f}",
                f"{1000 * row.cpu_seconds / row.resources:.3f}",
                "-" if row.exponent is None else f"{row.exponent:.2f}",
                len(row.result.findings),
                row.calls,
                f"{row.calls / row.resources:.3f}",
                sum(row.floor.values()),
                "ABOVE floor" if row.above_floor else "at floor",
            ]
            for row in rows
        ],
    )
    print_table(
        "API calls per resource type",
        ["size", "ec2 (rules)", "per rule", "s3 (buckets)", "per bucket", "iam (policies)", "per policy", "fixed"],
        [
            [
                row.case.label,
                by_type["rules"],
                f"{by_type['rules'] / max(row.account.rules, 1):.4f}",
                by_type["buckets"],
                f"{by_type['buckets'] / max(row.account.buckets, 1):.2f}",
                by_type["policies"],
                f"{by_type['policies'] / max(row.account.policies, 1):.4f}",
                by_type["fixed"],
            ]
            for row in rows
            for by_type in [row.calls_by_type()]
        ],
    )
    largest = max((row for row in rows if row.case.in_scaling), key=lambda r: r.resources, default=None)
    if largest is not None:
        print_table(
            f"Calls per operation at {largest.case.label} (floor: fewest calls the AWS APIs allow)",
            ["operation", "calls", "floor", "verdict"],
            [
                [op, largest.result.api_calls.get(op, 0), largest.floor.get(op, 0), _verdict(largest, op)]
                for op in sorted(set(largest.result.api_calls) | set(largest.floor))
            ],
        )
    above = [
        [row.case.label, op, calls, floor, calls - floor]
        for row in rows
        for op, (calls, floor) in row.above_floor.items()
    ]
    if above:
        print_table("ABOVE the floor", ["size", "operation", "calls", "floor", "extra"], above)
    mismatches = [
        [row.case.label, check, found, expected]
        for row in rows
        for check, (found, expected) in row.findings_mismatch.items()
    ]
    if mismatches:
        print_table("Findings that differ from what the fixture built", ["size", "check", "found", "built"], mismatches)
    errors = [[row.case.label, e.check_id, e.error, e.message] for row in rows for e in row.result.errors]
    if errors:
        print_table("Scan errors", ["size", "check", "error", "message"], errors)
    series = [row for row in rows if row.case.in_scaling]
    overall = scaling_exponent(series[0], series[-1]) if len(series) > 1 else None
    if overall is not None:
        linear = overall <= LINEAR_EXPONENT_MAX
        print(
            f"\ncost grew {'linearly' if linear else 'FASTER than linearly'}: CPU time exponent {overall:.2f} from "
            f"{series[0].case.label} to {series[-1].case.label} (1.0 = linear; limit {LINEAR_EXPONENT_MAX}); "
            f"calls per resource {series[0].calls / series[0].resources:.3f} -> "
            f"{series[-1].calls / series[-1].resources:.3f}"
        )
    if rows and not rows[0].server_lists_bucket_regions:
        print("note: this server's ListBuckets omits BucketRegion, so a public bucket's region costs a call here")
    print("note: moto answers each listing in one page, below AWS's page floor; pagination is not exercised here")


def _verdict(row: Row, operation: str) -> str:
    calls, floor = row.result.api_calls.get(operation, 0), row.floor.get(operation, 0)
    if calls > floor:
        return "ABOVE floor"
    return "at floor" if calls == floor else "below (one moto page)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    small, at = SMALL_BASE, ",".join(map(str, SMALL_SIZES))
    quick = f"a quick run: base {small.rules}/{small.buckets}/{small.policies} at sizes {at}"
    add_sizes(parser, "--sizes", "multiples of the base account", SIZES, SMALL_SIZES, small_help=quick)
    parser.add_argument("--rules", type=int, default=None, help=f"rules in the 1x account (default {BASE.rules})")
    parser.add_argument("--buckets", type=int, default=None, help=f"buckets in the 1x account (default {BASE.buckets})")
    parser.add_argument(
        "--policies", type=int, default=None, help=f"policies in the 1x account (default {BASE.policies})"
    )
    parser.add_argument(
        "--issue4",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="include issue 4's account: 5,000 rules, 500 buckets, 1,000 policies (default: on, off with --small)",
    )
    parser.add_argument(
        "--account-bpa-row",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the smallest size again with the account-level Block Public Access on (default: on)",
    )
    parser.add_argument("--max-workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="scans per size; the fastest counts (default 3)")
    args = parser.parse_args(argv)
    base = SMALL_BASE if args.small else BASE
    base = AccountShape(
        rules=args.rules if args.rules is not None else base.rules,
        buckets=args.buckets if args.buckets is not None else base.buckets,
        policies=args.policies if args.policies is not None else base.policies,
    )
    sizes = chosen_sizes(args.sizes, args.small, SIZES, SMALL_SIZES)
    issue4 = args.issue4 if args.issue4 is not None else not args.small
    rows = run(
        sizes,
        base,
        issue4=issue4,
        account_bpa_row=args.account_bpa_row,
        max_workers=args.max_workers,
        repeats=args.repeats,
    )
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
