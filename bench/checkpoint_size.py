"""Checkpoint size: what one mission stores in the Checkpoints table, for plans of 10, 50 and 200 changes.

Each plan comes from a real mission on a moto account (in-process `mock_aws`): the account gets that many findings
with a remediation (a third each, roughly: security groups with SSH and RDP open to the world, public buckets,
attached `*`-on-`*` policies), the agent's service scans it with the real scanner, plans, stops at the approval
interrupt (checkpointed by the real `DynamoDBCheckpointSaver` behind the secret-refusing serializer), and is resumed
with every change approved, through re-scan, report and audit. Sizes are DynamoDB item sizes as the saver counts
them (attribute names plus values); the largest item must stay under the 100 KB target, far from DynamoDB's 400 KB
item limit. The Missions table's items are printed beside them: the mission record, and the mission documents the
state refers to (scan, plan, results, re-scan, report), each a series of pages.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from aegis.checks import PlanConfig
from aegis_agent.checkpointer import MAX_ITEM_BYTES, item_size
from aegis_agent.scanner import AwsScanner
from aegis_agent.settings import AgentSettings
from aegis_agent.wiring import build_service
from bench.common import add_sizes, argument_parser, chosen_sizes, print_table
from tests.support.agent_world import all_items, scan_event

REGION = "us-east-1"
PLAN_SIZES = (10, 50, 200)
SMALL_PLAN_SIZES = (3, 10)
TARGET_BYTES = 100 * 1024
DYNAMODB_LIMIT_BYTES = 400 * 1024
CHECKS = ("ec2-admin-port-open-ipv4", "s3-bucket-public", "iam-admin-policy-attached")
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "Checkpoints": ("PK", "SK"),
    "Missions": ("mission_id",),
    "Audit": ("mission_id", "seq"),
    "Control": ("name",),
}
POLICIES_PER_ROLE = 10
_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass(slots=True)
class Stored:
    """The items of one mission's thread at one moment, by kind (checkpoint, blob, write)."""

    items: int = 0
    total: int = 0
    largest: int = 0
    largest_name: str = ""
    by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, name: str, kind: str, size: int) -> None:
        self.items += 1
        self.total += size
        self.by_kind[kind].append(size)
        if size > self.largest:
            self.largest, self.largest_name = size, name


@dataclass(slots=True)
class MissionSizes:
    changes: int
    findings: int
    at_interrupt: Stored
    at_end: Stored
    mission_record: int
    documents: dict[str, list[int]]
    audit_items: int
    audit_bytes: int
    status: str


@contextmanager
def fake_aws_environment() -> Iterator[None]:
    """Fake credentials and no endpoint override for the duration, whatever this machine has configured."""
    removed = [name for name in os.environ if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))]
    saved = {name: os.environ.get(name) for name in [*removed, *_ENVIRONMENT]}
    for name in removed:
        del os.environ[name]
    os.environ.update(_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _create_tables(session: boto3.Session) -> dict[str, Any]:
    dynamodb = session.resource("dynamodb", region_name=REGION)
    tables = {}
    for name, keys in TABLE_KEYS.items():
        dynamodb.create_table(
            TableName=f"aegis-{name}",
            KeySchema=[{"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"} for i, k in enumerate(keys)],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
        tables[name] = dynamodb.Table(f"aegis-{name}")
    return tables


def _create_state_machine(session: boto3.Session) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = session.client("iam").create_role(RoleName="aegis-bench-sfn", AssumeRolePolicyDocument=json.dumps(trust))
    answer = session.client("stepfunctions").create_state_machine(
        name="aegis-bench-mission",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn=role["Role"]["Arn"],
    )
    return str(answer["stateMachineArn"])


def build_findings(session: boto3.Session, changes: int) -> None:
    """Resources that yield exactly `changes` remediable findings of the checks in CHECKS."""
    buckets = policies = changes // 3
    groups = changes - buckets - policies
    ec2 = session.client("ec2")
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    world = [{"CidrIp": "0.0.0.0/0"}]
    for index in range(groups):
        group_id = ec2.create_security_group(GroupName=f"bench-open-{index:04d}", Description="bench", VpcId=vpc_id)[
            "GroupId"
        ]
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": world} for port in (22, 3389)
            ],
        )
    s3 = session.client("s3")
    for index in range(buckets):
        name = f"aegis-bench-public-{index:04d}"
        s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
    iam = session.client("iam")
    admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    for role_index in range(math.ceil(policies / POLICIES_PER_ROLE)):
        role = f"aegis-bench-app-{role_index:03d}"
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
        for index in range(role_index * POLICIES_PER_ROLE, min(policies, (role_index + 1) * POLICIES_PER_ROLE)):
            arn = iam.create_policy(PolicyName=f"AegisBenchAdmin{index:04d}", PolicyDocument=admin)["Policy"]["Arn"]
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)


def stored_items(checkpoints: Any, mission_id: str) -> Stored:
    stored = Stored()
    for item in all_items(checkpoints):
        if item["PK"] != f"thread#{mission_id}":
            continue
        kind = str(item["SK"]).split("#", 1)[0]
        name = f"{kind}:{item['channel']}" if "channel" in item else kind
        stored.add(name, kind, item_size(item))
    return stored


def measure(changes: int) -> MissionSizes:
    """One mission with a plan of `changes` changes on a fresh moto account."""
    with fake_aws_environment(), mock_aws():
        session = boto3.Session(region_name=REGION)
        tables = _create_tables(session)
        settings = AgentSettings(
            checkpoints_table="aegis-Checkpoints",
            missions_table="aegis-Missions",
            audit_table="aegis-Audit",
            control_table="aegis-Control",
            state_machine_arn=_create_state_machine(session),
            scan_regions=(REGION,),
            max_changes_per_mission=max(changes, 1),
            max_share_per_resource_type=1.0,
        )
        build_findings(session, changes)
        service = build_service(
            scanner=AwsScanner(lambda: boto3.Session(region_name=REGION), PlanConfig()),
            settings=settings,
            session=session,
        )
        started = service.start_mission(scan_event(str(uuid.uuid4()), checks=list(CHECKS)))
        mission_id = str(started["mission_id"])
        if started.get("status") != "awaiting_approval" or started.get("changes") != changes:
            raise RuntimeError(f"expected a plan of {changes} changes awaiting approval, got {started}")
        at_interrupt = stored_items(tables["Checkpoints"], mission_id)
        execution = session.client("stepfunctions").describe_execution(executionArn=started["execution_arn"])
        results = [
            {"change_id": change["change_id"], "decision": "approved", "outcome": "applied", "reason": ""}
            for change in json.loads(execution["input"])["changes"]
        ]
        finished = service.resume_mission({"mission_id": mission_id, "results": results})
        record = tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
        documents: dict[str, list[int]] = defaultdict(list)
        for item in all_items(tables["Missions"]):
            if item.get("mission") == mission_id and "record" in item:
                documents[str(item["record"]).removesuffix("-page")].append(item_size(item))
        audit = [item for item in all_items(tables["Audit"]) if item["mission_id"] == mission_id]
        return MissionSizes(
            changes=changes,
            findings=int(started["findings"]),
            at_interrupt=at_interrupt,
            at_end=stored_items(tables["Checkpoints"], mission_id),
            mission_record=item_size(record),
            documents=dict(documents),
            audit_items=len(audit),
            audit_bytes=sum(item_size(item) for item in audit),
            status=str(finished["status"]),
        )


def _kb(size: int) -> str:
    return f"{size / 1024:,.1f}"


def _margin(size: int, limit: int) -> str:
    return f"{100 * size / limit:.1f}% ({'under' if size < limit else 'OVER'})"


def report(missions: Sequence[MissionSizes]) -> None:
    print_table(
        "Checkpoint size per mission (Checkpoints table, one thread per mission; KB = 1,024 bytes)",
        [
            "changes",
            "items",
            "KB/item",
            "KB/mission",
            "KB at interrupt",
            "largest item",
            "largest KB",
            "of 100 KB target",
            "of 400 KB limit",
        ],
        [
            [
                m.changes,
                m.at_end.items,
                _kb(m.at_end.total // max(m.at_end.items, 1)),
                _kb(m.at_end.total),
                _kb(m.at_interrupt.total),
                m.at_end.largest_name,
                _kb(m.at_end.largest),
                _margin(m.at_end.largest, TARGET_BYTES),
                _margin(m.at_end.largest, DYNAMODB_LIMIT_BYTES),
            ]
            for m in missions
        ],
    )
    print_table(
        "Checkpoint items by kind at the end of the mission",
        ["changes", "kind", "items", "KB total", "KB mean", "KB largest"],
        [
            [m.changes, kind, len(sizes), _kb(sum(sizes)), _kb(sum(sizes) // len(sizes)), _kb(max(sizes))]
            for m in missions
            for kind, sizes in sorted(m.at_end.by_kind.items())
        ],
    )
    print_table(
        "Other items of the mission",
        ["changes", "findings", "status", "mission record KB", "of 400 KB limit", "audit items", "audit KB"],
        [
            [
                m.changes,
                m.findings,
                m.status,
                _kb(m.mission_record),
                _margin(m.mission_record, DYNAMODB_LIMIT_BYTES),
                m.audit_items,
                _kb(m.audit_bytes),
            ]
            for m in missions
        ],
    )
    print_table(
        "Mission documents (Missions table, one item per page; the checkpoint holds their digests)",
        ["changes", "document", "pages", "KB total", "largest page KB", "of 400 KB limit"],
        [
            [m.changes, name, len(sizes), _kb(sum(sizes)), _kb(max(sizes)), _margin(max(sizes), DYNAMODB_LIMIT_BYTES)]
            for m in missions
            for name, sizes in sorted(m.documents.items())
        ],
    )
    worst = max((m.at_end.largest for m in missions), default=0)
    verdict = "met" if worst < TARGET_BYTES else "MISSED"
    print(
        f"\nlargest checkpoint item: {_kb(worst)} KB - 100 KB target {verdict}; the saver refuses items above "
        f"{MAX_ITEM_BYTES:,} bytes, DynamoDB above {DYNAMODB_LIMIT_BYTES:,}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    add_sizes(parser, "--plans", "changes per plan", PLAN_SIZES, SMALL_PLAN_SIZES)
    args = parser.parse_args(argv)
    sizes = chosen_sizes(args.plans, args.small, PLAN_SIZES, SMALL_PLAN_SIZES)
    report([measure(size) for size in sizes])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
