"""The local stack at the head of an organization: the organization exists before the functions' environment is
resolved (ORGANIZATION_ID is its id), every reachable member holds member/template.yaml's roles (trusting this
stack's own agent and kill switch roles), an unreachable member holds none, cross-account AssumeRole answers as AWS
does while the stack runs, and stopping the stack restores moto's STS."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from aegis_local.aws.moto_sts import MotoStsFix
from aegis_local.aws.organization import OrganizationSpec
from aegis_local.aws.stack import LOCAL_ACCOUNT_ID, LocalStack

MEMBER_ROLES = {"AegisScanRole", "AegisRemediationRole", "AegisUndoRole", "AegisKillSwitchRole"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(organization=OrganizationSpec(accounts=3, unreachable=1)) as running:
        yield running


def test_without_an_organization_there_is_none_and_stopping_restores_moto() -> None:
    # First in the module: the module's organization stack does not run yet (one stack per process).
    with LocalStack() as plain:
        assert MotoStsFix.installed()
        with pytest.raises(LookupError):
            plain.organization  # noqa: B018 - the property raises
        assert plain.parameters["OrganizationId"] == ""
    assert not MotoStsFix.installed()


def roles_of(stack: LocalStack, account: str) -> set[str]:
    return {r["RoleName"] for r in stack.organization.client(account, "iam").list_roles()["Roles"]}


def test_the_organization_id_reaches_the_parameter_and_the_functions(stack: LocalStack) -> None:
    organization = stack.organization
    assert stack.parameters["OrganizationId"] == organization.organization_id
    for function in ("KillSwitchFunction", "OrgScanFunction"):
        assert stack.function(function).environment["ORGANIZATION_ID"] == organization.organization_id
    listed = {a["Id"] for a in stack.client("organizations").list_accounts()["Accounts"]}
    assert listed == {LOCAL_ACCOUNT_ID, *organization.member_account_ids}


def test_members_hold_the_member_roles_trusting_this_stacks_roles(stack: LocalStack) -> None:
    organization = stack.organization
    agent_arn = stack.resources.attribute("AgentRole", "Arn")
    kill_arn = stack.resources.attribute("KillSwitchRole", "Arn")
    for account in organization.reachable_account_ids:
        assert roles_of(stack, account) >= MEMBER_ROLES
        iam = organization.client(account, "iam")
        for role, principal in (("AegisScanRole", agent_arn), ("AegisKillSwitchRole", kill_arn)):
            document = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
            document = json.loads(document) if isinstance(document, str) else document
            (statement,) = document["Statement"]
            assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == principal
            assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == organization.organization_id
    (unreachable,) = organization.unreachable_account_ids
    assert not roles_of(stack, unreachable) & MEMBER_ROLES


def test_cross_account_assume_role_answers_as_aws_does(stack: LocalStack) -> None:
    organization = stack.organization
    external_id = stack.parameters["MemberExternalId"]
    sts = stack.client("sts")
    reachable = organization.reachable_account_ids[0]
    answer = sts.assume_role(
        RoleArn=f"arn:aws:iam::{reachable}:role/AegisScanRole", RoleSessionName="aegis-scan-x", ExternalId=external_id
    )
    assert answer["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{reachable}:assumed-role/AegisScanRole/")
    (unreachable,) = organization.unreachable_account_ids
    for account, given in ((reachable, "someone-else"), (unreachable, external_id)):
        with pytest.raises(ClientError) as refused:
            sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/AegisScanRole", RoleSessionName="aegis-scan-x", ExternalId=given
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
