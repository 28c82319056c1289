"""The leak proof: run missions while planting known secrets everywhere a careless implementation would let them in
(the environment, config values, an exception raised inside a node, a resume value, tags on seeded resources, the
triggering event, and the credentials of a member account's AegisScanRole that an organization scan's mission
assumes, captured as STS returned them), then search every item of the Checkpoints, Missions (mission items and the
mission documents: scan, plan, results, re-scan, report) and Audit tables, deserializing nothing (raw item JSON,
binary blobs as text), for every planted value: zero hits. Where the serializer refused, the
mission failed with the named error and the refusal is in the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aegis.audit import read_trail
from aegis.checks.base import EXEMPT_TAG
from aegis.missions_keys import mission_id_for_event, org_scan_id_for_event, org_scan_key
from aegis_agent import wiring
from aegis_agent.errors import CheckpointRefused
from aegis_agent.scanner import AwsScanner, ScanOutcome
from aegis_local.scenario.seed import EXEMPT_REASON, seed_account
from tests.integration.agent.conftest import agent_environment
from tests.support.agent_world import (
    REGION,
    STATE_MACHINE_ARN,
    LambdaContext,
    create_state_machine,
    create_tables,
    raw_text,
    scheduled_event,
)
from tests.support.lambda_app import load_app
from tests.support.planted_secrets import access_key_id, high_entropy, jwt, secret_access_key


@dataclass
class Planted:
    """Every value planted, by where it was planted."""

    values: dict[str, str] = field(default_factory=dict)

    def plant(self, where: str, value: str) -> str:
        self.values[where] = value
        return value


@dataclass
class LeakRun:
    planted: Planted
    tables: dict[str, Any]
    sfn: Any
    outcomes: dict[str, Any]
    seeded_group: str


class ExplodingScanner:
    """The real scanner, except that its n-th scan raises an error whose message carries a planted secret."""

    def __init__(self, inner: AwsScanner, explode_on_call: int, secret: str) -> None:
        self._inner = inner
        self._explode_on_call = explode_on_call
        self._secret = secret
        self.calls = 0

    def scan(self, regions: Any, check_ids: Any) -> ScanOutcome:
        self.calls += 1
        if self.calls == self._explode_on_call:
            raise RuntimeError(f"describe failed, retry with credentials {self._secret}")
        return self._inner.scan(regions, check_ids)

    def propose(self, finding: Any) -> Any:
        return self._inner.propose(finding)

    def known_check_ids(self) -> frozenset[str]:
        return self._inner.known_check_ids()


def change_ids(sfn: Any, execution_arn: str) -> list[str]:
    return [c["change_id"] for c in json.loads(sfn.describe_execution(executionArn=execution_arn)["input"])["changes"]]


def plant_tagged_resources(session: boto3.Session, planted: Planted) -> str:
    ec2 = session.client("ec2", region_name=REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    tags = {
        EXEMPT_TAG: planted.plant("tag aegis:exempt (jwt)", jwt()),
        "Name": planted.plant("tag Name (access key id)", access_key_id()),
        "owner": planted.plant("tag owner (high entropy)", high_entropy()),
    }
    group = ec2.create_security_group(
        GroupName="leak-tagged",
        Description="planted",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    s3 = session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="leak-tagged-bucket")
    s3.put_bucket_tagging(
        Bucket="leak-tagged-bucket",
        Tagging={
            "TagSet": [{"Key": EXEMPT_TAG, "Value": planted.plant("bucket tag (secret key)", secret_access_key())}]
        },
    )
    s3.put_bucket_acl(Bucket="leak-tagged-bucket", ACL="public-read")
    return str(group)


MEMBER = "222222222222"
ORG_SCAN_ID = org_scan_id_for_event("leak-org")
# Where the assumed credentials' fields were planted, per AssumeRole (the scan's, then the re-scan's).
ASSUMED_FIELDS = ("AccessKeyId", "SecretAccessKey", "SessionToken")
ASSUMED = [f"assumed {field} ({call})" for call in ("scan", "re-scan") for field in ASSUMED_FIELDS]


def seed_member_bucket(session: boto3.Session) -> None:
    """A public bucket in the member account (seeded through a role of its own, not the agent's)."""
    credentials = session.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", RoleSessionName="seed"
    )["Credentials"]
    member = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    member.client("s3").create_bucket(Bucket="leak-member-public-bucket")
    member.client("s3").put_bucket_acl(Bucket="leak-member-public-bucket", ACL="public-read")


def capturing_session(planted: Planted, call: str) -> boto3.Session:
    """A session whose STS answers plant every assumed credential field, as STS returned it."""
    session = boto3.Session(region_name=REGION)

    def plant(parsed: dict[str, Any], **_: Any) -> None:
        for name in ASSUMED_FIELDS:
            planted.plant(f"assumed {name} ({call})", str(parsed["Credentials"][name]))

    session.events.register("after-call.sts.AssumeRole", plant)
    return session


@pytest.fixture(scope="module")
def leak_run() -> Iterator[LeakRun]:
    planted = Planted()
    outcomes: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "TRAIL_BUCKET", "FLOW_LOGS_LOG_GROUP", "FLOW_LOGS_ROLE_ARN"):
            mp.delenv(name, raising=False)
        # The environment: credentials and secrets a careless agent might read and copy into its state.
        mp.setenv("AWS_ACCESS_KEY_ID", planted.plant("env AWS_ACCESS_KEY_ID", access_key_id()))
        mp.setenv("AWS_SECRET_ACCESS_KEY", planted.plant("env AWS_SECRET_ACCESS_KEY", secret_access_key()))
        mp.setenv("AWS_SESSION_TOKEN", planted.plant("env AWS_SESSION_TOKEN", high_entropy() + high_entropy()))
        mp.setenv("AUTH0_CLIENT_SECRET", planted.plant("env AUTH0_CLIENT_SECRET", high_entropy()))
        mp.setenv("APPROVAL_ACCESS_TOKEN", planted.plant("env APPROVAL_ACCESS_TOKEN", jwt()))
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        for name, value in agent_environment(MEMBER_EXTERNAL_ID="aegis-leak-proof").items():
            mp.setenv(name, value)
        with mock_aws():
            session = boto3.Session(region_name=REGION)
            tables = create_tables(session)
            sfn = create_state_machine(session)
            seed_account(session, REGION)
            group = plant_tagged_resources(session, planted)

            # Mission A, through the handlers: a config value (the invocation's request id travels in
            # `configurable`) and the event's own fields carry secrets; it completes normally.
            event_a = scheduled_event("leak-a") | {"resources": [planted.plant("event resources", jwt())]}
            context = LambdaContext(aws_request_id=planted.plant("config lambda_request_id", jwt()))
            started = load_app("agent").scan_handler(event_a, context)
            ids = change_ids(sfn, started["execution_arn"])
            results = [
                {"change_id": c, "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"} for c in ids
            ]
            outcomes["A"] = load_app("agent").resume_handler(
                {"mission_id": started["mission_id"], "results": results},
                LambdaContext(aws_request_id=planted.plant("config resume request id", jwt())),
            )

            # Mission B: a result's reason carries a bearer token; it is refused before the results are stored.
            started = load_app("agent").scan_handler(scheduled_event("leak-b"), LambdaContext())
            ids = change_ids(sfn, started["execution_arn"])
            token = planted.plant("resume value reason", "Bearer " + high_entropy())
            results = [{"change_id": c, "decision": "approved", "outcome": "applied", "reason": token} for c in ids]
            with pytest.raises(CheckpointRefused):
                load_app("agent").resume_handler(
                    {"mission_id": started["mission_id"], "results": results}, LambdaContext()
                )
            outcomes["B"] = started

            # Mission C: the re-scan node raises an error whose message carries a secret; LangGraph would persist
            # its repr, the serializer refuses it.
            started = load_app("agent").scan_handler(scheduled_event("leak-c"), LambdaContext())
            ids = change_ids(sfn, started["execution_arn"])
            scanner = ExplodingScanner(
                AwsScanner(lambda: session), explode_on_call=1, secret=planted.plant("exception message", jwt())
            )
            service = wiring.build_service(scanner=scanner)
            with pytest.raises(CheckpointRefused):
                service.resume_mission(
                    {
                        "mission_id": started["mission_id"],
                        "results": [{"change_id": c, "decision": "denied", "outcome": "skipped"} for c in ids],
                    }
                )
            assert scanner.calls == 1  # the error was raised inside the node
            outcomes["C"] = started

            # Mission D: one account of an organization scan, read as the member's AegisScanRole; its changes are
            # denied, and the re-scan assumes the role again. Both credentials are planted as STS returned them.
            seed_member_bucket(session)
            tables["Missions"].put_item(
                Item={
                    "mission_id": org_scan_key(ORG_SCAN_ID),
                    "org_scan_id": ORG_SCAN_ID,
                    "status": "scanning",
                    "accounts": [MEMBER],
                    "max_changes": 10,
                    "reserved_changes": 0,
                }
            )
            item = {"org_scan_id": ORG_SCAN_ID, "account_id": MEMBER, "regions": [REGION], "checks": None}
            started = wiring.build_service(session=capturing_session(planted, "scan")).start_mission(item)
            assert started["mission_id"] == mission_id_for_event(f"{ORG_SCAN_ID}/{MEMBER}")
            ids = change_ids(sfn, started["execution_arn"])
            results = [{"change_id": c, "decision": "denied", "outcome": "skipped"} for c in ids]
            outcomes["D"] = wiring.build_service(session=capturing_session(planted, "re-scan")).resume_mission(
                {"mission_id": started["mission_id"], "results": results}
            )
            yield LeakRun(planted=planted, tables=tables, sfn=sfn, outcomes=outcomes, seeded_group=group)


def test_the_planted_values_were_really_offered_to_the_agent(leak_run: LeakRun) -> None:
    assert len(leak_run.planted.values) == 14 + len(ASSUMED)
    assert leak_run.outcomes["A"]["status"] == "completed"
    # Mission D read the member account through the assumed role: its finding is the member's bucket.
    assert leak_run.outcomes["D"]["status"] == "completed"
    report = leak_run.tables["Missions"].get_item(Key={"mission_id": leak_run.outcomes["D"]["mission_id"]})["Item"]
    assert (report["account_id"], report["org_scan"], report["counts"]["findings"] > 0) == (MEMBER, ORG_SCAN_ID, True)
    assert "leak-member-public-bucket" in raw_text(leak_run.tables["Missions"])
    # The planted tags reached the scan: the tagged group is a finding whose exemption the scanner withheld.
    trail = read_trail(leak_run.tables["Audit"], leak_run.outcomes["A"]["mission_id"])
    parts = [json.loads(i["details"]) for i in trail if i["action"] == "mission.withheld"]
    withheld = [note for part in parts for note in part["withheld"]]
    assert {"check_id": "ec2-admin-port-open-ipv4", "field": "tags.aegis:exempt", "kind": "jwt"} in [
        {k: note[k] for k in ("check_id", "field", "kind")} for note in withheld
    ]


def test_the_search_finds_values_wherever_the_agent_stored_them(leak_run: LeakRun) -> None:
    # Harmless values known to be stored are found by the search below, so it would see a planted value wherever it
    # was stored: the seeded bastion's exemption reason and the seeded group in the mission documents (Missions
    # table), and mission A's plan digest inside the binary checkpoint blobs.
    assert EXEMPT_REASON in raw_text(leak_run.tables["Missions"])
    assert leak_run.seeded_group in raw_text(leak_run.tables["Missions"])
    trail = read_trail(leak_run.tables["Audit"], leak_run.outcomes["A"]["mission_id"])
    [requested] = [json.loads(i["details"]) for i in trail if i["action"] == "approval.requested"]
    assert requested["plan_digest"] in raw_text(leak_run.tables["Checkpoints"])


PLACES = ("Checkpoints", "Missions", "Audit")


@pytest.mark.parametrize(
    "where",
    [
        "env AWS_ACCESS_KEY_ID",
        "env AWS_SECRET_ACCESS_KEY",
        "env AWS_SESSION_TOKEN",
        "env AUTH0_CLIENT_SECRET",
        "env APPROVAL_ACCESS_TOKEN",
        "config lambda_request_id",
        "config resume request id",
        "event resources",
        "resume value reason",
        "exception message",
        "tag aegis:exempt (jwt)",
        "tag Name (access key id)",
        "tag owner (high entropy)",
        "bucket tag (secret key)",
        *ASSUMED,
    ],
)
def test_no_planted_value_reaches_any_table(leak_run: LeakRun, where: str) -> None:
    value = leak_run.planted.values[where]
    hits = [name for name in PLACES if value in raw_text(leak_run.tables[name])]
    assert hits == [], f"the value planted in {where} was found in {hits}"
    inputs = [
        leak_run.sfn.describe_execution(executionArn=e["executionArn"])["input"]
        for e in leak_run.sfn.list_executions(stateMachineArn=STATE_MACHINE_ARN)["executions"]
    ]
    assert all(value not in text for text in inputs)


@pytest.mark.parametrize(("mission", "kind"), [("B", "bearer-shaped string"), ("C", "jwt-shaped string")])
def test_each_refusal_failed_its_mission_by_name_and_is_audited(leak_run: LeakRun, mission: str, kind: str) -> None:
    mission_id = leak_run.outcomes[mission]["mission_id"]
    item = leak_run.tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert (item["status"], item["error"]) == ("failed", "Agent.SecretRefused")
    [failed] = [i for i in read_trail(leak_run.tables["Audit"], mission_id) if i["action"] == "mission.failed"]
    details = json.loads(failed["details"])
    assert (failed["outcome"], details["error"], details["refused"]) == (
        "Agent.SecretRefused",
        "Agent.SecretRefused",
        kind,
    )
