"""The kill switch in an organization: a trigger halts the remediation roles of every member account (in parallel,
through each member's AegisKillSwitchRole, with the same policies as this account's), lists the members it could
not reach with AWS's error code without holding back the others or the steps after, and stops the running
organization scans; a re-arm lifts the halt in the members. moto in-process, one account per member: an AssumeRole
into a member's role gives credentials acting in that member."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis.audit import read_trail
from aegis_killswitch import aws_steps, halt, members, steps, wiring
from aegis_killswitch.errors import InvalidSettings
from aegis_killswitch.report import OperationRequest
from aegis_killswitch.service import KILLSWITCH_AUDIT_ID, KillSwitch
from aegis_killswitch.settings import KillSwitchSettings
from tests.support.killswitch_world import (
    ACCOUNT,
    LAMBDA_TRUST,
    REGION,
    REMEDIATION_ROLES,
    AwsWorld,
    kill_switch_for,
    step_of,
    wait_until,
)

MEMBER_REMEDIATION_ROLE = "AegisRemediationRole"
MEMBER_UNDO_ROLE = "AegisUndoRole"
MEMBER_ROLES = (MEMBER_REMEDIATION_ROLE, MEMBER_UNDO_ROLE)
EXTERNAL_ID = "aegis-test-external-id"
ORG_SCAN_MACHINE = "aegis-org-scan"
# Long enough that an organization scan is still running when the trigger comes.
WAITING_ORG_SCAN = json.dumps(
    {"StartAt": "ScanEachAccount", "States": {"ScanEachAccount": {"Type": "Wait", "Seconds": 3600, "End": True}}}
)


@dataclass
class Organization:
    """A moto organization managed by the kill switch's account (moto's default), with member accounts."""

    organization_id: str
    members: list[str]
    # Members created without the remediation roles (member/template.yaml not deployed there).
    roleless: list[str] = field(default_factory=list)
    # Members whose AegisKillSwitchRole refuses the kill switch (AssumeRole answered AccessDenied).
    refusing: set[str] = field(default_factory=set)

    def iam(self, account_id: str) -> Any:
        """An IAM client acting in a member (the test's own way in, not the kill switch's)."""
        credentials = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="test"
        )["Credentials"]
        return boto3.client(
            "iam",
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def policy(self, account_id: str, role: str, name: str) -> dict[str, Any] | None:
        iam = self.iam(account_id)
        try:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        except iam.exceptions.NoSuchEntityException:
            return None
        return json.loads(document) if isinstance(document, str) else document

    def halted(self, account_id: str, role: str = MEMBER_REMEDIATION_ROLE) -> bool:
        return self.policy(account_id, role, aws_steps.HALTED_POLICY_NAME) is not None

    def cutoff(self, account_id: str, role: str = MEMBER_REMEDIATION_ROLE) -> str | None:
        policy = self.policy(account_id, role, aws_steps.DENY_POLICY_NAME)
        if policy is None:
            return None
        return str(policy["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"])


def create_organization(member_count: int, *, without_roles: int = 0) -> Organization:
    """The organization and its members, each with member/template.yaml's remediation roles, except the last
    `without_roles` members."""
    organizations = boto3.client("organizations", region_name=REGION)
    organization_id = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    created = [
        organizations.create_account(AccountName=f"member-{n}", Email=f"member-{n}@aegis.test")["CreateAccountStatus"][
            "AccountId"
        ]
        for n in range(member_count)
    ]
    with_roles = created[: member_count - without_roles]
    organization = Organization(organization_id, sorted(created), roleless=created[len(with_roles) :])
    for account_id in with_roles:
        iam = organization.iam(account_id)
        for role in MEMBER_ROLES:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    return organization


def organization_settings(
    monkeypatch: pytest.MonkeyPatch, organization: Organization, **overrides: str
) -> KillSwitchSettings:
    environment = {
        "ORGANIZATION_ID": organization.organization_id,
        "MEMBER_KILLSWITCH_ROLE_NAME": "AegisKillSwitchRole",
        "MEMBER_EXTERNAL_ID": EXTERNAL_ID,
        "MEMBER_REMEDIATION_ROLE_NAME": MEMBER_REMEDIATION_ROLE,
        "MEMBER_UNDO_ROLE_NAME": MEMBER_UNDO_ROLE,
        **overrides,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return KillSwitchSettings.from_env()


class AssumeRoleHooks:
    """What the kill switch's STS client sees of each AssumeRole: the requests, the credentials issued (which must
    never show up in a report or a record), and a member's trust refusing (as AWS answers for a role that is missing
    or whose trust or ExternalId does not match)."""

    def __init__(self, sts: Any, organization: Organization) -> None:
        self.organization = organization
        self.requests: list[dict[str, Any]] = []
        self.issued: list[str] = []
        self.before: Callable[[str], None] = lambda account_id: None
        self._lock = threading.Lock()
        sts.meta.events.register("before-parameter-build.sts.AssumeRole", self._before)
        sts.meta.events.register("after-call.sts.AssumeRole", self._after)

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        account_id = params["RoleArn"].split(":")[4]
        with self._lock:
            self.requests.append(dict(params))
        self.before(account_id)
        if account_id in self.organization.refusing:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": f"not authorized to assume {params['RoleArn']}"}},
                "AssumeRole",
            )

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        credentials = parsed.get("Credentials") or {}
        with self._lock:
            self.issued += [str(credentials[key]) for key in ("AccessKeyId", "SecretAccessKey", "SessionToken")]

    def accounts(self) -> list[str]:
        return sorted(request["RoleArn"].split(":")[4] for request in self.requests)


@dataclass
class OrgKillSwitch:
    switch: KillSwitch
    hooks: AssumeRoleHooks
    organization: Organization


def org_kill_switch(world: AwsWorld, settings: KillSwitchSettings, organization: Organization) -> OrgKillSwitch:
    world.create_mission_state_machine()
    switch = kill_switch_for(world, settings)
    switch.clients.organizations = boto3.client("organizations", region_name=REGION)
    switch.clients.sts = boto3.client("sts", region_name=REGION)
    return OrgKillSwitch(switch, AssumeRoleHooks(switch.clients.sts, organization), organization)


@pytest.fixture
def organization() -> Organization:
    return create_organization(3)


@pytest.fixture
def org_switch(
    monkeypatch: pytest.MonkeyPatch, aws_world: AwsWorld, settings: KillSwitchSettings, organization: Organization
) -> OrgKillSwitch:
    return org_kill_switch(aws_world, organization_settings(monkeypatch, organization), organization)


# --------------------------------------------------------------------------------------------------- trigger


def test_a_trigger_halts_every_member_with_the_policies_of_this_account(org_switch: OrgKillSwitch) -> None:
    organization = org_switch.organization

    report = org_switch.switch.trigger(reason="drill", requested_by="alice")

    assert report.ok, [(step.step, step.reason) for step in report.steps if not step.ok]
    halt = step_of(report, "halt_member_accounts")
    assert halt.details["halted"] == organization.members
    assert halt.details["unreachable"] == {}
    assert halt.details["accounts"] == len(organization.members)
    for account_id in organization.members:
        for role in MEMBER_ROLES:
            assert organization.policy(account_id, role, aws_steps.HALTED_POLICY_NAME) == (
                aws_steps.halted_policy_document()
            )
            cutoff = organization.cutoff(account_id, role)
            assert cutoff is not None
            assert cutoff >= str(step_of(report, "deny_remediation_sessions").details["sessions_issued_before"])
    # Through each member's AegisKillSwitchRole, the ExternalId pinned; this account is never assumed into.
    assert org_switch.hooks.accounts() == organization.members
    assert ACCOUNT not in org_switch.hooks.accounts()
    for request in org_switch.hooks.requests:
        assert request["RoleArn"].endswith(":role/AegisKillSwitchRole")
        assert request["ExternalId"] == EXTERNAL_ID
        assert request["RoleSessionName"] == members.HALT_SESSION_NAME


def test_members_are_halted_in_parallel_at_most_sixteen_at_a_time(
    monkeypatch: pytest.MonkeyPatch, aws_world: AwsWorld, settings: KillSwitchSettings
) -> None:
    organization = create_organization(20)
    org_switch = org_kill_switch(aws_world, organization_settings(monkeypatch, organization), organization)
    active = 0
    most = 0
    lock = threading.Lock()

    def overlapping(account_id: str) -> None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        # Each member waits (a second at most) until a full pool of them is in AssumeRole at once: one member
        # after the other would never get there, and a pool larger than allowed would go past it.
        deadline = time.monotonic() + 1.0
        while most < members.MEMBER_WORKERS and time.monotonic() < deadline:
            time.sleep(0.01)
        with lock:
            active -= 1

    org_switch.hooks.before = overlapping

    report = org_switch.switch.trigger(reason="drill", requested_by="alice")

    assert step_of(report, "halt_member_accounts").details["halted"] == organization.members
    assert most == members.MEMBER_WORKERS


def test_an_unreachable_member_fails_the_step_but_not_the_others_nor_the_steps_after(
    monkeypatch: pytest.MonkeyPatch, aws_world: AwsWorld, settings: KillSwitchSettings
) -> None:
    organization = create_organization(4, without_roles=1)
    # Its trust lets the kill switch in, but there is no role to halt.
    (without_roles,) = organization.roleless
    refusing = next(account_id for account_id in organization.members if account_id != without_roles)
    organization.refusing.add(refusing)
    reachable = [account_id for account_id in organization.members if account_id not in (refusing, without_roles)]
    org_switch = org_kill_switch(aws_world, organization_settings(monkeypatch, organization), organization)

    report = org_switch.switch.trigger(reason="drill", requested_by="alice")

    halt = step_of(report, "halt_member_accounts")
    assert not halt.ok
    assert halt.details["halted"] == reachable
    assert halt.details["unreachable"] == {refusing: "AccessDenied", without_roles: "NoSuchEntity"}
    assert f"{refusing} (AccessDenied)" in halt.reason
    # Only the member step failed: the alarm on failed steps fires, and every other stop is in place.
    assert report.failed_steps == ["halt_member_accounts"]
    assert report.halted is True
    for account_id in reachable:
        assert organization.halted(account_id)
        assert organization.halted(account_id, MEMBER_UNDO_ROLE)
    assert not organization.halted(refusing)
    # The record names accounts and codes, never AWS's message (which names roles and principals).
    (record,) = [
        item
        for item in read_trail(aws_world.audit, KILLSWITCH_AUDIT_ID)
        if item["action"] == "killswitch.trigger.halt_member_accounts"
    ]
    assert record["outcome"] == "failed"
    assert json.loads(record["details"])["details"]["unreachable"] == {
        refusing: "AccessDenied",
        without_roles: "NoSuchEntity",
    }
    assert "not authorized" not in json.dumps(record, default=str)


def test_a_member_that_hangs_is_cut_off_by_the_budget(
    monkeypatch: pytest.MonkeyPatch, org_switch: OrgKillSwitch
) -> None:
    organization = org_switch.organization
    hanging, *others = organization.members
    release = threading.Event()
    finished = threading.Event()

    def hang(account_id: str) -> None:
        if account_id == hanging:
            release.wait(timeout=30)
            finished.set()
            # Let the straggler end here: the test's moto account must not see it after the test.
            raise ClientError({"Error": {"Code": "RequestTimeout", "Message": "late"}}, "AssumeRole")

    org_switch.hooks.before = hang
    # Long enough for the members that answer to do so on a loaded machine (0.5 s was not, one run in a few), far
    # shorter than the hanging member's 30 s.
    monkeypatch.setattr(members, "MEMBER_BUDGET_SECONDS", 3.0)
    try:
        started = time.monotonic()
        report = org_switch.switch.trigger(reason="drill", requested_by="alice")
        elapsed = time.monotonic() - started
        assert not release.is_set()
    finally:
        release.set()
        assert finished.wait(timeout=10)

    halt = step_of(report, "halt_member_accounts")
    assert halt.details["unreachable"] == {hanging: members.TIMED_OUT}
    assert halt.details["halted"] == others
    assert report.failed_steps == ["halt_member_accounts"]
    assert elapsed < 10


def test_a_failed_account_listing_fails_the_step_with_its_code_and_the_halt_goes_on(
    monkeypatch: pytest.MonkeyPatch, aws_world: AwsWorld, settings: KillSwitchSettings
) -> None:
    lonely = Organization("o-abcdefghij", [])
    org_switch = org_kill_switch(aws_world, organization_settings(monkeypatch, lonely), lonely)

    def refuse(**_: Any) -> None:
        # As AWS answers an account that is neither the management account nor a delegated administrator.
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not the manager"}}, "ListAccounts")

    org_switch.switch.clients.organizations.meta.events.register(
        "before-parameter-build.organizations.ListAccounts", refuse
    )

    report = org_switch.switch.trigger(reason="drill", requested_by="alice")

    halt = step_of(report, "halt_member_accounts")
    assert not halt.ok
    assert halt.details["error"] == "AccessDeniedException"
    assert "AccessDeniedException" in halt.reason
    assert report.failed_steps == ["halt_member_accounts"]
    assert org_switch.hooks.requests == []
    assert aws_world.halted_policy() is not None


def test_without_an_organization_the_member_steps_are_skipped_and_touch_nothing(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    aws_world.create_mission_state_machine()
    assert not settings.organization_enabled
    switch = kill_switch_for(aws_world, settings)

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"{name} called without an organization")

    switch.clients.organizations = Untouchable()
    switch.clients.sts = Untouchable()

    trigger = switch.trigger(reason="drill", requested_by="alice")
    rearm = switch.rearm(reason="over", requested_by="bob")

    assert trigger.ok
    assert rearm.ok
    for step in (step_of(trigger, "halt_member_accounts"), step_of(rearm, "rearm_member_accounts")):
        assert step.ok
        assert "ORGANIZATION_ID is empty" in step.reason


def test_without_undo_the_members_undo_role_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, aws_world: AwsWorld, settings: KillSwitchSettings, organization: Organization
) -> None:
    without_undo = organization_settings(monkeypatch, organization, MEMBER_UNDO_ROLE_NAME="")
    assert without_undo.member_role_names == (MEMBER_REMEDIATION_ROLE,)
    org_switch = org_kill_switch(aws_world, without_undo, organization)

    report = org_switch.switch.trigger(reason="drill", requested_by="alice")

    assert step_of(report, "halt_member_accounts").ok
    for account_id in organization.members:
        assert organization.halted(account_id)
        assert not organization.halted(account_id, MEMBER_UNDO_ROLE)
        assert organization.cutoff(account_id, MEMBER_UNDO_ROLE) is None


def test_no_credential_of_a_member_reaches_the_report_the_audit_or_the_logs(
    org_switch: OrgKillSwitch, aws_world: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    report = org_switch.switch.trigger(reason="drill", requested_by="alice")
    rearm = org_switch.switch.rearm(reason="over", requested_by="bob")

    issued = org_switch.hooks.issued
    assert len(issued) == 3 * 2 * len(org_switch.organization.members)
    trail = json.dumps(aws_world.audit.scan()["Items"], default=str)
    printed = capsys.readouterr()
    for text in (json.dumps(report.as_response()), json.dumps(rearm.as_response()), trail, printed.out, printed.err):
        assert not [secret for secret in issued if secret in text]
    # What the records do name: the accounts.
    assert all(account_id in trail for account_id in org_switch.organization.members)


# --------------------------------------------------------------------------------------------------- ordering


def test_this_accounts_deny_comes_before_any_member_call_and_every_member_before_auth0(
    org_switch: OrgKillSwitch,
) -> None:
    switch = org_switch.switch
    organization = org_switch.organization
    calls: list[str] = []
    members_halted_at_auth0: list[bool] = []

    class Recorded:
        def __init__(self, client: Any, name: str) -> None:
            self._client, self._name = client, name

        def __getattr__(self, attribute: str) -> Any:
            calls.append(f"{self._name}.{attribute}")
            return getattr(self._client, attribute)

    switch.clients.iam = Recorded(switch.clients.iam, "iam")
    switch.clients.organizations = Recorded(switch.clients.organizations, "organizations")
    switch.clients.sts = Recorded(switch.clients.sts, "sts")
    management = switch.clients.auth0_management

    def auth0() -> Any:
        calls.append("auth0")
        members_halted_at_auth0.append(all(organization.halted(account_id) for account_id in organization.members))
        return management()

    switch.clients.auth0_management = auth0

    assert switch.trigger(reason="drill", requested_by="alice").ok

    own_denies = [i for i, call in enumerate(calls) if call == "iam.put_role_policy"]
    assert len(own_denies) == 2 * len(REMEDIATION_ROLES)
    first_member_call = min(i for i, call in enumerate(calls) if call.startswith(("organizations.", "sts.")))
    assert max(own_denies) < first_member_call
    assert calls.index("auth0") > max(i for i, call in enumerate(calls) if call.startswith("sts."))
    assert members_halted_at_auth0 == [True]


# --------------------------------------------------------------------------------------------------- re-arm


def test_a_rearm_moves_each_members_cutoff_and_lifts_its_halt(org_switch: OrgKillSwitch) -> None:
    organization = org_switch.organization
    trigger = org_switch.switch.trigger(reason="drill", requested_by="alice")
    assert trigger.ok
    cutoffs = {account_id: organization.cutoff(account_id) for account_id in organization.members}
    unreachable = organization.members[0]
    organization.refusing.add(unreachable)
    time.sleep(1.1)  # the cutoff is to the whole second: a re-arm a second later moves it

    rearm = org_switch.switch.rearm(reason="drill over", requested_by="bob")

    step = step_of(rearm, "rearm_member_accounts")
    assert rearm.failed_steps == ["rearm_member_accounts"]
    assert step.details["rearmed"] == organization.members[1:]
    assert step.details["unreachable"] == {unreachable: "AccessDenied"}
    assert [step.step for step in rearm.steps][-2:] == ["lift_halted_policy", "rearm_member_accounts"]
    for account_id in organization.members[1:]:
        for role in MEMBER_ROLES:
            assert not organization.halted(account_id, role)
            assert str(organization.cutoff(account_id, role)) > str(cutoffs[account_id])
    # The member the re-arm could not reach stays halted: nothing is lifted that was not reached.
    assert organization.halted(unreachable)
    assert [r["RoleSessionName"] for r in org_switch.hooks.requests[-3:]] == [members.REARM_SESSION_NAME] * 3


def test_a_rearm_lifts_nothing_in_the_members_while_the_flag_is_engaged(
    org_switch: OrgKillSwitch, aws_world: AwsWorld
) -> None:
    switch = org_switch.switch
    organization = org_switch.organization
    assert switch.trigger(reason="drill", requested_by="alice").ok
    before = len(org_switch.hooks.requests)

    outcome = steps._rearm_members(_run(switch))

    assert not outcome.ok
    assert "still engaged" in outcome.reason
    assert len(org_switch.hooks.requests) == before
    assert all(organization.halted(account_id) for account_id in organization.members)


def test_a_trigger_during_a_rearm_keeps_the_members_it_had_not_yet_lifted_halted(
    org_switch: OrgKillSwitch, aws_world: AwsWorld
) -> None:
    switch = org_switch.switch
    organization = org_switch.organization
    assert switch.trigger(reason="drill", requested_by="alice").ok
    # A re-arm that found the flag released, then a new trigger engages it while the re-arm is in the members.
    halt.release(aws_world.control, at="t1", by="bob", reason="over", operation_id="ks-rearm")
    lock = threading.Lock()
    engaged = threading.Event()

    def trigger_meanwhile(account_id: str) -> None:
        with lock:  # the Table resource is not shared between threads
            if not engaged.is_set():
                halt.engage(aws_world.control, at="t2", by="carol", reason="again", operation_id="ks-trigger")
                engaged.set()

    org_switch.hooks.before = trigger_meanwhile

    outcome = steps._rearm_members(_run(switch))

    assert not outcome.ok
    assert outcome.details["unreachable"] == dict.fromkeys(organization.members, members.HALT_ENGAGED)
    assert all(organization.halted(account_id) for account_id in organization.members)


def _run(switch: KillSwitch) -> steps.Run:
    request = OperationRequest(operation="rearm", operation_id="ks-test", requested_by="bob", reason="r", at="t")
    return steps.Run(
        request=request,
        settings=switch.settings,
        clients=switch.clients,
        clock=lambda: datetime.now(UTC),
        management=switch.clients.auth0_management,
        record_mission=lambda mission_id, details: None,
    )


# --------------------------------------------------------------------------------------------------- org scans


def test_a_trigger_stops_the_running_organization_scans_before_the_missions(
    monkeypatch: pytest.MonkeyPatch, aws_world: AwsWorld, settings: KillSwitchSettings
) -> None:
    role = aws_world.iam.create_role(
        RoleName="aegis-org-scan-states", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )
    machine = aws_world.sfn.create_state_machine(
        name=ORG_SCAN_MACHINE, definition=WAITING_ORG_SCAN, roleArn=role["Role"]["Arn"]
    )["stateMachineArn"]
    scans = [
        aws_world.sfn.start_execution(stateMachineArn=machine, name=f"org-{n:020x}", input="{}")["executionArn"]
        for n in range(2)
    ]
    monkeypatch.setenv("ORG_SCAN_STATE_MACHINE_ARN", machine)
    mission = aws_world.start_mission("m-of-an-org-scan")

    report = kill_switch_for(aws_world, KillSwitchSettings.from_env()).trigger(reason="drill", requested_by="alice")

    assert report.ok, report.failed_steps
    stop = step_of(report, "stop_org_scans")
    stopped = stop.details["stopped"]
    assert isinstance(stopped, list)
    assert sorted(map(str, stopped)) == sorted(scans)
    assert {aws_world.status(arn) for arn in scans} == {"ABORTED"}
    names = [step.step for step in report.steps]
    assert names.index("stop_org_scans") < names.index("stop_executions")
    wait_until(lambda: aws_world.status(mission) != "RUNNING", what="the mission to end")


def test_stopping_organization_scans_needs_a_state_machine_and_says_when_listing_fails(aws_world: AwsWorld) -> None:
    skipped = aws_steps.stop_org_scans(aws_world.sfn, "", cause="drill")
    assert skipped.ok
    assert "no organization scan" in skipped.reason

    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{ORG_SCAN_MACHINE}"
    failed = aws_steps.stop_org_scans(aws_world.sfn, missing, cause="drill")
    assert not failed.ok
    assert "StateMachineDoesNotExist" in failed.reason


# --------------------------------------------------------------------------------------------------- settings


def test_member_settings_are_checked_when_an_organization_is_configured(
    monkeypatch: pytest.MonkeyPatch, settings: KillSwitchSettings
) -> None:
    monkeypatch.setenv("ORGANIZATION_ID", "o-abcdefghij")
    monkeypatch.setenv("MEMBER_KILLSWITCH_ROLE_NAME", "AegisKillSwitchRole")
    monkeypatch.setenv("MEMBER_REMEDIATION_ROLE_NAME", MEMBER_REMEDIATION_ROLE)
    with pytest.raises(InvalidSettings, match="MEMBER_EXTERNAL_ID is required"):
        KillSwitchSettings.from_env()
    monkeypatch.setenv("MEMBER_EXTERNAL_ID", EXTERNAL_ID)
    configured = KillSwitchSettings.from_env()
    assert configured.organization_enabled
    assert configured.own_account_id == ACCOUNT
    assert configured.member_killswitch_role_arn("210987654321") == (
        "arn:aws:iam::210987654321:role/AegisKillSwitchRole"
    )
    monkeypatch.setenv("ORGANIZATION_ID", "not-an-org")
    with pytest.raises(InvalidSettings, match="ORGANIZATION_ID") as refused:
        KillSwitchSettings.from_env()
    assert "not-an-org" not in str(refused.value)
    monkeypatch.setenv("ORGANIZATION_ID", "o-abcdefghij")
    monkeypatch.setenv("MEMBER_REMEDIATION_ROLE_NAME", "no spaces allowed")
    with pytest.raises(InvalidSettings, match="MEMBER_REMEDIATION_ROLE_NAME"):
        KillSwitchSettings.from_env()


def test_a_members_role_arn_is_in_the_deployments_partition(
    monkeypatch: pytest.MonkeyPatch, settings: KillSwitchSettings
) -> None:
    for name, value in {
        "STATE_MACHINE_ARN": "arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:aegis-mission",
        "ORGANIZATION_ID": "o-abcdefghij",
        "MEMBER_KILLSWITCH_ROLE_NAME": "AegisKillSwitchRole",
        "MEMBER_EXTERNAL_ID": EXTERNAL_ID,
        "MEMBER_REMEDIATION_ROLE_NAME": MEMBER_REMEDIATION_ROLE,
    }.items():
        monkeypatch.setenv(name, value)

    gov = KillSwitchSettings.from_env()

    assert gov.partition == "aws-us-gov"
    assert gov.member_killswitch_role_arn("210987654321") == "arn:aws-us-gov:iam::210987654321:role/AegisKillSwitchRole"
    assert gov.member_role_names == (MEMBER_REMEDIATION_ROLE,)


def test_the_wiring_bounds_every_call_for_a_member(settings: KillSwitchSettings) -> None:
    clients = wiring.build_kill_switch(settings).clients
    for client in (clients.sts, clients.organizations):
        assert client.meta.config.connect_timeout == members.MEMBER_CALL_CONFIG.connect_timeout
        assert client.meta.config.read_timeout == members.MEMBER_CALL_CONFIG.read_timeout


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    yield
    # A member's work still running after its test would reach the next test's moto account.
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("aegis-member")],
        what="the member threads to end",
    )
