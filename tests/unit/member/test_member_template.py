"""member/template.yaml, the StackSet every member account runs: what AWS would allow with each of its roles, and
that they are the security account's roles' counterparts (the same reads, the same remediation actions, the kill
switch's halt and nothing else). The policies are evaluated as IAM does (tests.support.iam_policy)."""

from __future__ import annotations

import pytest

from aegis_local.aws.template import TemplateError
from tests.support.iam_policy import Request, allows
from tests.support.stack import Stack
from tests.unit.member.member_matrix import (
    HALT_ACTIONS,
    KILL_SWITCH_ROLE,
    MIRRORED,
    REMEDIATION_ROLE,
    SCAN_ROLE,
    UNDO_ROLE,
    credential_reach,
    exists,
    inventory_reads,
    kill_switch_role_problems,
    mirrored_remediation_problems,
    resource_problems,
    scan_role_problems,
    security_caller_trust_problems,
)
from tests.unit.member.member_stack import (
    MEMBER_ACCOUNT,
    ORGANIZATION,
    SECURITY_ACCOUNT,
    MemberStack,
    build_member_stack,
    pristine_member_template,
    security_stack,
)
from tests.unit.template.iam_matrix import MEMBER_ROLE_ASSUMED_BY

PROVIDER_HOST = "aegis-demo.eu.auth0.com/"
APPROVER = "auth0|approver-1"
SECURITY_ROOT = f"arn:aws:iam::{SECURITY_ACCOUNT}:root"


@pytest.fixture(scope="module")
def member() -> MemberStack:
    return build_member_stack()


@pytest.fixture(scope="module")
def security() -> Stack:
    return security_stack()


def documents(member: MemberStack, role: str) -> list[dict]:
    return [document for _, document in member.policy_documents(role)]


def may_assume(
    member: MemberStack,
    role: str,
    *,
    principal_arn: str,
    organization: str | None = ORGANIZATION,
    external_id: str | None = "aegiscloud",
    account: str = SECURITY_ACCOUNT,
) -> bool:
    """Whether a session of `principal_arn` (a role of `account`) may AssumeRole into `role` (its trust, evaluated)."""
    context = {"aws:PrincipalArn": principal_arn}
    if organization is not None:
        context["aws:PrincipalOrgID"] = organization
    if external_id is not None:
        context["sts:ExternalId"] = external_id
    request = Request("sts:AssumeRole", context=context, principal={"AWS": f"arn:aws:iam::{account}:root"})
    return allows([member.trust_policy(role)], request)


# --- the stack as a whole --------------------------------------------------------------------------------------------


def test_the_member_stack_holds_the_four_roles_under_their_fixed_names(member: MemberStack) -> None:
    assert resource_problems(member) == []


def test_the_security_stack_calls_the_member_roles_by_these_names(security: Stack) -> None:
    names = {
        "MEMBER_SCAN_ROLE_NAME": SCAN_ROLE,
        "MEMBER_REMEDIATION_ROLE_NAME": REMEDIATION_ROLE,
        "MEMBER_UNDO_ROLE_NAME": UNDO_ROLE,
        "MEMBER_KILLSWITCH_ROLE_NAME": KILL_SWITCH_ROLE,
    }
    for function in ("AgentScanFunction", "ExecutorFunction", "KillSwitchFunction"):
        environment = security.function_environment(function)
        for variable in set(names) & set(environment):
            assert environment[variable] == names[variable], (function, variable)
    assert {
        "AgentRole": f"arn:aws:iam::*:role/{SCAN_ROLE}",
        "KillSwitchRole": f"arn:aws:iam::*:role/{KILL_SWITCH_ROLE}",
    } == MEMBER_ROLE_ASSUMED_BY


def test_nothing_in_a_member_grants_sts_or_a_secret(member: MemberStack) -> None:
    assert credential_reach(member) == []


def test_the_parameters_shared_with_the_security_stack_accept_the_same_values(security: Stack) -> None:
    """The operator passes the security stack's values: a value one template accepts, the other must accept."""
    mine = pristine_member_template()["Parameters"]
    theirs = security.template["Parameters"]
    shared = set(mine) & set(theirs)
    assert {"OrganizationId", "MemberExternalId", "RemediationOidcProviderUrl", "RemediationOidcAudience"} <= shared
    for name in shared - {"OrganizationId"}:
        for key in ("AllowedPattern", "MinLength", "Default", "Type"):
            assert mine[name].get(key) == theirs[name].get(key), (name, key)
    # The security stack may leave OrganizationId empty (no organization); a member stack always has one.
    assert mine["OrganizationId"]["AllowedPattern"] == theirs["OrganizationId"]["AllowedPattern"].replace(
        "^(o-[a-z0-9]{10,32})?$", "^o-[a-z0-9]{10,32}$"
    )


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"SecurityAccountId": "12345"}, "SecurityAccountId"),
        ({"OrganizationId": ""}, "OrganizationId"),
        ({"SecurityAgentRoleArn": "aegis-AgentRole"}, "SecurityAgentRoleArn"),
        ({"SecurityKillSwitchRoleArn": "*"}, "SecurityKillSwitchRoleArn"),
        ({"RemediationOidcAudience": "sts.amazonaws.com"}, "RemediationOidcAudience"),
        ({"UndoOidcAudience": "aegis-remediation"}, "must differ from RemediationOidcAudience"),
        ({"RemediationOidcSubjects": ""}, "RemediationOidcSubjects"),
    ],
)
def test_a_member_deployment_that_would_blur_a_trust_is_refused(overrides: dict[str, str], refusal: str) -> None:
    with pytest.raises(TemplateError, match=refusal):
        build_member_stack(**overrides)


# --- AegisScanRole ---------------------------------------------------------------------------------------------------


def test_the_scan_role_reads_exactly_what_the_agent_reads_in_its_own_account(
    member: MemberStack, security: Stack
) -> None:
    assert scan_role_problems(member, security) == []
    assert {g.action for g in member.grants(SCAN_ROLE)} == inventory_reads(security)


@pytest.mark.parametrize(
    "action",
    ["ec2:RevokeSecurityGroupIngress", "iam:PutRolePolicy", "s3:PutBucketPolicy", "kms:Decrypt", "sts:AssumeRole"],
)
def test_the_scan_role_itself_refuses_every_write_decrypt_and_assume(member: MemberStack, action: str) -> None:
    assert not allows(documents(member, SCAN_ROLE), Request(action, "*"))


def test_only_the_security_agent_role_assumes_the_scan_role_in_the_organization_with_the_external_id(
    member: MemberStack, security: Stack
) -> None:
    assert security_caller_trust_problems(member, SCAN_ROLE) == []
    agent = security.arn("AgentRole")
    assert may_assume(member, SCAN_ROLE, principal_arn=agent)
    for other in ("KillSwitchRole", "ExecutorRole", "OpsRole", "OrgScanRole"):
        assert not may_assume(member, SCAN_ROLE, principal_arn=security.arn(other)), other
    assert not may_assume(member, SCAN_ROLE, principal_arn=agent, external_id="guessed")
    assert not may_assume(member, SCAN_ROLE, principal_arn=agent, external_id=None)
    assert not may_assume(member, SCAN_ROLE, principal_arn=agent, organization="o-z9y8x7w6v5")
    assert not may_assume(member, SCAN_ROLE, principal_arn=agent, organization=None)
    # The same role name in another account is another principal.
    elsewhere = agent.replace(SECURITY_ACCOUNT, "333333333333")
    assert not may_assume(member, SCAN_ROLE, principal_arn=elsewhere, account="333333333333")


# --- AegisRemediationRole and AegisUndoRole --------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(MIRRORED))
def test_each_remediation_role_is_its_security_counterpart_in_this_account(
    member: MemberStack, security: Stack, role: str
) -> None:
    assert mirrored_remediation_problems(member, security, role) == []


@pytest.mark.parametrize("role", sorted(MIRRORED))
def test_the_member_and_security_remediation_roles_grant_the_same_actions(
    member: MemberStack, security: Stack, role: str
) -> None:
    counterpart, _ = MIRRORED[role]
    assert {g.action for g in member.grants(role)} == {g.action for g in security.grants(counterpart)}


def _web_identity(member: MemberStack, role: str, *, audience: str, subject: str = APPROVER) -> bool:
    request = Request(
        "sts:AssumeRoleWithWebIdentity",
        context={f"{PROVIDER_HOST}:aud": audience, f"{PROVIDER_HOST}:sub": subject},
        principal={"Federated": member.ref("RemediationOidcProvider")},
    )
    return allows([member.trust_policy(role)], request)


def test_only_an_approvers_token_of_the_roles_own_audience_assumes_it(member: MemberStack) -> None:
    assert _web_identity(member, REMEDIATION_ROLE, audience="aegis-remediation")
    assert not _web_identity(member, UNDO_ROLE, audience="aegis-remediation")
    assert _web_identity(member, UNDO_ROLE, audience="aegis-undo")
    assert not _web_identity(member, REMEDIATION_ROLE, audience="aegis-undo")
    for role, audience in ((REMEDIATION_ROLE, "aegis-remediation"), (UNDO_ROLE, "aegis-undo")):
        assert not _web_identity(member, role, audience=audience, subject="auth0|somebody-else")
    # The member's own provider: the security account's provider is not this account's.
    assert member.ref("RemediationOidcProvider") == f"arn:aws:iam::{MEMBER_ACCOUNT}:oidc-provider/{PROVIDER_HOST}"


def test_policies_and_trails_are_this_members_own(member: MemberStack) -> None:
    own_policy = f"arn:aws:iam::{MEMBER_ACCOUNT}:policy/team-admin"
    security_policy = f"arn:aws:iam::{SECURITY_ACCOUNT}:policy/team-admin"
    role = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/x"
    undo = documents(member, UNDO_ROLE)
    assert allows(undo, Request("iam:AttachRolePolicy", role, {"iam:PolicyARN": own_policy}))
    assert not allows(undo, Request("iam:AttachRolePolicy", role, {"iam:PolicyARN": security_policy}))
    assert not allows(
        undo, Request("iam:AttachRolePolicy", role, {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"})
    )
    own_trail = f"arn:aws:cloudtrail:eu-west-1:{MEMBER_ACCOUNT}:trail/aegis-trail"
    assert allows(undo, Request("cloudtrail:StopLogging", own_trail))
    assert not allows(undo, Request("cloudtrail:StopLogging", own_trail.replace(MEMBER_ACCOUNT, SECURITY_ACCOUNT)))


def test_without_undo_there_is_no_undo_role_and_nothing_to_halt_on_it() -> None:
    member = build_member_stack(UndoOidcAudience="")
    assert not exists(member, UNDO_ROLE)
    assert member.properties("RemediationOidcProvider")["ClientIdList"] == ["aegis-remediation"]
    assert {g.resource for g in member.grants(KILL_SWITCH_ROLE)} == {REMEDIATION_ROLE}
    assert kill_switch_role_problems(member) == []
    assert member.template["Outputs"]["UndoRoleArn"]["Condition"] == "UndoEnabled"


def test_an_existing_provider_of_the_member_account_is_trusted_instead(security: Stack) -> None:
    member = build_member_stack(UseExistingRemediationOidcProvider="true")
    assert not exists(member, "RemediationOidcProvider")
    expected = f"arn:aws:iam::{MEMBER_ACCOUNT}:oidc-provider/{PROVIDER_HOST}"
    for role in MIRRORED:
        assert member.trust_policy(role)["Statement"][0]["Principal"] == {"Federated": expected}
        assert mirrored_remediation_problems(member, security, role) == []


def test_the_provider_thumbprint_is_optional() -> None:
    assert "ThumbprintList" not in build_member_stack().properties("RemediationOidcProvider")
    with_thumbprint = build_member_stack(RemediationOidcThumbprint="a" * 40)
    assert with_thumbprint.properties("RemediationOidcProvider")["ThumbprintList"] == ["a" * 40]


# --- AegisKillSwitchRole ---------------------------------------------------------------------------------------------


def test_the_kill_switch_role_only_puts_reads_and_deletes_the_halt_policies(member: MemberStack) -> None:
    assert kill_switch_role_problems(member) == []
    reach = documents(member, KILL_SWITCH_ROLE)
    for role in (REMEDIATION_ROLE, UNDO_ROLE):
        arn = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{role}"
        for action in HALT_ACTIONS:
            assert allows(reach, Request(action, arn)), (action, role)
        for action in ("iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole", "iam:PassRole"):
            assert not allows(reach, Request(action, arn)), (action, role)
    # Never its own policies, nor the scan role's: it cannot widen itself or anything else.
    for role in (KILL_SWITCH_ROLE, SCAN_ROLE, "OrganizationAccountAccessRole"):
        assert not allows(reach, Request("iam:PutRolePolicy", f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{role}")), role


def test_only_the_security_kill_switch_assumes_the_kill_switch_role(member: MemberStack, security: Stack) -> None:
    assert security_caller_trust_problems(member, KILL_SWITCH_ROLE) == []
    kill_switch = security.arn("KillSwitchRole")
    assert may_assume(member, KILL_SWITCH_ROLE, principal_arn=kill_switch)
    assert not may_assume(member, KILL_SWITCH_ROLE, principal_arn=security.arn("AgentRole"))
    assert not may_assume(member, KILL_SWITCH_ROLE, principal_arn=kill_switch, external_id="guessed")
    assert not may_assume(member, KILL_SWITCH_ROLE, principal_arn=kill_switch, organization="o-z9y8x7w6v5")
    assert not allows([member.trust_policy(KILL_SWITCH_ROLE)], Request("sts:AssumeRole", principal={"AWS": "*"}))


def test_the_security_stack_outputs_the_role_arns_the_member_stack_trusts(security: Stack) -> None:
    """The StackSet's SecurityAgentRoleArn and SecurityKillSwitchRoleArn come from these outputs (the roles' names
    are CloudFormation's, so an operator reads them there)."""
    outputs = security.template["Outputs"]
    for output, role in (("AgentRoleArn", "AgentRole"), ("KillSwitchRoleArn", "KillSwitchRole")):
        assert output in outputs, f"template.yaml has no output {output}"
        assert security.resolver.resolve(outputs[output]["Value"]) == security.arn(role)
