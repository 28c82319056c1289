"""Large accounts on a moto server, built fast, for the benchmarks.

`MotoServer` runs a `ThreadedMotoServer` on 127.0.0.1 (a free port) and resets it between accounts through
`POST /moto-api/reset`. `build_account` fills one region with a given number of security-group rules, buckets,
customer policies, EC2 instances, custom network ACLs and RDS DB instances through the ordinary APIs, batching where
the API allows: a group's rules go in with one `AuthorizeSecurityGroupIngress` call carrying up to 49 IP permissions
(a VPC group holds at most 60 rules, one is the default egress rule), instances with one `RunInstances` call per
kind (`MinCount` = `MaxCount`), and every count is exact (`describe_security_group_rules` returns `rules` rules).

The mix is what a real account looks like, and says which calls a scan needs (`BuiltAccount` keeps the counts):
- rules: every tenth group opens SSH to 0.0.0.0/0 (a finding); the rest are private CIDRs on high ports;
- buckets: half with their own Block Public Access fully on (the default for buckets created since 2023) and a
  policy denying plain HTTP (the well-kept half); of the other half, which has no such policy (a finding each), one
  in ten public (one in twenty by ACL, one in twenty by policy), the rest private without a bucket-level block;
- policies: one in fifty an `Allow * on *` attached to a role (a finding), one in fifty the same unattached (a
  look-alike), the rest scoped; attached policies sit on roles holding at most ten each (IAM's default quota), and
  each such role also has an inline `Allow * on *` policy (a finding per role);
- instances (default VPC, default subnets and group): one in four still answers IMDSv1 (`HttpTokens` optional, a
  finding), the rest require IMDSv2;
- network ACLs (default VPC, associated with no subnet): one in five allows SSH from 0.0.0.0/0 (a finding), the rest
  HTTPS only; every VPC's default ACL allows all inbound traffic (in AWS as in moto), a finding per VPC;
- DB instances (PostgreSQL): one in five publicly accessible (a finding), two in five unencrypted (a finding), the
  rest private and encrypted;
- AWS Config: nothing (no recorder, no delivery channel): one finding per region, whatever the size.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import ThreadedMotoServer

from aegis_local.cli.scan_account import EndpointSession
from aegis_local.scenario.seed import db_instance_parameters, nacl_tcp_ingress

REGION = "us-east-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
RULES_PER_AUTHORIZE = 49  # + the default egress rule = 50, under moto's (and AWS's default) 60 per VPC group
OPEN_SSH_EVERY = 10  # groups
BUCKET_BPA_SHARE = 0.5
# Of the buckets without their own block, the first of every 20 is public by ACL and the second by policy.
PUBLIC_BUCKETS_CYCLE = 20
ADMIN_POLICY_EVERY = 50
POLICIES_PER_ROLE = 10
IMDSV1_EVERY = 4  # instances
OPEN_NACL_EVERY = 5  # custom network ACLs
PUBLIC_DB_EVERY = 5  # DB instances: the first of every five is public and unencrypted, the second unencrypted
UNENCRYPTED_DB_PER_CYCLE = 2
_ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


class FixtureError(RuntimeError):
    """The account cannot be built as asked."""


@dataclass(frozen=True, slots=True)
class AccountShape:
    rules: int
    buckets: int
    policies: int
    instances: int = 0
    network_acls: int = 0  # custom ones, besides each VPC's default ACL
    db_instances: int = 0
    account_block_public_access: bool = False

    def scaled(self, factor: int) -> AccountShape:
        return AccountShape(
            rules=self.rules * factor,
            buckets=self.buckets * factor,
            policies=self.policies * factor,
            instances=self.instances * factor,
            network_acls=self.network_acls * factor,
            db_instances=self.db_instances * factor,
            account_block_public_access=self.account_block_public_access,
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
    buckets_denying_http: int  # a policy denying plain HTTP: none of them is public
    public_acl_buckets: int
    public_policy_buckets: int
    policies: int
    admin_policies_attached: int
    admin_policies_unattached: int
    roles: int
    inline_admin_roles: int  # roles with an inline Allow * on * policy
    instances: int
    imdsv1_instances: int
    network_acls: int  # every ACL of the region, the VPCs' default ones included
    open_network_acls: int  # ACLs letting SSH or RDP in from the internet: the opened custom ones and default ones
    db_instances: int
    public_db_instances: int
    unencrypted_db_instances: int
    config_recorders: int
    build_seconds: float

    @property
    def public_buckets(self) -> int:
        return self.public_acl_buckets + self.public_policy_buckets

    @property
    def buckets_allowing_http(self) -> int:
        """Buckets whose policy does not deny plain HTTP; the public buckets are among them."""
        return self.buckets - self.buckets_denying_http

    @property
    def resources(self) -> int:
        """The resources that grow with the shape: rules, buckets, policies, instances, network ACLs, DB instances."""
        return self.rules + self.buckets + self.policies + self.instances + self.network_acls + self.db_instances


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerClock:
    """CPU seconds spent serving requests, summed over the server's request threads (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._seconds += seconds

    @property
    def seconds(self) -> float:
        with self._lock:
            return self._seconds


def _timed_handler(clock: ServerClock, server: MotoServer) -> type[MotoRequestHandler]:
    """moto's request handler, charging each request's CPU time to `clock`, and answering each request
    `server.latency_seconds` late.

    Werkzeug serves each connection on a thread of its own and handles its requests one after the other there, so
    the CPU time of that thread across one `handle_one_request` (`time.thread_time`: CPU only, not the wait for the
    next request on a kept-alive connection, nor the wait for the GIL) is that request's whole server-side cost:
    reading and parsing it, moto's dispatch and backend, writing the answer. The latency is a sleep once the request
    is read (it releases the GIL and costs no CPU): a stand-in for AWS's round trip, which moto does not have."""

    class TimedRequestHandler(MotoRequestHandler):
        def handle_one_request(self) -> None:
            started = time.thread_time()
            try:
                super().handle_one_request()
            finally:
                clock.add(time.thread_time() - started)

        def run_wsgi(self) -> None:
            if server.latency_seconds > 0:
                time.sleep(server.latency_seconds)
            super().run_wsgi()

    return TimedRequestHandler


class MotoServer:
    """A moto server on 127.0.0.1 for the duration of a `with` block. It serves this process's moto backends, so
    `reset()` also clears any in-process `mock_aws` state. `cpu_seconds` is the CPU time its request threads have
    spent so far (see `_timed_handler`): the server's share of this process's CPU time."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._werkzeug = logging.getLogger("werkzeug")
        self._werkzeug_level = self._werkzeug.level
        self._clock = ServerClock()
        self.latency_seconds = 0.0  # added to every answer (see _timed_handler); none by default

    def __enter__(self) -> MotoServer:
        # One access-log line per request would drown the tables.
        self._werkzeug.setLevel(logging.WARNING)
        self._server.start()
        # ThreadedMotoServer builds its werkzeug server with moto's handler and offers no hook; socketserver makes
        # each connection's handler from `RequestHandlerClass`, so replacing it before the first request times all.
        werkzeug_server = self._server._server
        if werkzeug_server is None:
            raise FixtureError("the moto server did not start")
        werkzeug_server.RequestHandlerClass = _timed_handler(self._clock, self)
        return self

    @property
    def cpu_seconds(self) -> float:
        return self._clock.seconds

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
    counts = (shape.rules, shape.buckets, shape.policies, shape.instances, shape.network_acls, shape.db_instances)
    if min(counts) < 0:
        raise FixtureError("resource counts cannot be negative")
    started = time.perf_counter()
    account_id = str(session.client("sts", region_name=region).get_caller_identity()["Account"])
    ec2 = session.client("ec2", region_name=region)
    network = _build_rules(ec2, shape.rules)
    compute = _build_instances(ec2, shape.instances)
    acls = _build_network_acls(ec2, shape.network_acls)
    # Counted once everything is in: each instance brings its network interface (on the default group).
    network["network_interfaces"] = len(ec2.describe_network_interfaces()["NetworkInterfaces"])
    storage = _build_buckets(session, region, account_id, shape)
    identity = _build_policies(session.client("iam", region_name=region), shape.policies)
    databases = _build_db_instances(session.client("rds", region_name=region), shape.db_instances)
    recorders = session.client("config", region_name=region).describe_configuration_recorders()
    return BuiltAccount(
        shape=shape,
        account_id=account_id,
        region=region,
        **network,
        **compute,
        **acls,
        **storage,
        **identity,
        **databases,
        config_recorders=len(recorders.get("ConfigurationRecorders", [])),
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
        "vpcs": len(ec2.describe_vpcs()["Vpcs"]),
    }


def _amazon_linux_image(ec2: Any) -> str:
    """An Amazon Linux 2 image of the region (moto lists a few in every region)."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])
    found = sorted(image["ImageId"] for image in images["Images"])
    if not found:
        raise FixtureError("the server lists no Amazon Linux 2 image to launch instances from")
    return found[0]


def _build_instances(ec2: Any, wanted: int) -> dict[str, int]:
    imdsv1 = math.ceil(wanted / IMDSV1_EVERY)
    if wanted:
        image = _amazon_linux_image(ec2)
        for count, tokens in ((imdsv1, "optional"), (wanted - imdsv1, "required")):
            if count:
                ec2.run_instances(
                    ImageId=image,
                    InstanceType="t3.micro",
                    MinCount=count,
                    MaxCount=count,
                    MetadataOptions={"HttpTokens": tokens, "HttpEndpoint": "enabled"},
                )
    listed = [
        instance
        for page in ec2.get_paginator("describe_instances").paginate()
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]
    if len(listed) != wanted:
        raise FixtureError(f"built {len(listed)} instances instead of {wanted}")
    return {
        "instances": len(listed),
        "imdsv1_instances": sum(1 for i in listed if i.get("MetadataOptions", {}).get("HttpTokens") != "required"),
    }


def _build_network_acls(ec2: Any, wanted: int) -> dict[str, int]:
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    opened = 0
    for index in range(wanted):
        acl_id = ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]
        ec2.create_network_acl_entry(**nacl_tcp_ingress(acl_id, 100, 443))
        if index % OPEN_NACL_EVERY == 0:
            ec2.create_network_acl_entry(**nacl_tcp_ingress(acl_id, 110, 22))
            opened += 1
    acls = ec2.describe_network_acls()["NetworkAcls"]
    defaults = [acl for acl in acls if acl.get("IsDefault")]
    if len(acls) - len(defaults) != wanted:
        raise FixtureError(f"built {len(acls) - len(defaults)} network ACLs instead of {wanted}")
    # A default ACL allows all inbound traffic from 0.0.0.0/0 (rule 100) unless someone narrowed it: none here.
    open_defaults = sum(
        1
        for acl in defaults
        if any(
            not e.get("Egress")
            and e.get("RuleAction") == "allow"
            and e.get("Protocol") == "-1"
            and e.get("CidrBlock") == "0.0.0.0/0"
            for e in acl.get("Entries", [])
        )
    )
    return {"network_acls": len(acls), "open_network_acls": opened + open_defaults}


def _build_db_instances(rds: Any, wanted: int) -> dict[str, int]:
    public = unencrypted = 0
    for index in range(wanted):
        kind = index % PUBLIC_DB_EVERY
        is_public, encrypted = kind == 0, kind >= UNENCRYPTED_DB_PER_CYCLE
        rds.create_db_instance(**db_instance_parameters(f"bench-db-{index:05d}", public=is_public, encrypted=encrypted))
        public += is_public
        unencrypted += not encrypted
    return {"db_instances": wanted, "public_db_instances": public, "unencrypted_db_instances": unencrypted}


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
            # The policy before the block (it is not public: the block would accept it, but need not be asked).
            s3.put_bucket_policy(Bucket=name, Policy=_deny_http_policy(name))
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
        "buckets_denying_http": blocked,
        "public_acl_buckets": public_acl,
        "public_policy_buckets": public_policy,
    }


def _deny_http_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    statement = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


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
        iam.put_role_policy(RoleName=role, PolicyName="bench-inline-admin", PolicyDocument=admin)
        roles += 1
    return {
        "policies": count,
        "admin_policies_attached": len(attached),
        "admin_policies_unattached": unattached_admin,
        "roles": roles,
        "inline_admin_roles": roles,
    }
