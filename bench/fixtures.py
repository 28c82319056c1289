"""Large accounts on a moto server, built fast, for the benchmarks.

`MotoServer` runs a `ThreadedMotoServer` on 127.0.0.1 (a free port) and resets it between accounts through
`POST /moto-api/reset`. `build_account` fills one region with a given number of security-group rules, buckets and
customer policies through the ordinary APIs, batching where the API allows: a group's rules go in with one
`AuthorizeSecurityGroupIngress` call carrying up to 49 IP permissions (a VPC group holds at most 60 rules, one is
the default egress rule), and every count is exact (`describe_security_group_rules` returns `rules` rules).

The mix is what a real account looks like, and says which calls a scan needs (`BuiltAccount` keeps the counts):
- rules: every tenth group opens SSH to 0.0.0.0/0 (a finding); the rest are private CIDRs on high ports;
- buckets: half with their own Block Public Access fully on (the default for buckets created since 2023); of the
  other half one in ten public (one in twenty by ACL, one in twenty by policy), the rest private without a
  bucket-level block;
- policies: one in fifty an `Allow * on *` attached to a role (a finding), one in fifty the same unattached (a
  look-alike), the rest scoped; attached policies sit on roles holding at most ten each (IAM's default quota).
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.server import ThreadedMotoServer

from aegis_local.cli.scan_account import EndpointSession

REGION = "us-east-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
RULES_PER_AUTHORIZE = 49  # + the default egress rule = 50, under moto's (and AWS's default) 60 per VPC group
OPEN_SSH_EVERY = 10  # groups
BUCKET_BPA_SHARE = 0.5
# Of the buckets without their own block, the first of every 20 is public by ACL and the second by policy.
PUBLIC_BUCKETS_CYCLE = 20
ADMIN_POLICY_EVERY = 50
POLICIES_PER_ROLE = 10
_ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


class FixtureError(RuntimeError):
    """The account cannot be built as asked."""


@dataclass(frozen=True, slots=True)
class AccountShape:
    rules: int
    buckets: int
    policies: int
    account_block_public_access: bool = False

    def scaled(self, factor: int) -> AccountShape:
        return AccountShape(
            self.rules * factor, self.buckets * factor, self.policies * factor, self.account_block_public_access
        )


@dataclass(frozen=True, slots=True)
class BuiltAccount:
    """What was built, counted the way the scan will see it."""

    shape: AccountShape
    account_id: str
    region: str
    rules: int  # every rule of the region, the default VPC's default group included
    security_groups: int  # every group of the region
    default_groups_with_rules: int
    open_ssh_groups: int
    network_interfaces: int
    vpcs: int
    buckets: int
    buckets_fully_blocked: int  # bucket-level Block Public Access all on
    public_acl_buckets: int
    public_policy_buckets: int
    policies: int
    admin_policies_attached: int
    admin_policies_unattached: int
    roles: int
    build_seconds: float

    @property
    def public_buckets(self) -> int:
        return self.public_acl_buckets + self.public_policy_buckets


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServer:
    """A moto server on 127.0.0.1 for the duration of a `with` block. It serves this process's moto backends, so
    `reset()` also clears any in-process `mock_aws` state."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._werkzeug = logging.getLogger("werkzeug")
        self._werkzeug_level = self._werkzeug.level

    def __enter__(self) -> MotoServer:
        # One access-log line per request would drown the tables.
        self._werkzeug.setLevel(logging.WARNING)
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._werkzeug.setLevel(self._werkzeug_level)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise FixtureError(f"moto reset answered {response.status}")

    def session(self, region: str = REGION) -> EndpointSession:
        """A session with fake credentials whose clients all talk to this server."""
        return EndpointSession(endpoint_url=self.url, region_name=region, **FAKE_CREDENTIALS)


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def build_account(session: Any, shape: AccountShape, region: str = REGION) -> BuiltAccount:
    """Fill a fresh account's `region` to `shape` (S3 and IAM are global). Run it once per reset."""
    if min(shape.rules, shape.buckets, shape.policies) < 0:
        raise FixtureError("resource counts cannot be negative")
    started = time.perf_counter()
    account_id = str(session.client("sts", region_name=region).get_caller_identity()["Account"])
    ec2 = session.client("ec2", region_name=region)
    network = _build_rules(ec2, shape.rules)
    storage = _build_buckets(session, region, account_id, shape)
    identity = _build_policies(session.client("iam", region_name=region), shape.policies)
    return BuiltAccount(
        shape=shape,
        account_id=account_id,
        region=region,
        **network,
        **storage,
        **identity,
        build_seconds=time.perf_counter() - started,
    )


def _build_rules(ec2: Any, wanted: int) -> dict[str, int]:
    existing = _all_rules(ec2)
    if wanted < len(existing):
        raise FixtureError(f"the region already has {len(existing)} rules; cannot build only {wanted}")
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    remaining = wanted - len(existing)
    groups = open_ssh = 0
    while remaining > 0:
        # Each new group brings its default egress rule; the ingress rules fill the rest of its share.
        ingress = min(RULES_PER_AUTHORIZE, remaining - 1)
        group_id = ec2.create_security_group(GroupName=f"bench-{groups:05d}", Description="aegis bench", VpcId=vpc_id)[
            "GroupId"
        ]
        permissions = [_private_rule(groups, index) for index in range(ingress)]
        if ingress and groups % OPEN_SSH_EVERY == 0:
            permissions[0] = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            open_ssh += 1
        if permissions:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
        remaining -= ingress + 1
        groups += 1
    rules = _all_rules(ec2)
    if len(rules) != wanted:
        raise FixtureError(f"built {len(rules)} rules instead of {wanted}")
    all_groups = ec2.describe_security_groups()["SecurityGroups"]
    defaults = {g["GroupId"] for g in all_groups if g["GroupName"] == "default"}
    return {
        "rules": len(rules),
        "security_groups": len(all_groups),
        "default_groups_with_rules": len({r["GroupId"] for r in rules} & defaults),
        "open_ssh_groups": open_ssh,
        "network_interfaces": len(ec2.describe_network_interfaces()["NetworkInterfaces"]),
        "vpcs": len(ec2.describe_vpcs()["Vpcs"]),
    }


def _private_rule(group: int, index: int) -> dict[str, Any]:
    port = 10_000 + index
    cidr = f"10.{group % 250}.{index}.0/24"
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}


def _all_rules(ec2: Any) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("describe_security_group_rules").paginate(PaginationConfig={"PageSize": 1000})
    return [rule for page in pages for rule in page["SecurityGroupRules"]]


def _build_buckets(session: Any, region: str, account_id: str, shape: AccountShape) -> dict[str, int]:
    s3 = session.client("s3", region_name=region)
    s3control = session.client("s3control", region_name=region)
    if shape.account_block_public_access:
        s3control.put_public_access_block(AccountId=account_id, PublicAccessBlockConfiguration=_ALL_ON)
    blocked = math.floor(shape.buckets * BUCKET_BPA_SHARE)
    public_acl = public_policy = 0
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    for index in range(shape.buckets):
        name = f"bench-{account_id}-{index:06d}"
        # ObjectWriter keeps ACLs in force (BucketOwnerEnforced, the default, disables them).
        s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter", **location)
        unblocked_index = index - blocked
        if unblocked_index < 0:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=_ALL_ON)
        elif unblocked_index % PUBLIC_BUCKETS_CYCLE == 0:
            s3.put_bucket_acl(Bucket=name, ACL="public-read")
            public_acl += 1
        elif unblocked_index % PUBLIC_BUCKETS_CYCLE == 1:
            statement = {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{name}/*",
            }
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
            public_policy += 1
    return {
        "buckets": shape.buckets,
        "buckets_fully_blocked": blocked,
        "public_acl_buckets": public_acl,
        "public_policy_buckets": public_policy,
    }


def _document(action: str, resource: str) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
    )


def _build_policies(iam: Any, count: int) -> dict[str, int]:
    admin, scoped = _document("*", "*"), _document("s3:GetObject", "arn:aws:s3:::bench-data/*")
    attached: list[str] = []
    unattached_admin = 0
    for index in range(count):
        kind = index % ADMIN_POLICY_EVERY
        document = admin if kind in (0, 1) else scoped
        arn = iam.create_policy(PolicyName=f"bench-{index:06d}", PolicyDocument=document)["Policy"]["Arn"]
        if kind == 0:
            attached.append(arn)
        elif kind == 1:
            unattached_admin += 1
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    roles = 0
    for start in range(0, len(attached), POLICIES_PER_ROLE):
        role = f"bench-role-{roles:05d}"
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
        for arn in attached[start : start + POLICIES_PER_ROLE]:
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        roles += 1
    return {
        "policies": count,
        "admin_policies_attached": len(attached),
        "admin_policies_unattached": unattached_admin,
        "roles": roles,
    }
