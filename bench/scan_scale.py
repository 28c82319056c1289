"""Scan scale: the read-only scan of scan-account against a moto server, on accounts of growing size.

For each size (multiples of a base of 1,000 security-group rules, 100 buckets, 200 customer policies, 20 EC2
instances, 10 custom network ACLs and 5 RDS DB instances, built by `bench.fixtures`; the moto server is reset between
sizes) it prints the wall time of the scan, the API calls per resource type and per resource, and compares every
operation's calls with the floor: the fewest calls the AWS APIs allow for that account.

The floor, per operation (AWS's page sizes):
- listings: one call per page: `DescribeSecurityGroupRules`, `DescribeSecurityGroups`, `DescribeVpcs`,
  `DescribeInstances` and `DescribeNetworkAcls` 1,000 a page; `DescribeDBInstances` 100 a page;
  `GetAccountAuthorizationDetails` 1,000 items a page, every customer policy with all its versions' documents and
  every role, user and group with its attachments, inline policies and tags (no `GetPolicyVersion` per policy, no
  `Get*Policy` per entity); `ListBuckets` 10,000 a page, whenever there are buckets; the account-wide singletons
  (caller identity, password policy, account summary (root keys and MFA), EBS default, account Block Public Access,
  trails with their KMS keys, KMS keys and aliases) once; per region, AWS Config's recorders and delivery channels
  once each, and the recorders' status once when the region has a recorder;
- `DescribeNetworkInterfaces` (is a default group with rules in use?): one call per 1,000 interfaces, or per 200
  such groups with a `group-id` filter, whichever is fewer;
- per finding: `ListPolicyTags` per flagged managed policy and `GetBucketTagging` per flagged bucket (public, or
  not denying plain HTTP): tags are in no listing, and the planner needs `aegis:exempt`. Instances, ACLs, DB
  instances, roles, users and groups carry their tags in their listing: nothing per finding;
- per bucket, what S3 requires: `GetBucketPolicy` for every bucket (whether the policy denies plain HTTP is the
  policy's business alone, whatever Block Public Access says; the public-bucket check reuses the same read); unless
  the account-level Block Public Access ignores public ACLs and restricts public policies, `GetPublicAccessBlock`
  for every bucket, then `GetBucketAcl` only for buckets whose own block does not neutralise them. A bucket's region
  is free: `ListBuckets` with `MaxBuckets` returns `BucketRegion` - unless the server omits it (moto does; probed
  each run), in which case a flagged bucket also needs `GetBucketLocation`.
Moto returns every security-group rule and every IAM item in one page whatever the page size, so on moto those
listing calls sit below AWS's page floor; their pagination cannot be exercised here.

Each scan is repeated (`--repeats`, default 3; the scan only reads) and the fastest wall time kept, with the process
CPU time of that run (the client and the in-process moto server together), which a busy machine disturbs less. Cost
grows linearly when the time per resource stays roughly constant: the table prints the scaling exponent of CPU time
against resources between consecutive sizes, and the last line the exponent across the whole series (log of the time
ratio over log of the size ratio; 1.0 is linear).

Before and after issue 18 (`--compare`, on by default): the first size is scanned once more with only the checks
that existed before issue 18 (`BEFORE_ISSUE_18`), and a table prints per operation the calls before and after, with
the totals and the calls per resource. Each operation is classed by its floor (a listing, a singleton, or one of the
per-bucket and per-finding reads above); any other operation whose calls grow with the resources (above its floor,
or growing faster than its floor from the smallest to the largest size) is flagged: a listing already carries its
data.

Against a naive scan (issue 21; `--baseline`, on by default): on the same account, interleaved with our scan's
repeats, `naive_scan` makes three of our checks the obvious way, one call after the other with plain boto3 clients:
open admin ports through the `DescribeSecurityGroupRules` paginator; public buckets with the account's Block Public
Access once, then `GetPublicAccessBlock`, `GetBucketAcl` and `GetBucketPolicy` for every bucket; `*:*` policies with
`ListPolicies` (Scope=Local) paginated, then `GetPolicyVersion` of each default version. Its findings must be the
very resources ours finds, in the numbers the fixture built. Our scan of those three checks only is timed too, for
the like-for-like ratio. Printed per size: wall times and ratios, calls per resource, and where the CPU time went:
- server CPU: moto runs in this process as a server (`bench.fixtures.MotoServer`), and each of its requests is
  handled on a werkzeug thread, so the thread CPU time across each request's handling (`time.thread_time`, which
  counts neither the wait for the GIL nor the idle wait on a kept-alive connection) summed over requests is what
  the server cost; the client's is the rest of the process's CPU time over the run (the scan's threads, and a
  negligible RSS sampler). Client and server share one interpreter and its GIL here, so the wall time is roughly
  their sum, whatever the threads: on AWS the server's time is not the scanner's;
- peak RSS: of this process while the scan runs (sampled every 50 ms, `bench.org_scale.RssSampler`), which holds
  moto and the account too; and, the goal's figure, of a fresh process that only scans the account once (its
  kernel high-water mark, VmHWM), as a Lambda function would.
At the 16x size the goals are printed beside the figures: wall time at most 1/4 of the naive scan's, at most 0.25
calls per resource, at most 150 MB peak. `--latency-ms` answers every request of the scans that much late (a sleep,
which takes no CPU), a stand-in for AWS's round trips, which moto has not.

The exit status is 1 when a size is above its floor, a finding count differs from what the fixture built, a scan
reports errors, an operation is flagged, the naive scan disagrees, or a goal at 16x is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aegis.aws_sessions import shared_data_loader
from aegis.scan import ScanResult, run_scan
from aegis_local.cli.scan_account import ReadOnlySession
from bench.common import add_sizes, argument_parser, chosen_sizes, print_table
from bench.fixtures import FAKE_CREDENTIALS, REGION, AccountShape, BuiltAccount, MotoServer, build_account
from bench.org_scale import RssSampler, current_rss_kb

BASE = AccountShape(rules=1_000, buckets=100, policies=200, instances=20, network_acls=10, db_instances=5)
SMALL_BASE = AccountShape(rules=100, buckets=10, policies=20, instances=8, network_acls=4, db_instances=5)
SIZES = (1, 4, 16)
SMALL_SIZES = (1, 4)
ISSUE4 = AccountShape(rules=5_000, buckets=500, policies=1_000, instances=100, network_acls=50, db_instances=25)
LINEAR_EXPONENT_MAX = 1.25
# Issue 21's goals, judged at GOAL_SIZE (the 16x account): the scan's wall time against the naive scan's, its calls
# per resource, and the process's peak resident set while it scans.
GOAL_SIZE = 16
GOAL_WALL_RATIO = 0.25
GOAL_CALLS_PER_RESOURCE = 0.25
GOAL_PEAK_MB = 150.0
# The three checks the naive scan makes, under our check ids.
NAIVE_CHECKS = ("ec2-admin-port-open-ipv4", "s3-bucket-public", "iam-admin-policy-attached")
# Calls by the resource type they grow with: "service.Operation" first, then "service"; the rest are "fixed".
RESOURCE_TYPES = {
    "ec2.DescribeInstances": "instances",
    "ec2.DescribeNetworkAcls": "network_acls",
    "ec2": "rules",
    "s3": "buckets",
    "s3control": "buckets",
    "iam": "policies",
    "rds": "db_instances",
}
PAGE = {"ec2": 1_000, "iam": 1_000, "rds": 100, "s3.ListBuckets": 10_000, "eni_filter": 200}
# The checks that existed before issue 18, for the before/after comparison (issue 18 added nine more; any check
# added since is "after" too).
BEFORE_ISSUE_18 = (
    "cloudtrail-log-file-validation-off",
    "cloudtrail-no-multi-region-trail",
    "ec2-admin-port-open-ipv4",
    "ec2-admin-port-open-ipv6",
    "ec2-default-sg-allows-traffic",
    "ec2-ebs-default-encryption-off",
    "ec2-vpc-flow-logs-off",
    "iam-admin-policy-attached",
    "iam-password-policy-weak",
    "iam-root-access-keys",
    "kms-key-rotation-off",
    "s3-account-public-access-block-off",
    "s3-bucket-public",
)
# How each operation of the floor grows. The per-resource ones are the reads that no listing carries; any other
# operation that grows with the resources is flagged by the comparison.
PER_RESOURCE = {
    "s3.GetBucketPolicy": "per bucket",
    "s3.GetPublicAccessBlock": "per bucket",
    "s3.GetBucketAcl": "per bucket without its own ACL block",
    "s3.GetBucketTagging": "per flagged bucket",
    "s3.GetBucketLocation": "per flagged bucket (server omits BucketRegion)",
    "iam.ListPolicyTags": "per flagged policy",
}
ONCE = {
    "sts.GetCallerIdentity": "once",
    "ec2.DescribeFlowLogs": "once per region",
    "ec2.GetEbsEncryptionByDefault": "once per region",
    "iam.GetAccountPasswordPolicy": "once",
    "iam.GetAccountSummary": "once",
    "s3control.GetPublicAccessBlock": "once",
    "kms.ListAliases": "once per region",
    "kms.ListKeys": "once per region",
    "cloudtrail.DescribeTrails": "once per region",
    "config.DescribeConfigurationRecorders": "once per region",
    "config.DescribeConfigurationRecorderStatus": "once per region with a recorder",
    "config.DescribeDeliveryChannels": "once per region",
}
LISTINGS = {
    "ec2.DescribeSecurityGroupRules": "page of 1,000",
    "ec2.DescribeSecurityGroups": "page of 1,000",
    "ec2.DescribeVpcs": "page of 1,000",
    "ec2.DescribeInstances": "page of 1,000",
    "ec2.DescribeNetworkAcls": "page of 1,000",
    "ec2.DescribeNetworkInterfaces": "page of 1,000 or 200 groups",
    "rds.DescribeDBInstances": "page of 100",
    "iam.GetAccountAuthorizationDetails": "page of 1,000",
    "s3.ListBuckets": "page of 10,000",
}


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    shape: AccountShape
    in_scaling: bool = True  # part of the growth series (same mix, growing size)


@dataclass(frozen=True, slots=True)
class NaiveResult:
    """What the naive scan found (check id -> resource ARNs, under our check ids) and the calls it made."""

    findings: dict[str, list[str]]
    api_calls: dict[str, int]

    @property
    def total_api_calls(self) -> int:
        return sum(self.api_calls.values())


@dataclass(frozen=True, slots=True)
class Timing:
    """One timed run: wall and process CPU time, the moto server's share of that CPU time, and the process's
    resident set before the run and at its sampled peak."""

    wall: float
    cpu: float
    server_cpu: float
    rss_before_kb: int
    peak_rss_kb: int

    @property
    def client_cpu(self) -> float:
        return max(self.cpu - self.server_cpu, 0.0)


@dataclass(frozen=True, slots=True)
class Naive:
    result: NaiveResult
    timing: Timing  # the fastest of the repeats
    # Our scan with only the naive scan's three checks, same account, same run (the fastest of the repeats).
    three_checks: ScanResult | None = None
    three_checks_timing: Timing | None = None

    @property
    def three_checks_ratio(self) -> float | None:
        if self.three_checks_timing is None or self.timing.wall <= 0:
            return None
        return self.three_checks_timing.wall / self.timing.wall


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
    before: ScanResult | None = None  # the same account scanned with the checks of BEFORE_ISSUE_18 only
    server_seconds: float = 0.0  # the moto server's CPU time in the fastest run (the rest is the client's)
    rss_before_kb: int = 0  # the process's resident set when the fastest run started
    peak_rss_kb: int = 0  # the process's peak resident set over every repeat (moto and the account included)
    scan_process_peak_kb: int = 0  # the peak resident set of a process that only scans (scan_process_peak_kb)
    naive: Naive | None = None  # the naive scan of the same account, same run
    naive_mismatch: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # check -> (naive, ours, built)

    @property
    def client_seconds(self) -> float:
        return max(self.cpu_seconds - self.server_seconds, 0.0)

    @property
    def wall_ratio(self) -> float | None:
        """The scan's wall time over the naive scan's (the goal: at most GOAL_WALL_RATIO at GOAL_SIZE)."""
        if self.naive is None or self.naive.timing.wall <= 0:
            return None
        return self.scan_seconds / self.naive.timing.wall

    @property
    def resources(self) -> int:
        return self.account.resources

    @property
    def calls(self) -> int:
        return self.result.total_api_calls

    def calls_by_type(self) -> Counter[str]:
        return calls_by_type(self.result.api_calls)


@dataclass(frozen=True, slots=True)
class Compared:
    """One operation of the before/after comparison."""

    operation: str
    kind: str
    before: int
    after: int
    floor: int
    verdict: str
    flagged: bool


def calls_by_type(api_calls: dict[str, int]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for operation, count in api_calls.items():
        service = operation.split(".", 1)[0]
        totals[RESOURCE_TYPES.get(operation, RESOURCE_TYPES.get(service, "fixed"))] += count
    return totals


def _pages(items: int, page_size: int) -> int:
    return max(1, math.ceil(items / page_size))


def api_floor(account: BuiltAccount, server_lists_bucket_regions: bool) -> dict[str, int]:
    """The fewest calls per operation the AWS APIs allow for a full scan of `account` (one region, every check)."""
    floor = {
        "sts.GetCallerIdentity": 1,
        "ec2.DescribeSecurityGroupRules": _pages(account.rules, PAGE["ec2"]),
        "ec2.DescribeSecurityGroups": _pages(account.security_groups, PAGE["ec2"]),
        "ec2.DescribeVpcs": _pages(account.vpcs, PAGE["ec2"]),
        "ec2.DescribeFlowLogs": 1,
        "ec2.GetEbsEncryptionByDefault": 1,
        "ec2.DescribeInstances": _pages(account.instances, PAGE["ec2"]),
        "ec2.DescribeNetworkAcls": _pages(account.network_acls, PAGE["ec2"]),
        "rds.DescribeDBInstances": _pages(account.db_instances, PAGE["rds"]),
        "config.DescribeConfigurationRecorders": 1,
        "config.DescribeConfigurationRecorderStatus": 1 if account.config_recorders else 0,
        "config.DescribeDeliveryChannels": 1,
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
    if account.buckets:
        # Every bucket's policy says whether it denies plain HTTP, whatever Block Public Access does.
        floor["s3.ListBuckets"] = _pages(account.buckets, PAGE["s3.ListBuckets"])
        floor["s3.GetBucketPolicy"] = account.buckets
        # With the account-level block on, no bucket can be public: no bucket-level block or ACL to read.
        if not account.shape.account_block_public_access:
            floor["s3.GetPublicAccessBlock"] = account.buckets
            floor["s3.GetBucketAcl"] = account.buckets - account.buckets_fully_blocked
        # Flagged buckets: those allowing plain HTTP, the public ones among them (see bench.fixtures).
        flagged = account.buckets_allowing_http
        floor["s3.GetBucketTagging"] = flagged
        if not server_lists_bucket_regions:
            floor["s3.GetBucketLocation"] = flagged
    return {operation: count for operation, count in floor.items() if count}


def expected_findings(account: BuiltAccount) -> dict[str, int]:
    """Findings whose number grows with the account, as the fixture built them."""
    return {
        "ec2-admin-port-open-ipv4": account.open_ssh_groups,
        "s3-bucket-public": 0 if account.shape.account_block_public_access else account.public_buckets,
        "s3-bucket-insecure-transport-allowed": account.buckets_allowing_http,
        "iam-admin-policy-attached": account.admin_policies_attached,
        "iam-inline-policy-admin": account.inline_admin_roles,
        "ec2-instance-imdsv2-not-required": account.imdsv1_instances,
        "ec2-nacl-admin-port-open": account.open_network_acls,
        "rds-instance-publicly-accessible": account.public_db_instances,
        "rds-storage-unencrypted": account.unencrypted_db_instances,
    }


def lists_bucket_regions(server: MotoServer) -> bool:
    """Whether this server's ListBuckets returns BucketRegion when asked with a parameter, as AWS does."""
    buckets = server.session().client("s3").list_buckets(MaxBuckets=1).get("Buckets", [])
    return bool(buckets) and "BucketRegion" in buckets[0]


def timed[T](server: MotoServer, work: Callable[[], T]) -> tuple[T, Timing]:
    """Run `work` once, timing it: wall and process CPU time, the server's CPU time (`MotoServer.cpu_seconds`), and
    the process's resident set (sampled every 50 ms by `RssSampler`)."""
    gc.collect()  # what the previous run left behind should not count against this one
    rss_before = current_rss_kb()
    server_before = server.cpu_seconds
    with RssSampler() as rss:
        wall, cpu = time.perf_counter(), time.process_time()
        value = work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return value, Timing(wall, cpu, server.cpu_seconds - server_before, rss_before, rss.peak_kb)


def read_only_session(server: MotoServer) -> ReadOnlySession:
    """A fresh read-only session on the server, reading service models through the process's shared loader, as
    every scan's session does in the Lambda functions (`aegis.aws_sessions.fresh_session`): the repeats measure a
    warm container's scan, not the parsing of the same model files again."""
    session = ReadOnlySession(endpoint_url=server.url, region_name=REGION, **FAKE_CREDENTIALS)
    session._session.register_component("data_loader", shared_data_loader())  # boto3 has no public accessor
    return session


def timed_scan(
    server: MotoServer, max_workers: int, check_ids: Sequence[str] | None = None
) -> tuple[ScanResult, Timing]:
    chosen = list(check_ids) if check_ids is not None else None
    return timed(
        server, lambda: run_scan(read_only_session(server), [REGION], check_ids=chosen, max_workers=max_workers)
    )


# The scan alone in a fresh process, as a Lambda runs it: its peak resident set is the kernel's high-water mark of
# that process (VmHWM, exact, not sampled; not ru_maxrss, which a forked child carries over from this process
# across exec), without the moto server and the account this process holds.
_SCAN_CHILD = """
import json, sys
from aegis.scan import run_scan
from aegis_local.cli.scan_account import ReadOnlySession
url, region, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
session = ReadOnlySession(endpoint_url=url, region_name=region, **keys)
result = run_scan(session, [region], max_workers=workers)
with open("/proc/self/status", encoding="ascii") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_kb": peak, "findings": len(result.findings), "calls": result.total_api_calls}))
"""


def scan_process_peak_kb(server: MotoServer, max_workers: int) -> int:
    """The peak resident set of a fresh process that imports the scanner and scans the server's account once."""
    done = subprocess.run(
        [sys.executable, "-c", _SCAN_CHILD, server.url, REGION, str(max_workers)],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_kb"])


# The naive baseline: what a scanner written the obvious way does for three of our checks, one call after the other
# with plain boto3 clients (default configuration), deciding each finding the way our check does on this fixture.


_PUBLIC_GRANTEES = {
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
}


class _CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1


def naive_scan(session: Any, region: str) -> NaiveResult:
    """The three checks, sequentially:

    - open admin ports (ec2-admin-port-open-ipv4): the `DescribeSecurityGroupRules` paginator; a group is flagged
      when one of its ingress rules opens port 22 or 3389 (TCP or every protocol) to 0.0.0.0/0;
    - public buckets (s3-bucket-public): the account's Block Public Access once, `ListBuckets`, then for every bucket
      `GetPublicAccessBlock`, `GetBucketAcl` and `GetBucketPolicy`: the three reads that say whether it is public
      and why (`GetBucketPolicyStatus` would say only whether the policy is public, not which statement, and a
      scanner that reports what to fix needs the policy anyway). Public: a grant to everyone or to every AWS user
      that no block ignores, or an Allow to principal `*` without a condition that no block restricts;
    - `*:*` policies (iam-admin-policy-attached): `ListPolicies` (Scope=Local) paginated, then `GetPolicyVersion` of
      each policy's default version; flagged when attached and an Allow statement has Action `*` (or `*:*`) on
      Resource `*`.
    """
    counter = _CallCounter()

    def client(service: str) -> Any:
        made = session.client(service, region_name=region)
        made.meta.events.register("before-call.*.*", counter)
        return made

    account_id = str(client("sts").get_caller_identity()["Account"])
    findings = {
        "ec2-admin-port-open-ipv4": _naive_open_ports(client("ec2"), region, account_id),
        "s3-bucket-public": _naive_public_buckets(client("s3"), client("s3control"), account_id),
        "iam-admin-policy-attached": _naive_admin_policies(client("iam")),
    }
    return NaiveResult(findings, dict(sorted(counter.calls.items())))


def _naive_open_ports(ec2: Any, region: str, account_id: str) -> list[str]:
    flagged: set[str] = set()
    for page in ec2.get_paginator("describe_security_group_rules").paginate():
        for rule in page["SecurityGroupRules"]:
            if rule.get("IsEgress") or rule.get("CidrIpv4") != "0.0.0.0/0":
                continue
            protocol = str(rule.get("IpProtocol", "")).lower()
            low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
            if protocol == "-1" or (
                protocol in ("tcp", "6") and (low == -1 or any(low <= p <= high for p in (22, 3389)))
            ):
                flagged.add(f"arn:aws:ec2:{region}:{account_id}:security-group/{rule['GroupId']}")
    return sorted(flagged)


def _naive_block(read: Callable[[], Any]) -> dict[str, bool]:
    try:
        return dict(read()["PublicAccessBlockConfiguration"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise


def _naive_public_buckets(s3: Any, s3control: Any, account_id: str) -> list[str]:
    account = _naive_block(lambda: s3control.get_public_access_block(AccountId=account_id))
    flagged = []
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        block = _naive_block(lambda: s3.get_public_access_block(Bucket=name))  # noqa: B023 (called at once)
        grants = s3.get_bucket_acl(Bucket=name)["Grants"]
        try:
            policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
                raise
            policy = {}
        acl_public = any(g.get("Grantee", {}).get("URI") in _PUBLIC_GRANTEES for g in grants)
        statements = policy.get("Statement", [])
        policy_public = any(
            st.get("Effect") == "Allow" and st.get("Principal") in ("*", {"AWS": "*"}) and not st.get("Condition")
            for st in (statements if isinstance(statements, list) else [statements])
        )
        ignored = block.get("IgnorePublicAcls") or account.get("IgnorePublicAcls")
        restricted = block.get("RestrictPublicBuckets") or account.get("RestrictPublicBuckets")
        if (acl_public and not ignored) or (policy_public and not restricted):
            flagged.append(f"arn:aws:s3:::{name}")
    return flagged


def _naive_admin_policies(iam: Any) -> list[str]:
    flagged = []
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            document = version["PolicyVersion"]["Document"]
            if isinstance(document, str):  # botocore decodes it; a raw answer would be URL-encoded JSON
                from urllib.parse import unquote

                document = json.loads(unquote(document))
            statements = document.get("Statement", [])
            for st in statements if isinstance(statements, list) else [statements]:
                actions = st.get("Action", [])
                resources = st.get("Resource", [])
                actions = {a.lower() for a in (actions if isinstance(actions, list) else [actions])}
                resources = set(resources if isinstance(resources, list) else [resources])
                if st.get("Effect") == "Allow" and actions & {"*", "*:*"} and "*" in resources:
                    if policy.get("AttachmentCount", 0) > 0:
                        flagged.append(policy["Arn"])
                    break
    return flagged


def measure(
    server: MotoServer,
    case: Case,
    max_workers: int = 8,
    repeats: int = 3,
    compare: bool = False,
    baseline: bool = True,
    scan_process: bool = True,
    latency_ms: float = 0.0,
) -> Row:
    server.reset()
    account = build_account(server.session(), case.shape, REGION)
    server.latency_seconds = latency_ms / 1000  # the scans' requests only, not the build's
    try:
        return _measure_built(server, case, account, max_workers, repeats, compare, baseline, scan_process)
    finally:
        server.latency_seconds = 0.0


def _measure_built(
    server: MotoServer,
    case: Case,
    account: BuiltAccount,
    max_workers: int,
    repeats: int,
    compare: bool,
    baseline: bool,
    scan_process: bool,
) -> Row:
    runs: list[tuple[ScanResult, Timing]] = []
    naive_runs: list[tuple[NaiveResult, Timing]] = []
    three_runs: list[tuple[ScanResult, Timing]] = []
    for _ in range(max(repeats, 1)):
        # Interleaved, so that whatever else loads the machine weighs on all alike.
        runs.append(timed_scan(server, max_workers))
        if baseline:
            naive_runs.append(timed(server, lambda: naive_scan(read_only_session(server), REGION)))
            three_runs.append(timed_scan(server, max_workers, NAIVE_CHECKS))
    if len({json.dumps(result.api_calls, sort_keys=True) for result, _ in runs}) != 1:
        raise RuntimeError(f"{case.label}: repeated scans of the same account made different calls")
    result, timing = min(runs, key=lambda run: run[1].wall)
    regions_listed = lists_bucket_regions(server)
    row = Row(
        case,
        account,
        result,
        timing.wall,
        timing.cpu,
        api_floor(account, regions_listed),
        regions_listed,
        server_seconds=timing.server_cpu,
        rss_before_kb=timing.rss_before_kb,
        peak_rss_kb=max(t.peak_rss_kb for _, t in runs),
    )
    for operation in sorted(set(result.api_calls) | set(row.floor)):
        calls, floor = result.api_calls.get(operation, 0), row.floor.get(operation, 0)
        if calls > floor:
            row.above_floor[operation] = (calls, floor)
    found = Counter(f.check_id for f in result.findings)
    expected = expected_findings(account)
    for check_id, count in expected.items():
        if found[check_id] != count:
            row.findings_mismatch[check_id] = (found[check_id], count)
    if naive_runs:
        naive, naive_timing = min(naive_runs, key=lambda run: run[1].wall)
        three, three_timing = min(three_runs, key=lambda run: run[1].wall)
        row.naive = Naive(naive, naive_timing, three, three_timing)
        for check_id in NAIVE_CHECKS:
            # The naive scan must find what the fixture built, and the very resources our scan finds.
            ours = sorted(f.resource_arn for f in result.findings if f.check_id == check_id)
            theirs = sorted(naive.findings[check_id])
            if theirs != ours or len(theirs) != expected[check_id]:
                row.naive_mismatch[check_id] = (len(theirs), len(ours), expected[check_id])
    if scan_process:
        row.scan_process_peak_kb = scan_process_peak_kb(server, max_workers)
    if compare:
        row.before = timed_scan(server, max_workers, BEFORE_ISSUE_18)[0]
    return row


def cases(sizes: Sequence[int], base: AccountShape, issue4: bool, account_bpa_row: bool) -> list[Case]:
    chosen = [Case(f"{size}x", base.scaled(size)) for size in sizes]
    if issue4:
        chosen.append(Case("issue 4", ISSUE4))
    chosen.sort(key=lambda c: c.shape.rules + c.shape.buckets + c.shape.policies)
    if account_bpa_row:
        first = sizes[0] if sizes else 1
        blocked = dataclasses.replace(base.scaled(first), account_block_public_access=True)
        chosen.append(Case(f"{first}x, account BPA on", blocked, in_scaling=False))
    return chosen


def run(
    sizes: Sequence[int],
    base: AccountShape = BASE,
    issue4: bool = True,
    account_bpa_row: bool = True,
    max_workers: int = 8,
    repeats: int = 3,
    compare: bool = True,
    baseline: bool = True,
    scan_process: bool = True,
    latency_ms: float = 0.0,
) -> list[Row]:
    rows: list[Row] = []
    with MotoServer() as server:
        for index, case in enumerate(cases(sizes, base, issue4, account_bpa_row)):
            # The before/after comparison is made on the first size (the smallest of the series).
            first = compare and index == 0
            rows.append(measure(server, case, max_workers, repeats, first, baseline, scan_process, latency_ms))
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


def operation_kind(operation: str) -> str:
    return PER_RESOURCE.get(operation) or ONCE.get(operation) or LISTINGS.get(operation) or "NOT IN THE FLOOR"


def grows_faster_than_floor(rows: Sequence[Row], operation: str) -> bool:
    """Whether the operation's calls grew more than its floor from the smallest to the largest size of the series:
    a call per resource where the floor has a page per 1,000 (moto answers listings in one page)."""
    series = sorted((row for row in rows if row.case.in_scaling), key=lambda r: r.resources)
    if len(series) < 2 or series[-1].resources <= series[0].resources:
        return False
    small, large = series[0], series[-1]
    calls = large.result.api_calls.get(operation, 0) - small.result.api_calls.get(operation, 0)
    return calls > large.floor.get(operation, 0) - small.floor.get(operation, 0)


def compare_calls(row: Row, rows: Sequence[Row]) -> list[Compared]:
    """Per operation, the calls of the scan before issue 18's checks and after, and whether it is a per-resource
    call that a listing could have spared."""
    if row.before is None:
        return []
    before, after = row.before.api_calls, row.result.api_calls
    compared = []
    for operation in sorted(set(before) | set(after)):
        calls, floor = after.get(operation, 0), row.floor.get(operation, 0)
        grows = grows_faster_than_floor(rows, operation)
        if operation in PER_RESOURCE:
            flagged = calls > floor or grows
            verdict = "ABOVE floor" if flagged else "per resource, at floor"
        elif calls > floor or grows:
            flagged = True
            verdict = "FLAG: grows with resources; a listing carries the data"
        else:
            flagged = False
            verdict = "ok" if calls == floor else "ok (moto: one page)"
        compared.append(
            Compared(operation, operation_kind(operation), before.get(operation, 0), calls, floor, verdict, flagged)
        )
    return compared


def report(rows: Sequence[Row]) -> list[str]:
    """Print the tables; return what failed (empty when every size is at its floor and as built)."""
    print_table(
        f"Scan scale: full scan of one region ({REGION}) on a moto server",
        [
            "size",
            "rules",
            "buckets",
            "policies",
            "instances",
            "NACLs",
            "DBs",
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
                row.account.instances,
                row.account.network_acls,
                row.account.db_instances,
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
    types = (
        ("ec2 (rules)", "per rule", "rules", 4),
        ("ec2 (instances)", "per instance", "instances", 4),
        ("ec2 (NACLs)", "per NACL", "network_acls", 4),
        ("s3 (buckets)", "per bucket", "buckets", 2),
        ("iam (policies)", "per policy", "policies", 4),
        ("rds (DBs)", "per DB", "db_instances", 4),
    )
    print_table(
        "API calls per resource type",
        ["size", *[name for kind in types for name in kind[:2]], "fixed"],
        [
            [
                row.case.label,
                *[
                    cell
                    for _, _, key, digits in types
                    for cell in (
                        by_type[key],
                        f"{by_type[key] / max(getattr(row.account, key), 1):.{digits}f}",
                    )
                ],
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
    failures: list[str] = report_baseline(rows)
    flagged = report_comparison(rows)
    if flagged:
        failures.append(f"per-resource calls a listing could spare: {', '.join(flagged)}")
    above = [
        [row.case.label, op, calls, floor, calls - floor]
        for row in rows
        for op, (calls, floor) in row.above_floor.items()
    ]
    if above:
        print_table("ABOVE the floor", ["size", "operation", "calls", "floor", "extra"], above)
        failures.append(f"{len(above)} operation(s) above the floor")
    mismatches = [
        [row.case.label, check, found, expected]
        for row in rows
        for check, (found, expected) in row.findings_mismatch.items()
    ]
    if mismatches:
        print_table("Findings that differ from what the fixture built", ["size", "check", "found", "built"], mismatches)
        failures.append(f"{len(mismatches)} finding count(s) differ from the fixture")
    errors = [[row.case.label, e.check_id, e.error, e.message] for row in rows for e in row.result.errors]
    errors += [
        [f"{row.case.label} (before)", e.check_id, e.error, e.message]
        for row in rows
        if row.before is not None
        for e in row.before.errors
    ]
    if errors:
        print_table("Scan errors", ["size", "check", "error", "message"], errors)
        failures.append(f"{len(errors)} scan error(s)")
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
        print("note: this server's ListBuckets omits BucketRegion, so a flagged bucket's region costs a call here")
    print("note: moto answers each listing in one page, below AWS's page floor; pagination is not exercised here")
    if failures:
        print(f"\nFAILED: {'; '.join(failures)}")
    return failures


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def report_baseline(rows: Sequence[Row]) -> list[str]:
    """Print the scan against the naive scan, the server/client split and the memory, and the goals at GOAL_SIZE;
    return what failed (the naive scan disagreeing with ours, or a goal missed)."""
    print_table(
        "Against the naive scan (same account, same run), where the CPU time goes, memory",
        [
            "size",
            "resources",
            "scan s",
            "naive s",
            "scan/naive",
            "3 checks s",
            "3 checks/naive",
            "calls/resource",
            "naive calls",
            "3 checks calls",
            "naive calls/resource",
            "server CPU s",
            "client CPU s",
            "client share",
            "client ms/resource",
            "naive server/client CPU s",
            "RSS before MB",
            "peak RSS MB",
            "scan process peak MB",
        ],
        [
            [
                row.case.label,
                row.resources,
                f"{row.scan_seconds:.2f}",
                "-" if row.naive is None else f"{row.naive.timing.wall:.2f}",
                "-" if row.wall_ratio is None else f"{row.wall_ratio:.2f}",
                "-" if three is None else f"{three.wall:.2f}",
                "-"
                if row.naive is None or row.naive.three_checks_ratio is None
                else f"{row.naive.three_checks_ratio:.2f}",
                f"{row.calls / row.resources:.3f}",
                "-" if row.naive is None else row.naive.result.total_api_calls,
                "-" if row.naive is None or row.naive.three_checks is None else row.naive.three_checks.total_api_calls,
                "-" if row.naive is None else f"{row.naive.result.total_api_calls / row.resources:.3f}",
                f"{row.server_seconds:.2f}",
                f"{row.client_seconds:.2f}",
                f"{row.client_seconds / row.cpu_seconds:.0%}" if row.cpu_seconds > 0 else "-",
                f"{1000 * row.client_seconds / row.resources:.3f}",
                "-" if row.naive is None else f"{row.naive.timing.server_cpu:.2f}/{row.naive.timing.client_cpu:.2f}",
                _mb(row.rss_before_kb),
                _mb(row.peak_rss_kb),
                _mb(row.scan_process_peak_kb) if row.scan_process_peak_kb else "-",
            ]
            for row in rows
            for three in [row.naive.three_checks_timing if row.naive is not None else None]
        ],
    )
    print(
        "server CPU: the moto server's request threads (thread CPU time per request); client: the rest of the "
        f"process's CPU time; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    failures: list[str] = []
    mismatches = [
        [row.case.label, check, naive, ours, built]
        for row in rows
        for check, (naive, ours, built) in row.naive_mismatch.items()
    ]
    if mismatches:
        print_table(
            "The naive scan disagrees with ours or the fixture", ["size", "check", "naive", "ours", "built"], mismatches
        )
        failures.append(f"{len(mismatches)} naive finding count(s) differ")
    goal_row = next((r for r in rows if r.case.in_scaling and r.case.label == f"{GOAL_SIZE}x"), None)
    if goal_row is None:
        print(f"\ngoals not judged: no {GOAL_SIZE}x size in this run")
        return failures
    missed = []
    goals: list[list[object]] = []
    ratio = goal_row.wall_ratio
    measured: tuple[tuple[str, float | None, float, str], ...] = (
        ("wall time / naive scan's", ratio, GOAL_WALL_RATIO, "{:.2f}"),
        ("API calls per resource", goal_row.calls / goal_row.resources, GOAL_CALLS_PER_RESOURCE, "{:.3f}"),
        (
            "peak RSS (MB, a process that only scans)",
            goal_row.scan_process_peak_kb / 1024 if goal_row.scan_process_peak_kb else None,
            GOAL_PEAK_MB,
            "{:.0f}",
        ),
    )
    for name, value, goal, fmt in measured:
        if value is None:
            goals.append([name, "not measured", f"<= {fmt.format(goal)}", "-"])
            continue
        met = value <= goal
        verdict = "met" if met else f"MISSED by {fmt.format(value - goal)} (x{value / goal:.2f})"
        goals.append([name, fmt.format(value), f"<= {fmt.format(goal)}", verdict])
        if not met:
            missed.append(name)
    # Beside the goals, not judged: the same ratio for our scan of the naive scan's three checks only, and the calls
    # per resource without the region lookups that only a server omitting ListBuckets' BucketRegion costs.
    three = goal_row.naive.three_checks_ratio if goal_row.naive is not None else None
    if three is not None:
        goals.append(["wall time / naive scan's, our scan of the same 3 checks", f"{three:.2f}", "(information)", ""])
    if not goal_row.server_lists_bucket_regions:
        on_aws = goal_row.calls - goal_row.result.api_calls.get("s3.GetBucketLocation", 0)
        goals.append(
            ["API calls per resource, less s3.GetBucketLocation", f"{on_aws / goal_row.resources:.3f}", "(AWS)", ""]
        )
    print_table(f"Goals at {goal_row.case.label} (issue 21)", ["goal", "measured", "target", "verdict"], goals)
    if missed:
        failures.append(f"goal(s) missed at {goal_row.case.label}: {', '.join(missed)}")
    return failures


def report_comparison(rows: Sequence[Row]) -> list[str]:
    """Print the before/after table of the compared size; return the flagged operations."""
    row = next((r for r in rows if r.before is not None), None)
    if row is None or row.before is None:
        return []
    before = row.before
    compared = compare_calls(row, rows)
    after_checks = len(row.result.check_ids)
    table: list[list[object]] = [
        [c.operation, c.kind, c.before, c.after, c.after - c.before, c.floor, c.verdict] for c in compared
    ]
    table.append(["total calls", "", before.total_api_calls, row.calls, row.calls - before.total_api_calls, "", ""])
    table.append(
        [
            f"calls per resource ({row.resources:,} resources)",
            "",
            f"{before.total_api_calls / row.resources:.3f}",
            f"{row.calls / row.resources:.3f}",
            f"{(row.calls - before.total_api_calls) / row.resources:+.3f}",
            "",
            "",
        ]
    )
    print_table(
        f"Before and after issue 18 at {row.case.label}: {len(before.check_ids)} checks before, {after_checks} after",
        ["operation", "grows", "before", "after", "change", "floor", "verdict"],
        table,
    )
    # The old checks must find the same things whether the new ones run beside them or not.
    old = set(before.check_ids)
    found_before = Counter(f.check_id for f in before.findings)
    found_after = Counter(f.check_id for f in row.result.findings if f.check_id in old)
    flagged = [c.operation for c in compared if c.flagged]
    if found_before != found_after:
        print(f"FLAG: the old checks' findings differ with the new checks: {dict(found_before)} vs {dict(found_after)}")
        flagged.append("(old checks' findings differ)")
    return flagged


def _verdict(row: Row, operation: str) -> str:
    calls, floor = row.result.api_calls.get(operation, 0), row.floor.get(operation, 0)
    if calls > floor:
        return "ABOVE floor"
    return "at floor" if calls == floor else "below (one moto page)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    small, at = SMALL_BASE, ",".join(map(str, SMALL_SIZES))
    quick = (
        f"a quick run: base {small.rules}/{small.buckets}/{small.policies}/{small.instances}/{small.network_acls}/"
        f"{small.db_instances} at sizes {at}"
    )
    add_sizes(parser, "--sizes", "multiples of the base account", SIZES, SMALL_SIZES, small_help=quick)
    counts = (
        ("rules", "rules"),
        ("buckets", "buckets"),
        ("policies", "policies"),
        ("instances", "EC2 instances"),
        ("network_acls", "custom network ACLs"),
        ("db_instances", "RDS DB instances"),
    )
    for name, what in counts:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag, type=int, default=None, help=f"{what} in the 1x account (default {getattr(BASE, name)})"
        )
    parser.add_argument(
        "--issue4",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="include issue 4's account: 5,000 rules, 500 buckets, 1,000 policies, 100 instances, 50 network ACLs, "
        "25 DB instances (default: on, off with --small)",
    )
    parser.add_argument(
        "--account-bpa-row",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the smallest size again with the account-level Block Public Access on (default: on)",
    )
    parser.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="scan the smallest size again with only the checks that existed before issue 18, and print the calls "
        "before and after (default: on)",
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the naive sequential scan of three checks on every account too, interleaved with ours (default: on)",
    )
    parser.add_argument(
        "--scan-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="scan every account once more from a fresh process, for the peak RSS of a process that only scans "
        "(default: on)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="answer every request of the scans this much late, a stand-in for AWS's round trip (default 0: moto's "
        "own speed, where the scan and the in-process server share one interpreter and its CPU)",
    )
    parser.add_argument("--max-workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="scans per size; the fastest counts (default 3)")
    args = parser.parse_args(argv)
    base = SMALL_BASE if args.small else BASE
    given = {name: getattr(args, name) for name, _ in counts if getattr(args, name) is not None}
    base = dataclasses.replace(base, **given)
    sizes = chosen_sizes(args.sizes, args.small, SIZES, SMALL_SIZES)
    issue4 = args.issue4 if args.issue4 is not None else not args.small
    rows = run(
        sizes,
        base,
        issue4=issue4,
        account_bpa_row=args.account_bpa_row,
        max_workers=args.max_workers,
        repeats=args.repeats,
        compare=args.compare,
        baseline=args.baseline,
        scan_process=args.scan_process,
        latency_ms=args.latency_ms,
    )
    if args.latency_ms:
        print(f"note: every request of the scans was answered {args.latency_ms:g} ms late (--latency-ms)")
    return 1 if report(rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
