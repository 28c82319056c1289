"""`aegis_local.aws.organization`: the organization in moto, member stacks deployed per account (never in the
accounts left unreachable), sessions that act in one member account, and the member parameters the security stack's
values determine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis_local.aws.moto_sts import MotoStsFix
from aegis_local.aws.organization import (
    LocalOrganization,
    MemberTemplateError,
    OrganizationSpec,
    account_session,
    deploy_member_template,
    member_parameter_values,
)
from aegis_local.aws.template import load_template

TEMPLATE = Path(__file__).parent / "member_templates" / "member.yaml"
SECURITY = "123456789012"
ROLES = {"KillSwitchRole": f"arn:aws:iam::{SECURITY}:role/aegis-killswitch", "AgentRole": "arn:aws:iam::1:role/x"}
STACK_PARAMETERS = {
    "MemberExternalId": "aegiscloud",
    "RemediationOidcProviderUrl": "https://provider.aegis.local/",
    "RemediationOidcAudience": "aws-remediation",
    "UndoOidcAudience": "aws-undo",
    "ApproverSubs": ["a", "b"],
}


@pytest.fixture
def organization(aws: boto3.Session) -> Iterator[LocalOrganization]:
    MotoStsFix.install()
    try:
        created = LocalOrganization.create(
            aws, OrganizationSpec(accounts=3, unreachable=1, member_template=TEMPLATE), region="us-east-1"
        )
        parameters = {**STACK_PARAMETERS, "OrganizationId": created.organization_id}
        created.deploy_members(parameters, security_roles=ROLES)
        yield created
    finally:
        MotoStsFix.uninstall()


def role_names(organization: LocalOrganization, account: str) -> set[str]:
    return {r["RoleName"] for r in organization.client(account, "iam").list_roles()["Roles"]}


def test_the_organization_has_the_security_account_as_management_and_its_members(
    organization: LocalOrganization, aws: boto3.Session
) -> None:
    assert organization.management_account_id == SECURITY
    assert organization.organization_id.startswith("o-")
    listed = {a["Id"] for a in aws.client("organizations").list_accounts()["Accounts"]}
    assert listed == {SECURITY, *organization.member_account_ids}
    assert len(set(organization.member_account_ids)) == 3
    assert organization.unreachable_account_ids == {organization.member_account_ids[-1]}


def test_member_roles_exist_in_each_reachable_account_only(organization: LocalOrganization) -> None:
    wanted = {"AegisScanRole", "AegisRemediationRole", "AegisUndoRole", "AegisKillSwitchRole"}
    for account in organization.reachable_account_ids:
        assert wanted <= role_names(organization, account)
        providers = organization.client(account, "iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
        assert [p["Arn"] for p in providers] == [f"arn:aws:iam::{account}:oidc-provider/provider.aegis.local/"]
    (unreachable,) = organization.unreachable_account_ids
    assert not wanted & role_names(organization, unreachable)
    assert not wanted & {r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]}


def test_intrinsics_resolve_per_account(organization: LocalOrganization) -> None:
    account = organization.reachable_account_ids[0]
    iam = organization.client(account, "iam")
    kill = iam.get_role(RoleName="AegisKillSwitchRole")["Role"]["AssumeRolePolicyDocument"]
    kill = json.loads(kill) if isinstance(kill, str) else kill
    statement = kill["Statement"][0]
    assert statement["Principal"]["AWS"] == f"arn:aws:iam::{SECURITY}:role/aegis-killswitch"
    assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == organization.organization_id
    halt = iam.get_role_policy(RoleName="AegisKillSwitchRole", PolicyName="HaltRemediation")["PolicyDocument"]
    halt = json.loads(halt) if isinstance(halt, str) else halt
    assert halt["Statement"][0]["Resource"] == [f"arn:aws:iam::{account}:role/AegisRemediationRole"]
    undo = iam.get_role(RoleName="AegisUndoRole")["Role"]["AssumeRolePolicyDocument"]
    undo = json.loads(undo) if isinstance(undo, str) else undo
    assert undo["Statement"][0]["Principal"]["Federated"].startswith(f"arn:aws:iam::{account}:oidc-provider/")


def test_the_scan_role_is_assumable_with_the_external_id_and_unreachable_accounts_refuse(
    organization: LocalOrganization, aws: boto3.Session
) -> None:
    sts = aws.client("sts")
    for account in organization.reachable_account_ids:
        answer = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/AegisScanRole", RoleSessionName="aegis-scan", ExternalId="aegiscloud"
        )
        assert f":{account}:assumed-role/AegisScanRole/" in answer["AssumedRoleUser"]["Arn"]
    (unreachable,) = organization.unreachable_account_ids
    with pytest.raises(ClientError) as refused:
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{unreachable}:role/AegisScanRole",
            RoleSessionName="aegis-scan",
            ExternalId="aegiscloud",
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_an_account_session_acts_in_its_account_only(aws: boto3.Session) -> None:
    member = account_session("210987654321", "eu-west-1")
    assert member.client("sts").get_caller_identity()["Account"] == "210987654321"
    member.client("s3").create_bucket(
        Bucket="only-in-member", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    assert [b["Name"] for b in member.client("s3").list_buckets()["Buckets"]] == ["only-in-member"]
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("sts").get_caller_identity()["Account"] == SECURITY


def test_member_parameters_come_from_the_security_stack() -> None:
    template = load_template(TEMPLATE)
    values = member_parameter_values(
        template,
        {**STACK_PARAMETERS, "OrganizationId": "o-abcdefghij"},
        security_account_id=SECURITY,
        security_roles=ROLES,
        overrides={"UndoOidcAudience": ""},
    )
    assert values["SecurityAccountId"] == SECURITY
    assert values["SecurityKillSwitchRoleArn"] == ROLES["KillSwitchRole"]
    assert values["OrganizationId"] == "o-abcdefghij"
    assert values["UndoOidcAudience"] == ""
    assert "ApproverSubs" not in values


def test_a_missing_member_parameter_is_a_named_error() -> None:
    with pytest.raises(MemberTemplateError, match="OrganizationId"):
        member_parameter_values(
            load_template(TEMPLATE), STACK_PARAMETERS, security_account_id=SECURITY, security_roles=ROLES
        )


def test_an_unsupported_resource_type_is_a_named_error(aws: boto3.Session) -> None:
    template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}}}}
    with pytest.raises(MemberTemplateError, match="Bucket"):
        deploy_member_template(template, {}, iam=aws.client("iam"), account_id=SECURITY, region="us-east-1")


def test_without_undo_no_undo_role_is_created(aws: boto3.Session) -> None:
    organization = LocalOrganization.create(
        aws,
        OrganizationSpec(accounts=1, member_template=TEMPLATE, member_parameters={"UndoOidcAudience": ""}),
        region="us-east-1",
    )
    organization.deploy_members(
        {**STACK_PARAMETERS, "OrganizationId": organization.organization_id}, security_roles=ROLES
    )
    (account,) = organization.member_account_ids
    assert "AegisUndoRole" not in role_names(organization, account)
    assert "AegisRemediationRole" in role_names(organization, account)


@pytest.mark.parametrize(("accounts", "unreachable"), [(0, 0), (2, 3), (2, -1)])
def test_an_impossible_spec_is_refused(accounts: int, unreachable: int) -> None:
    with pytest.raises(ValueError):
        OrganizationSpec(accounts=accounts, unreachable=unreachable)


def test_the_real_member_template_deploys_and_its_scan_role_answers_as_aws_would(aws: boto3.Session) -> None:
    """member/template.yaml itself, with the parameters the security stack determines: its four roles and the OIDC
    provider in each member; the agent's AssumeRole with the external id succeeds, without it is AccessDenied."""
    MotoStsFix.install()
    try:
        organization = LocalOrganization.create(aws, OrganizationSpec(accounts=2), region="us-east-1")
        organization.deploy_members(
            {
                **STACK_PARAMETERS,
                "RemediationOidcSubjects": ["auth0|a", "auth0|b"],
                "OrganizationId": organization.organization_id,
            },
            security_roles={
                "AgentRole": f"arn:aws:iam::{SECURITY}:role/aegis-agent",
                "KillSwitchRole": f"arn:aws:iam::{SECURITY}:role/aegis-killswitch",
            },
        )
        sts = aws.client("sts")
        for account in organization.member_account_ids:
            assert {"AegisScanRole", "AegisRemediationRole", "AegisUndoRole", "AegisKillSwitchRole"} <= role_names(
                organization, account
            )
            role = f"arn:aws:iam::{account}:role/AegisScanRole"
            sts.assume_role(RoleArn=role, RoleSessionName="aegis-scan-m", ExternalId="aegiscloud")
            with pytest.raises(ClientError) as refused:
                sts.assume_role(RoleArn=role, RoleSessionName="aegis-scan-m", ExternalId="not-ours")
            assert refused.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        MotoStsFix.uninstall()
