"""Organization scans on the local stack: the security account heads a moto Organization whose members run
member/template.yaml's roles; one `aegis.scan` event with `"organization": true` starts the org-scan execution, whose
Distributed Map has the agent scan every account through that account's AegisScanRole, and each account gets a
mission of its own (approval on the emulated phones, the executor in that account's AegisRemediationRole).

- 5 members x 2 regions (with the security account, an ACTIVE account of the organization, scanned with its own
  role): every planned change is applied, in the account it names and nowhere else — each member's seeded groups lose
  their open admin ports and its EBS default encryption is on, in both regions, while an account outside the
  organization seeded the same way is untouched; the leak audit (every table, execution, queue, the org-scan bucket's
  objects, the logs and the report, for every STS credential and token issued) finds nothing;
- a member without the member roles: reported unreachable (AccessDenied), the others complete;
- the kill switch in the middle of the missions: every member's AegisRemediationRole carries AegisHalted and
  AegisDenyOlderSessions, and nothing is applied after the flag;
- a plan whose change names account B, in a mission of account A: the validator refuses it (account-out-of-scope)
  and nothing is applied.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.missions_keys import ACCOUNT_ATTRIBUTE, mission_id_for_event
from aegis.models import Risk
from aegis_local.aws.organization import OrganizationSpec, account_session
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import Console, DemoOptions, stack_arguments
from aegis_local.scenario.driver import ExecutorInterceptor, invoke_kill_switch
from aegis_local.scenario.organization import (
    OrganizationDriver,
    OrgDemoResult,
    applied_by_account,
    run_org_demo,
    seed_organization,
)
from aegis_local.scenario.phone import ApprovalPolicy, EmulatedPhone
from aegis_local.scenario.seed import seed_account
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

CHECKS = ("ec2-admin-port-open-ipv4", "ec2-ebs-default-encryption-off")
OPEN_GROUPS = ("admin-open", "bastion", "injection-tagged", "jwt-tagged")
ADMIN_PORTS = {22, 3389}
OUTSIDE_ACCOUNT = "999988887777"
TIMEOUT = 600.0


def org_stack(
    accounts: int,
    *,
    unreachable: int = 0,
    regions: tuple[str, ...] = ("us-east-1",),
    parameters: dict[str, str] | None = None,
) -> LocalStack:
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True), accounts=accounts, unreachable=unreachable, regions=regions
    )
    arguments = stack_arguments(options)
    arguments["parameters"] = {**arguments["parameters"], **(parameters or {})}
    assert arguments["organization"] == OrganizationSpec(accounts=accounts, unreachable=unreachable)
    return LocalStack(**arguments)


def org_demo(stack: LocalStack, tmp_path: Path, regions: list[str]) -> tuple[OrgDemoResult, str]:
    output = io.StringIO()
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True),
        checks=CHECKS,
        report_dir=tmp_path / "reports",
        timeout_seconds=TIMEOUT,
    )
    result = run_org_demo(stack, options, Console(output), regions=regions)
    return result, output.getvalue()


def open_admin_ingress(ec2: Any, group_id: str) -> set[tuple[int, str]]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return {
        (rule["FromPort"], rule["CidrIpv4"])
        for rule in rules["SecurityGroupRules"]
        if not rule["IsEgress"] and rule.get("CidrIpv4") == "0.0.0.0/0" and rule.get("FromPort") in ADMIN_PORTS
    }


def test_five_accounts_two_regions_every_change_applied_in_its_own_account(tmp_path: Path) -> None:
    regions = ["us-east-1", "eu-west-1"]
    with org_stack(5, regions=tuple(regions)) as stack:
        organization = stack.organization
        outside = {region: seed_account(account_session(OUTSIDE_ACCOUNT, region), region) for region in regions}
        result, output = org_demo(stack, tmp_path, regions)

        assert result.exit_code == 0, output
        assert result.leak_audit.clean
        assert result.leak_audit.places.get(f"bucket {stack.physical_id('OrgScanBucket')}", 0) >= 1
        accounts = [organization.management_account_id, *organization.member_account_ids]
        assert sorted(result.run.missions) == sorted(accounts)
        for account in accounts:
            mission = result.run.missions[account]
            assert mission.status == "completed"
            expected = {
                (check, arn)
                for region in regions
                for check, arn in result.seeded[(account, region)].expected_findings
                if check in CHECKS
            }
            assert len(mission.plan) == len(expected) == 2 * (len(OPEN_GROUPS) + 1)
            assert {change.account_id for change in mission.plan} == {account}
            assert result.applied[account] == len(expected), account
            for region in regions:
                ec2 = organization.client(account, "ec2", region)
                groups = result.seeded[(account, region)].security_groups
                assert all(open_admin_ingress(ec2, groups[name]) == set() for name in OPEN_GROUPS), (account, region)
                assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
        for region, seeded in outside.items():
            ec2 = account_session(OUTSIDE_ACCOUNT, region).client("ec2", region_name=region)
            assert open_admin_ingress(ec2, seeded.security_groups["admin-open"]) == {
                (22, "0.0.0.0/0"),
                (3389, "0.0.0.0/0"),
            }
            assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False

        report = json.loads(result.report_file.read_text())
        assert report == result.report
        assert {line["account_id"] for line in report["accounts"]} == set(accounts)
        assert report["unreachable"] == []
        assert "AKIA" not in result.report_file.read_text()


def test_an_account_without_member_roles_is_unreachable_and_the_others_complete(tmp_path: Path) -> None:
    with org_stack(3, unreachable=1, parameters={"OrgScanExcludeAccounts": "123456789012"}) as stack:
        organization = stack.organization
        (unreachable,) = organization.unreachable_account_ids
        result, output = org_demo(stack, tmp_path, ["us-east-1"])

        assert result.exit_code == 0, output
        assert result.leak_audit.clean
        assert sorted(result.run.missions) == sorted(organization.member_account_ids)
        assert result.run.missions[unreachable].status == "unreachable"
        assert result.report["unreachable"] == [{"account_id": unreachable, "error": "AccessDenied"}]
        for account in organization.reachable_account_ids:
            assert result.run.missions[account].status == "completed"
            assert result.applied[account] == len(OPEN_GROUPS) + 1
        # Nothing at all happened in the unreachable account: its seeded groups are still open.
        seeded = result.seeded[(unreachable, "us-east-1")]
        ec2 = organization.client(unreachable, "ec2")
        assert open_admin_ingress(ec2, seeded.security_groups["admin-open"])
        assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
        assert result.applied[unreachable] == 0
        assert "unreachable" in output


def test_the_kill_switch_halts_every_member_and_nothing_is_applied_after_it(tmp_path: Path) -> None:
    kill_after = 2
    with org_stack(3, parameters={"OrgScanExcludeAccounts": "123456789012"}) as stack:
        organization = stack.organization
        seed_organization(stack, ["us-east-1"], Console(io.StringIO()), management=False)
        approvers = [sub for sub in str(stack.parameters["ApproverSubs"]).split(",") if sub]
        phone = EmulatedPhone(stack.emulator, approvers[0], also=approvers[1:])
        driver = OrganizationDriver(stack, Console(io.StringIO()), phone, timeout_seconds=TIMEOUT)
        # Holds any executor invocation that could be the third application until the kill switch has fired.
        gate = ExecutorInterceptor(kill_after=kill_after)
        runs: list[Any] = []
        with stack.lambdas.intercept("ExecutorFunction", gate):
            detail = {"regions": ["us-east-1"], "checks": list(CHECKS)}
            worker = threading.Thread(target=lambda: runs.append(driver.run(detail)))
            worker.start()
            wait_for(lambda: gate.applied_count() >= kill_after, f"{kill_after} changes applied", timeout=TIMEOUT)
            report = invoke_kill_switch(
                stack.client("lambda"), stack.physical_id("KillSwitchFunction"), "trigger", "e2e", "e2e"
            )
            gate.mark_killed()
            worker.join(TIMEOUT)
        stack.lambdas.wait_idle(timeout=30)

        assert gate.applied_count() == kill_after
        step = next(s for s in report["steps"] if s["step"] == "halt_member_accounts")
        assert step["ok"] is True, step
        for account in organization.member_account_ids:
            iam = organization.client(account, "iam")
            policies = set(iam.list_role_policies(RoleName="AegisRemediationRole")["PolicyNames"])
            assert {"AegisHalted", "AegisDenyOlderSessions"} <= policies, account
        # Every account mission is over: stopped by the kill switch (a stopped execution never resumes the agent),
        # or ended before it; and nothing more was applied than before the flag, in any account.
        (run,) = runs
        assert run.problems == []
        assert sorted(run.missions) == sorted(organization.member_account_ids)
        sfn = stack.client("stepfunctions")
        ended = {
            account: sfn.describe_execution(executionArn=mission.execution_arn)["status"]
            for account, mission in run.missions.items()
            if mission.execution_arn is not None
        }
        assert "RUNNING" not in ended.values()
        assert "ABORTED" in ended.values()
        applied = applied_by_account(stack, run)
        assert sum(applied.values()) == kill_after
        assert gate.applied_count() == kill_after


def test_a_change_retargeted_to_another_account_is_refused_by_the_validator(tmp_path: Path) -> None:
    with org_stack(2, parameters={"OrgScanExcludeAccounts": "123456789012"}) as stack:
        organization = stack.organization
        account_a, account_b = organization.member_account_ids
        for account in (account_a, account_b):
            organization.client(account, "ec2").disable_ebs_encryption_by_default()
        # A mission of account A (as the agent creates it for an organization scan's account)...
        mission_id = mission_id_for_event(f"org-forged/{account_a}")
        missions = stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable"))
        missions.put_item(
            Item={
                "mission_id": mission_id,
                ACCOUNT_ATTRIBUTE: account_a,
                "status": "awaiting_approval",
                "trigger": "organization",
                "regions": ["us-east-1"],
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
            }
        )
        # ...whose plan was forged to name account B's resource.
        forged = EnableEbsDefaultEncryption.propose(
            check_id="ec2-ebs-default-encryption-off",
            resource_arn=f"arn:aws:ec2:us-east-1:{account_b}:ebs-default-encryption",
            before=EbsDefaultEncryption(enabled=False),
            after=EbsDefaultEncryption(enabled=True),
            account_id=account_b,
            region="us-east-1",
            risk=Risk.MEDIUM,
        )
        sfn = stack.client("stepfunctions")
        execution = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn("MissionStateMachine"),
            name=mission_id,
            input=json.dumps({"mission_id": mission_id, "changes": [forged.model_dump(mode="json")]}),
        )["executionArn"]
        status = wait_for(
            lambda: (s := sfn.describe_execution(executionArn=execution)["status"]) != "RUNNING" and s,
            "the forged mission's execution to end",
            timeout=TIMEOUT,
        )
        stack.lambdas.wait_idle(timeout=30)

        assert status == "FAILED"
        audit = stack.session().resource("dynamodb").Table(stack.physical_id("AuditTable"))
        refused = [e for e in read_trail(audit, mission_id) if e.get("action") == "validator.refused"]
        assert refused, "the validator did not record its refusal"
        assert "account-out-of-scope" in json.dumps(refused, default=str)
        assert stack.lambdas.records("ExecutorFunction") == []
        assert stack.lambdas.records("ApprovalFunction") == []
        for account in (account_a, account_b):
            ec2 = organization.client(account, "ec2")
            assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
