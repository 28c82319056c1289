"""Organization scans, as the agent takes part in them (DESIGN issue 17 §1, §3):

- an `aegis.scan` event with `organization: true` starts one org-scan execution per event (named `org-<20 hex>`);
- the org-scan Map's account item `{org_scan_id, account_id, regions, checks, dry_run}` starts one mission per
  (organization scan, account), reading the account through its assumed AegisScanRole (moto multi-account: the
  assumed credentials act in that account), or ends `unreachable` with the AWS error code only;
- the plans of one organization scan's accounts together propose at most MAX_CHANGES_PER_ORG_SCAN changes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis.audit import read_trail
from aegis.missions_keys import mission_id_for_event, org_scan_id_for_event, org_scan_key
from aegis_agent import wiring
from aegis_agent.errors import InvalidSettings, MalformedEvent, OrgScanNotConfigured
from aegis_agent.missions import MissionStatus, MissionStore
from aegis_agent.orgcap import fitting
from aegis_agent.plan import change_groups
from aegis_agent.settings import AgentSettings
from aegis_agent.state import MissionRequest
from tests.support.agent_world import (
    ACCOUNT,
    POWERTOOLS_ENV,
    REGION,
    Clock,
    LambdaContext,
    all_items,
    approved,
    env_for,
    executions,
    scan_event,
    scheduled_event,
    settings,
)
from tests.support.lambda_app import load_app

MEMBER_A = "222222222222"
MEMBER_B = "333333333333"
MEMBER_C = "444444444444"
EXTERNAL_ID = "aegis-test-external"
ORG_STATE_MACHINE_NAME = "aegis-org-scan"
ORG_STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{ORG_STATE_MACHINE_NAME}"
ORG_SCAN_ID = org_scan_id_for_event("org-event-1")
BUCKET_CHECK = "s3-bucket-public"


# --- the world ---------------------------------------------------------------------------------------------------
@pytest.fixture
def session(aws: boto3.Session, tables: dict[str, Any], sfn: Any) -> boto3.Session:
    """A session of its own (the shared one is kept across tests), so the hooks a test registers on its STS client
    end with the test."""
    return boto3.Session(region_name=REGION)


def org_settings(**overrides: Any) -> AgentSettings:
    return settings(
        org_scan_state_machine_arn=ORG_STATE_MACHINE_ARN,
        member_external_id=EXTERNAL_ID,
        max_changes_per_org_scan=200,
        **overrides,
    )


def service_on(session: boto3.Session, **overrides: Any) -> Any:
    """The agent as deployed (the layer's scanner: own account with its own role, members through AegisScanRole)."""
    return wiring.build_service(settings=org_settings(**overrides), session=session, clock=Clock())


def member_session(session: boto3.Session, account_id: str) -> boto3.Session:
    """A session acting in another moto account (moto: assumed credentials act in the role's account)."""
    credentials = session.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="seed",
        DurationSeconds=900,
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def public_buckets(session: boto3.Session, *names: str) -> None:
    s3 = session.client("s3", region_name=REGION)
    for name in names:
        s3.create_bucket(Bucket=name)
        s3.put_bucket_acl(Bucket=name, ACL="public-read")


def org_item(tables: dict[str, Any], max_changes: int, accounts: tuple[str, ...] = (MEMBER_A, MEMBER_B)) -> None:
    """The organization scan's own item, as OrgScanFunction writes it before the Map scans any account."""
    tables["Missions"].put_item(
        Item={
            "mission_id": org_scan_key(ORG_SCAN_ID),
            "kind": "org-scan",
            "org_scan_id": ORG_SCAN_ID,
            "status": "scanning",
            "accounts": list(accounts),
            "account_count": len(accounts),
            "created_at": "2026-03-01T12:00:00+00:00",
            "max_changes": max_changes,
            "reserved_changes": 0,
        }
    )


def account_item(account_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "org_scan_id": ORG_SCAN_ID,
        "account_id": account_id,
        "regions": [REGION],
        "checks": [BUCKET_CHECK],
        "dry_run": None,
    } | overrides


def mission_of(account_id: str) -> str:
    return mission_id_for_event(f"{ORG_SCAN_ID}/{account_id}")


def assume_role_calls(session: boto3.Session) -> list[dict[str, Any]]:
    """The parameters of every AssumeRole the session's clients send from now on."""
    calls: list[dict[str, Any]] = []
    session.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: calls.append(dict(params)))
    return calls


def trail(tables: dict[str, Any], mission_id: str) -> list[dict[str, Any]]:
    return sorted(read_trail(tables["Audit"], mission_id), key=lambda record: str(record["seq"]))


def details(record: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(record["details"]))


def org_executions(sfn: Any) -> list[dict[str, Any]]:
    return list(sfn.list_executions(stateMachineArn=ORG_STATE_MACHINE_ARN)["executions"])


@pytest.fixture
def org_machine(sfn: Any) -> Any:
    sfn.create_state_machine(
        name=ORG_STATE_MACHINE_NAME,
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/aegis-org-scan-state-machine",
    )
    return sfn


# --- keys and settings -------------------------------------------------------------------------------------------
def test_the_org_scan_id_is_org_and_20_hex_of_the_events_sha256_and_stable() -> None:
    first = org_scan_id_for_event("evt-1")
    assert first == org_scan_id_for_event("evt-1") != org_scan_id_for_event("evt-2")
    assert first.startswith("org-")
    assert len(first) == 24
    int(first.removeprefix("org-"), 16)
    assert org_scan_key(first) == f"org#{first}"


def test_settings_without_the_organization_variables_still_load_as_the_resume_function_has_none() -> None:
    loaded = AgentSettings.from_env(env_for(settings()))
    assert loaded.org_scan_state_machine_arn is None
    assert loaded.member_external_id is None
    assert loaded.member_scan_role_name == "AegisScanRole"
    assert loaded.max_changes_per_org_scan == 200


def test_settings_read_the_organization_variables_the_template_sets() -> None:
    loaded = AgentSettings.from_env(
        env_for(settings())
        | {
            "ORG_SCAN_STATE_MACHINE_ARN": ORG_STATE_MACHINE_ARN,
            "MEMBER_SCAN_ROLE_NAME": "AegisScanRole",
            "MEMBER_EXTERNAL_ID": EXTERNAL_ID,
            "MAX_CHANGES_PER_ORG_SCAN": "7",
        }
    )
    assert (loaded.org_scan_state_machine_arn, loaded.member_external_id, loaded.max_changes_per_org_scan) == (
        ORG_STATE_MACHINE_ARN,
        EXTERNAL_ID,
        7,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("MAX_CHANGES_PER_ORG_SCAN", "many"), ("ORG_SCAN_STATE_MACHINE_ARN", "not-an-arn"), ("MEMBER_EXTERNAL_ID", "x")],
)
def test_an_invalid_organization_setting_is_named_never_echoed(name: str, value: str) -> None:
    with pytest.raises(InvalidSettings) as raised:
        AgentSettings.from_env(env_for(settings()) | {name: value})
    assert name in str(raised.value)
    assert value not in str(raised.value).replace(name, "")


def test_the_org_cap_grants_whole_findings_in_plan_order() -> None:
    assert fitting([1, 2, 1], 3) == 3
    assert fitting([2, 2], 3) == 2
    assert fitting([3], 2) == 0
    assert fitting([], 5) == 0


# --- the organization scan's start -------------------------------------------------------------------------------
def test_an_organization_event_starts_one_org_scan_execution_even_when_delivered_twice(
    session: boto3.Session, tables: dict[str, Any], org_machine: Any
) -> None:
    service = service_on(session)
    event = scan_event("org-event-1", organization=True, regions=[REGION], checks=[BUCKET_CHECK], dry_run=True)

    first = service.start_mission(event)
    # A redelivery, later (its input's requested_at differs: Step Functions refuses the name).
    again = service.start_mission(event)

    assert first == {"org_scan_id": ORG_SCAN_ID, "status": "started", "created": True}
    assert again == {"org_scan_id": ORG_SCAN_ID, "status": "duplicate", "created": False}
    [execution] = org_executions(org_machine)
    assert execution["name"] == ORG_SCAN_ID
    payload = json.loads(org_machine.describe_execution(executionArn=execution["executionArn"])["input"])
    assert set(payload) == {"org_scan_id", "regions", "checks", "dry_run", "requested_at"}
    assert (payload["org_scan_id"], payload["regions"], payload["checks"], payload["dry_run"]) == (
        ORG_SCAN_ID,
        [REGION],
        [BUCKET_CHECK],
        True,
    )
    # No mission of its own, and none in the account's mission state machine.
    assert executions(org_machine) == []
    assert [i for i in all_items(tables["Missions"]) if i.get("listing") == "mission"] == []
    assert [r["action"] for r in trail(tables, ORG_SCAN_ID)] == ["org_scan.started", "org_scan.duplicate_event"]


def test_a_redelivery_with_the_same_input_is_still_one_execution(session: boto3.Session, org_machine: Any) -> None:
    # A fresh container whose clock reads the same time sends the same input: Step Functions treats that start as
    # the same (idempotent) one, and still one execution runs.
    event = scan_event("org-event-1", organization=True)
    service_on(session).start_mission(event)
    service_on(session).start_mission(event)
    assert [e["name"] for e in org_executions(org_machine)] == [ORG_SCAN_ID]


def test_an_organization_event_without_options_passes_nulls_for_the_deployments_defaults(
    session: boto3.Session, org_machine: Any
) -> None:
    service_on(session).start_mission(scan_event("org-event-1", organization=True))
    [execution] = org_executions(org_machine)
    payload = json.loads(org_machine.describe_execution(executionArn=execution["executionArn"])["input"])
    assert (payload["regions"], payload["checks"], payload["dry_run"]) == (None, None, None)


def test_an_organization_event_is_refused_while_halted_and_starts_nothing(
    session: boto3.Session, tables: dict[str, Any], org_machine: Any
) -> None:
    tables["Control"].put_item(Item={"name": "halt", "engaged": True, "engaged_by": "oncall"})
    outcome = service_on(session).start_mission(scan_event("org-event-1", organization=True))
    assert outcome == {"org_scan_id": ORG_SCAN_ID, "status": "halted", "created": False}
    assert org_executions(org_machine) == []


def test_an_organization_event_without_the_org_scan_state_machine_is_a_named_error(
    session: boto3.Session, org_machine: Any
) -> None:
    service = wiring.build_service(settings=settings(), session=session, clock=Clock())
    with pytest.raises(OrgScanNotConfigured):
        service.start_mission(scan_event("org-event-1", organization=True))
    assert org_executions(org_machine) == []


def test_an_organization_event_with_an_unknown_check_is_malformed(session: boto3.Session, org_machine: Any) -> None:
    with pytest.raises(MalformedEvent):
        service_on(session).start_mission(scan_event("org-event-1", organization=True, checks=["no-such-check"]))
    assert org_executions(org_machine) == []


# --- an account of the organization scan -------------------------------------------------------------------------
def test_an_account_item_scans_the_member_through_its_assumed_scan_role(
    session: boto3.Session, tables: dict[str, Any], sfn: Any
) -> None:
    org_item(tables, max_changes=10)
    public_buckets(session, "own-account-public-bucket")
    public_buckets(member_session(session, MEMBER_A), "member-a-public-bucket")
    calls = assume_role_calls(session)
    service = service_on(session)

    outcome = service.start_mission(account_item(MEMBER_A))

    # The member's scanner (and the credentials in its session) did not outlive the invocation.
    assert service._accounts._members == {}
    mission_id = mission_of(MEMBER_A)
    assert outcome["mission_id"] == mission_id
    assert outcome["status"] == MissionStatus.AWAITING_APPROVAL.value
    assert calls == [
        {
            "RoleArn": f"arn:aws:iam::{MEMBER_A}:role/AegisScanRole",
            "RoleSessionName": f"aegis-scan-{mission_id}",
            "ExternalId": EXTERNAL_ID,
            "DurationSeconds": 900,
        }
    ]
    # The member's bucket, in the member's account; never the agent's own.
    [execution] = executions(sfn)
    changes = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])["changes"]
    assert [(c["resource_arn"], c["account_id"]) for c in changes] == [
        ("arn:aws:s3:::member-a-public-bucket", MEMBER_A)
    ]
    item = tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert (item["trigger"], item["org_scan"], item["account_id"], item["listing"]) == (
        "organization",
        ORG_SCAN_ID,
        MEMBER_A,
        "mission",
    )
    report_store = MissionStore(tables["Missions"])
    scan_pages = [i for i in all_items(tables["Missions"]) if i["mission_id"].startswith(f"{mission_id}#scan#")]
    scan = json.loads("".join(str(p["body"]) for p in sorted(scan_pages, key=lambda p: p["page"])))
    assert scan["account_id"] == MEMBER_A
    assert {f["account_id"] for f in scan["findings"]} == {MEMBER_A}
    assert report_store.get(mission_id)["counts"]["findings"] == 1
    created = [r for r in trail(tables, mission_id) if r["action"] == "mission.created"]
    assert details(created[0])["account_id"] == MEMBER_A
    assert details(created[0])["org_scan"] == ORG_SCAN_ID


def test_the_agents_own_account_in_an_organization_scan_is_scanned_without_assuming_a_role(
    session: boto3.Session, tables: dict[str, Any]
) -> None:
    org_item(tables, max_changes=10, accounts=(ACCOUNT,))
    public_buckets(session, "own-account-public-bucket")
    calls = assume_role_calls(session)

    outcome = service_on(session).start_mission(account_item(ACCOUNT))

    assert outcome["status"] == MissionStatus.AWAITING_APPROVAL.value
    assert calls == []
    item = tables["Missions"].get_item(Key={"mission_id": mission_of(ACCOUNT)})["Item"]
    assert (item["account_id"], item["org_scan"]) == (ACCOUNT, ORG_SCAN_ID)


def test_every_ordinary_mission_item_names_the_agents_own_account_and_no_org_scan(
    session: boto3.Session, tables: dict[str, Any]
) -> None:
    outcome = service_on(session).start_mission(scheduled_event())
    item = tables["Missions"].get_item(Key={"mission_id": outcome["mission_id"]})["Item"]
    assert item["account_id"] == ACCOUNT
    assert "org_scan" not in item
    assert item["trigger"] == "scheduled"


def test_an_account_item_delivered_twice_is_one_mission(
    session: boto3.Session, tables: dict[str, Any], sfn: Any
) -> None:
    org_item(tables, max_changes=10)
    public_buckets(member_session(session, MEMBER_A), "member-a-public-bucket")

    first = service_on(session).start_mission(account_item(MEMBER_A))
    again = service_on(session).start_mission(account_item(MEMBER_A))

    assert first["status"] == "awaiting_approval"
    assert again == {"mission_id": first["mission_id"], "status": "awaiting_approval", "created": False}
    assert len(executions(sfn)) == 1
    org = tables["Missions"].get_item(Key={"mission_id": org_scan_key(ORG_SCAN_ID)})["Item"]
    assert org["reserved_changes"] == 1


def deny_assume_role(session: boto3.Session, message: str) -> None:
    """AssumeRole answers AccessDenied (the member has no AegisScanRole, or another external id), with a message
    that names things the agent must not keep."""

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "AssumeRole")

    session.events.register("before-call.sts.AssumeRole", refuse)


def test_an_account_whose_scan_role_cannot_be_assumed_ends_unreachable_with_the_error_code_only(
    session: boto3.Session, tables: dict[str, Any], sfn: Any
) -> None:
    org_item(tables, max_changes=10)
    message = "User: arn:aws:sts::123456789012:assumed-role/agent/x is not authorized; ref 8c1f-unreachable-text"
    deny_assume_role(session, message)

    outcome = service_on(session).start_mission(account_item(MEMBER_B))
    again = service_on(session).start_mission(account_item(MEMBER_B))

    mission_id = mission_of(MEMBER_B)
    assert outcome == {"mission_id": mission_id, "status": "unreachable", "account_id": MEMBER_B, "created": True}
    assert again == {"mission_id": mission_id, "status": "unreachable", "created": False}
    item = tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert (item["status"], item["error"], item["account_id"], item["org_scan"]) == (
        "unreachable",
        "AccessDenied",
        MEMBER_B,
        ORG_SCAN_ID,
    )
    [record] = [r for r in trail(tables, mission_id) if r["action"] == "mission.unreachable"]
    assert record["outcome"] == "AccessDenied"
    assert details(record) == {"error": "AccessDenied", "account_id": MEMBER_B, "org_scan": ORG_SCAN_ID}
    assert executions(sfn) == []
    # Nothing was scanned: no document, no checkpoint; and AWS's message is nowhere.
    assert [i for i in all_items(tables["Missions"]) if i["mission_id"].startswith(mission_id + "#")] == []
    assert all_items(tables["Checkpoints"]) == []
    for table in tables.values():
        assert "8c1f-unreachable-text" not in json.dumps(all_items(table), default=str)


def test_without_the_external_id_a_member_is_unreachable_by_name_without_a_call(
    session: boto3.Session, tables: dict[str, Any]
) -> None:
    org_item(tables, max_changes=10)
    calls = assume_role_calls(session)
    service = wiring.build_service(
        settings=settings(org_scan_state_machine_arn=ORG_STATE_MACHINE_ARN), session=session, clock=Clock()
    )
    outcome = service.start_mission(account_item(MEMBER_A))
    assert outcome["status"] == "unreachable"
    assert calls == []
    item = tables["Missions"].get_item(Key={"mission_id": mission_of(MEMBER_A)})["Item"]
    assert item["error"] == "MemberExternalIdNotConfigured"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (account_item("12345"), "account_id"),
        (account_item(MEMBER_A, org_scan_id="org-XYZ"), "org_scan_id"),
        (account_item(MEMBER_A, regions=["not a region"]), "regions.0"),
        (account_item(MEMBER_A, checks=[]), "checks"),
        (account_item(MEMBER_A, dry_run="yes"), "dry_run"),
        (account_item(MEMBER_A) | {"role_arn": "arn:aws:iam::999999999999:role/Admin"}, "role_arn"),
        ({"org_scan_id": ORG_SCAN_ID}, "account_id"),
    ],
)
def test_a_malformed_account_item_is_a_named_error_naming_the_field_and_creates_nothing(
    session: boto3.Session, tables: dict[str, Any], payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(MalformedEvent) as raised:
        service_on(session).start_mission(payload)
    assert raised.value.error_name == "Agent.MalformedEvent"
    assert "account scan" in str(raised.value)
    assert field in str(raised.value)
    assert "999999999999" not in str(raised.value)
    assert all_items(tables["Missions"]) == []


def test_an_account_item_with_an_unknown_check_is_malformed(session: boto3.Session, tables: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent):
        service_on(session).start_mission(account_item(MEMBER_A, checks=["no-such-check"]))
    assert all_items(tables["Missions"]) == []


# --- the organization-wide cap -----------------------------------------------------------------------------------
def test_the_org_cap_holds_across_accounts_and_reports_the_rest_as_not_planned(
    session: boto3.Session, tables: dict[str, Any], sfn: Any
) -> None:
    org_item(tables, max_changes=3, accounts=(MEMBER_A, MEMBER_B, MEMBER_C))
    public_buckets(member_session(session, MEMBER_A), "member-a-public-one", "member-a-public-two")
    public_buckets(member_session(session, MEMBER_B), "member-b-public-one", "member-b-public-two")
    public_buckets(member_session(session, MEMBER_C), "member-c-public-one")

    a = service_on(session).start_mission(account_item(MEMBER_A))
    b = service_on(session).start_mission(account_item(MEMBER_B))
    c = service_on(session).start_mission(account_item(MEMBER_C))

    # A: both; B: one of two; C: none (completes with no approval).
    assert (a["status"], a["changes"]) == ("awaiting_approval", 2)
    assert (b["status"], b["changes"]) == ("awaiting_approval", 1)
    assert c["status"] == "completed"
    assert c["plan_status"] == "capped"
    org = tables["Missions"].get_item(Key={"mission_id": org_scan_key(ORG_SCAN_ID)})["Item"]
    assert org["reserved_changes"] == 3
    started = {e["name"]: e for e in executions(sfn)}
    assert set(started) == {a["mission_id"], b["mission_id"]}
    b_changes = json.loads(sfn.describe_execution(executionArn=started[b["mission_id"]]["executionArn"])["input"])
    assert [ch["resource_arn"] for ch in b_changes["changes"]] == ["arn:aws:s3:::member-b-public-one"]

    # B's report: the first bucket planned, the second not planned with the org cap's reason.
    store = MissionStore(tables["Missions"])
    b_item = store.get(b["mission_id"])
    assert (b_item["counts"]["changes"], b_item["counts"]["findings"], b_item["org_changes_granted"]) == (1, 2, 1)
    [cap] = [r for r in trail(tables, b["mission_id"]) if r["action"] == "plan.org_cap"]
    assert cap["outcome"] == "capped"
    assert details(cap) == {"org_scan": ORG_SCAN_ID, "requested": 2, "granted": 1, "max_changes": 3}

    c_report = store.read_report(c["mission_id"])
    assert c_report is not None
    assert c_report.account_id == MEMBER_C
    assert [(f.resource_arn, f.disposition.value, f.reason) for f in c_report.findings] == [
        ("arn:aws:s3:::member-c-public-one", "unplanned", "org-cap-reached")
    ]
    assert c_report.plan_stop_reason is not None
    assert c_report.plan_stop_reason.startswith("MAX_CHANGES_PER_ORG_SCAN")
    assert f"Account {MEMBER_C} of organization scan {ORG_SCAN_ID}." in c_report.notes
    assert any(note.startswith("Organization-wide cap reached") for note in c_report.notes)
    [c_cap] = [r for r in trail(tables, c["mission_id"]) if r["action"] == "plan.org_cap"]
    assert (c_cap["outcome"], details(c_cap)["granted"]) == ("capped", 0)
    [a_cap] = [r for r in trail(tables, a["mission_id"]) if r["action"] == "plan.org_cap"]
    assert (a_cap["outcome"], details(a_cap)["granted"]) == ("granted", 2)


def test_a_dry_run_account_reserves_nothing(session: boto3.Session, tables: dict[str, Any], sfn: Any) -> None:
    org_item(tables, max_changes=1)
    public_buckets(member_session(session, MEMBER_A), "member-a-public-one", "member-a-public-two")

    outcome = service_on(session).start_mission(account_item(MEMBER_A, dry_run=True))

    assert (outcome["status"], outcome["plan_status"]) == ("completed", "dry_run")
    org = tables["Missions"].get_item(Key={"mission_id": org_scan_key(ORG_SCAN_ID)})["Item"]
    assert org["reserved_changes"] == 0
    assert executions(sfn) == []


def test_an_account_of_an_org_scan_with_no_record_proposes_nothing(
    session: boto3.Session, tables: dict[str, Any], sfn: Any
) -> None:
    public_buckets(member_session(session, MEMBER_A), "member-a-public-one")
    outcome = service_on(session).start_mission(account_item(MEMBER_A))
    assert (outcome["status"], outcome["plan_status"]) == ("completed", "capped")
    assert executions(sfn) == []


# --- the account's re-scan after approval ------------------------------------------------------------------------
def test_the_resume_re_scans_the_member_through_a_fresh_assumed_role_and_keeps_no_session(
    session: boto3.Session, tables: dict[str, Any], sfn: Any
) -> None:
    org_item(tables, max_changes=10)
    member = member_session(session, MEMBER_A)
    public_buckets(member, "member-a-public-bucket")
    started = service_on(session).start_mission(account_item(MEMBER_A))
    [execution] = executions(sfn)
    change_ids = [
        c["change_id"]
        for c in json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])["changes"]
    ]
    # The executor's work, in the member account.
    member.client("s3").put_public_access_block(
        Bucket="member-a-public-bucket",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    calls = assume_role_calls(session)
    service = service_on(session)

    resumed = service.resume_mission({"mission_id": started["mission_id"], "results": approved(change_ids)})

    assert resumed["status"] == "completed"
    assert [c["RoleArn"] for c in calls] == [f"arn:aws:iam::{MEMBER_A}:role/AegisScanRole"]
    report = MissionStore(tables["Missions"]).read_report(started["mission_id"])
    assert report is not None
    assert [(c.resource_arn, c.verified.value if c.verified else None) for c in report.changes] == [
        ("arn:aws:s3:::member-a-public-bucket", "fixed")
    ]
    # The member's scanner (and the credentials in its session) did not outlive the invocation.
    assert service._accounts._members == {}


def test_a_member_unreachable_at_the_re_scan_leaves_its_changes_unverified_by_the_error_code(
    session: boto3.Session, tables: dict[str, Any], sfn: Any
) -> None:
    org_item(tables, max_changes=10)
    public_buckets(member_session(session, MEMBER_A), "member-a-public-bucket")
    started = service_on(session).start_mission(account_item(MEMBER_A))
    [execution] = executions(sfn)
    changes = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])["changes"]
    deny_assume_role(session, "denied")

    resumed = service_on(session).resume_mission(
        {"mission_id": started["mission_id"], "results": approved([c["change_id"] for c in changes])}
    )

    assert resumed["status"] == "completed"
    report = MissionStore(tables["Missions"]).read_report(started["mission_id"])
    assert report is not None
    assert [(c.verified.value if c.verified else None, c.verified_detail) for c in report.changes] == [
        ("unverified", "AccessDenied")
    ]


def test_a_checkpointed_request_from_before_organization_scans_still_loads() -> None:
    """Checkpoints written before this change hold requests without `account_id`/`org_scan`: the agent's own."""
    request = MissionRequest.model_validate(
        {
            "mission_id": "m-0123456789abcdef0123",
            "trigger": "scheduled",
            "regions": [REGION],
            "policy": {"max_changes_per_mission": 1, "max_share_per_resource_type": 1.0},
            "requested_at": "2026-03-01T12:00:00+00:00",
        }
    )
    assert (request.account_id, request.org_scan) == (None, None)


def test_plans_group_a_split_findings_changes_so_the_cap_never_half_plans_one() -> None:
    from tests.support.agent_world import bucket_finding, ebs_finding, propose

    bucket = propose(bucket_finding("a"))
    ebs = propose(ebs_finding())
    assert bucket is not None
    assert ebs is not None
    assert change_groups([bucket, bucket, ebs]) == [2, 1]
    assert change_groups([]) == []


# --- through the Lambda handler ----------------------------------------------------------------------------------
def test_the_scan_handler_starts_an_org_scan_and_logs_it_by_its_id(
    session: boto3.Session, org_machine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in POWERTOOLS_ENV.items():
        monkeypatch.setenv(name, value)
    module = load_app("agent")
    monkeypatch.setattr(module, "service", lambda: service_on(session))
    # The records themselves, from the service's logger: Powertools keeps the stream its handler was first given,
    # which is another test's captured stdout when the suite runs in one process.
    records: list[logging.LogRecord] = []
    keep = _Keep(records)
    service_logger = logging.getLogger(POWERTOOLS_ENV["POWERTOOLS_SERVICE_NAME"])
    service_logger.addHandler(keep)
    try:
        outcome = module.scan_handler(scan_event("org-event-1", organization=True), LambdaContext())
    finally:
        service_logger.removeHandler(keep)

    assert outcome == {"org_scan_id": ORG_SCAN_ID, "status": "started", "created": True}
    [handled] = [record for record in records if record.getMessage() == "scan handled"]
    assert (getattr(handled, "org_scan_id", None), getattr(handled, "status", None)) == (ORG_SCAN_ID, "started")
    assert not hasattr(handled, "mission_id")


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
