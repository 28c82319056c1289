"""The matrix on template.yaml: every check of iam_matrix.py on the template as it is, for each role it concerns, and
what each trust domain's role must be able to do."""

from __future__ import annotations

import pytest

from tests.support.iam_policy import Request, allows
from tests.support.stack import EXECUTIONS, UNSCOPED, Stack, build_stack, pristine_template
from tests.unit.template.iam_matrix import (
    ALL_ROLES,
    FUNCTION_ROLES,
    HANDOFF_INDEX,
    KILLSWITCH_CODE,
    KILLSWITCH_SERVICES,
    KMS_CRYPTO_ACTIONS,
    MAY_WRITE,
    MEMBER_ROLE_ASSUMED_BY,
    ORG_SCAN_EXECUTIONS,
    OWN_SECRET,
    REMEDIATION_ROLES,
    SECRET_PARAMETERS,
    STATE_MACHINE_ROLES,
    agent_credential_reach,
    audit_index_problems,
    called_operations,
    catalogue_actions_outside_remediation,
    credential_readers,
    handoff_access_problems,
    key_policy_problems,
    kill_switch_calls_not_granted,
    member_assume_problems,
    mission_ended_rule_problems,
    ops_reach,
    org_scan_reach,
    org_scan_state_machine_reach,
    remediation_role_problems,
    role_statement,
    through_dynamodb,
    unjustified_wildcards,
    unknown_actions,
    validator_reach,
    web_identity_trust_problems,
    writes_beyond_domain,
)


@pytest.mark.parametrize("role", list(MAY_WRITE))
def test_each_role_writes_only_its_own_state(stack: Stack, role: str) -> None:
    assert writes_beyond_domain(stack, role) == []


def test_agent_cannot_reach_a_credential_the_handoff_table_or_a_decision(stack: Stack) -> None:
    assert agent_credential_reach(stack) == []


def test_validator_reads_only_change_records_and_appends_only_its_verdicts(stack: Stack) -> None:
    assert validator_reach(stack) == []
    assert audit_index_problems(stack) == []


def test_the_ops_api_reads_only_and_requests_only_scans_and_undos(stack: Stack) -> None:
    assert ops_reach(stack) == []


def test_the_hand_off_tables_grant_exactly_seal_consume_and_purge(stack: Stack) -> None:
    assert handoff_access_problems(stack) == []


def test_every_ended_mission_execution_reaches_the_purge(stack: Stack) -> None:
    assert mission_ended_rule_problems(stack) == []


def test_the_kill_switch_halts_undo_role_exactly_as_remediation_role(stack: Stack) -> None:
    def iam_grants(on: Stack, role: str) -> set[str]:
        return {g.action for g in on.grants("KillSwitchRole") if g.resource == role}

    assert iam_grants(stack, "UndoRole") == iam_grants(stack, "RemediationRole") != set()
    environment = stack.function_environment("KillSwitchFunction")
    assert environment["REMEDIATION_ROLE_NAME"] == stack.ref("RemediationRole")
    assert environment["UNDO_ROLE_NAME"] == stack.ref("UndoRole")
    # Without an undo connection there is no UndoRole: nothing to halt, and the setting says so.
    without_undo = build_stack(UndoTokenVaultConnection="", UndoOidcAudience="")
    assert without_undo.resolver.condition("UndoEnabled") is False
    assert without_undo.function_environment("KillSwitchFunction")["UNDO_ROLE_NAME"] == ""
    assert iam_grants(without_undo, "RemediationRole") == iam_grants(stack, "RemediationRole")
    assert {g.resource for g in without_undo.grants("KillSwitchRole") if g.service == "iam"} == {"RemediationRole"}


def test_each_credential_side_role_reads_exactly_its_own_auth0_secret(stack: Stack) -> None:
    assert len({stack.parameters[parameter] for parameter in SECRET_PARAMETERS}) == len(SECRET_PARAMETERS)
    assert credential_readers(stack) == []
    readers = {g.role for role in ALL_ROLES for g in stack.grants(role) if g.service == "secretsmanager"}
    assert readers == set(OWN_SECRET)


@pytest.mark.parametrize("role", FUNCTION_ROLES)
def test_only_remediation_role_holds_remediation_actions(stack: Stack, role: str) -> None:
    assert catalogue_actions_outside_remediation(stack, role) == []


@pytest.mark.parametrize("role", ALL_ROLES)
def test_wildcards_only_where_listed_with_a_reason(stack: Stack, role: str) -> None:
    assert unjustified_wildcards(stack, role) == []


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_granted_action_exists_in_iam(stack: Stack, role: str) -> None:
    assert unknown_actions(stack, role) == []


@pytest.mark.parametrize("role", sorted(REMEDIATION_ROLES))
def test_remediation_roles_grant_exactly_their_catalogue_direction_and_trust_only_approvers(
    stack: Stack, role: str
) -> None:
    assert remediation_role_problems(stack, role) == []


def test_remediation_role_trusts_an_existing_provider_when_one_is_given() -> None:
    existing = "arn:aws:iam::123456789012:oidc-provider/aegis-demo.eu.auth0.com/"
    stack = build_stack(ExistingRemediationOidcProviderArn=existing)
    assert web_identity_trust_problems(stack) == []
    assert web_identity_trust_problems(stack, "UndoRole") == []
    assert stack.resolver.condition("CreateRemediationOidcProvider") is False
    assert stack.trust_policy("RemediationRole")["Statement"][0]["Principal"] == {"Federated": existing}


def test_the_created_oidc_provider_accepts_exactly_the_remediation_audience(stack: Stack) -> None:
    provider = stack.properties("RemediationOidcProvider")
    assert provider["Url"] == stack.parameters["RemediationOidcProviderUrl"]
    assert provider["ClientIdList"] == [
        stack.parameters["RemediationOidcAudience"],
        stack.parameters["UndoOidcAudience"],
    ]
    assert "ThumbprintList" not in provider  # empty parameter -> AWS::NoValue
    with_thumbprint = build_stack(RemediationOidcThumbprint="a" * 40)
    assert with_thumbprint.properties("RemediationOidcProvider")["ThumbprintList"] == ["a" * 40]


def test_handoff_key_lets_only_approval_seal_and_only_executor_open(stack: Stack) -> None:
    assert key_policy_problems(stack) == []


def test_no_role_gets_kms_from_iam_but_table_keys_through_dynamodb(stack: Stack) -> None:
    """KMS use of the handoff key comes from its key policy only; an IAM grant would bypass that proof. The only
    KMS grants in IAM are the tables' keys, usable only by DynamoDB on the role's behalf (test_table_and_log_keys.py
    proves who holds which)."""
    assert [
        g
        for role in ALL_ROLES
        for g in stack.grants(role)
        if g.action in KMS_CRYPTO_ACTIONS and not through_dynamodb(stack, g)
    ] == []


def test_function_roles_are_assumable_only_by_lambda_and_the_state_machine_role_only_by_step_functions(
    stack: Stack,
) -> None:
    for role in FUNCTION_ROLES:
        statements = stack.trust_policy(role)["Statement"]
        assert [(s["Effect"], s["Principal"], s["Action"]) for s in statements] == [
            ("Allow", {"Service": "lambda.amazonaws.com"}, "sts:AssumeRole")
        ], role
    for role in STATE_MACHINE_ROLES:
        (statement,) = stack.trust_policy(role)["Statement"]
        assert statement["Principal"] == {"Service": "states.amazonaws.com"}, role
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}, role


def test_every_permission_is_in_a_role_the_matrix_reads(stack: Stack) -> None:
    """No managed policies, SAM policy templates or separate policy resources that would escape the matrix."""
    roles = stack.resources_of_type("AWS::IAM::Role")
    assert set(roles) == set(ALL_ROLES)
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"):
        assert stack.resources_of_type(kind) == {}, kind
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], name
    for name, function in stack.resources_of_type("AWS::Serverless::Function").items():
        assert "Policies" not in function["Properties"], name
        assert "Role" in function["Properties"], name


def test_kill_switch_can_do_each_step_of_a_halt(stack: Stack) -> None:
    granted = {(g.action, g.resource) for g in stack.grants("KillSwitchRole")}
    assert {
        ("dynamodb:PutItem", "ControlTable"),
        ("events:DisableRule", "ScheduledScanRule"),
        ("events:DisableRule", "ScanRequestRule"),
        ("events:DisableRule", "UndoRequestRule"),
        ("states:ListExecutions", "MissionStateMachine"),
        ("states:GetExecutionHistory", EXECUTIONS),
        ("states:StopExecution", EXECUTIONS),
        ("states:SendTaskFailure", UNSCOPED),
        # AegisHalted and AegisDenyOlderSessions on both remediation roles: attached on trigger (the cutoff read
        # back first), AegisHalted deleted on re-arm.
        *(
            (f"iam:{verb}RolePolicy", role)
            for verb in ("Put", "Get", "Delete")
            for role in ("RemediationRole", "UndoRole")
        ),
        # Every unconsumed handoff: found through the keys-only index, deleted without being read.
        ("dynamodb:Scan", HANDOFF_INDEX),
        ("dynamodb:Query", HANDOFF_INDEX),
        ("dynamodb:BatchWriteItem", "HandoffTable"),
        ("secretsmanager:GetSecretValue", f"external:{stack.parameters['KillSwitchAuth0ClientSecretArn']}"),
    } <= granted


def test_kill_switch_role_grants_every_call_its_code_makes(stack: Stack) -> None:
    operations = called_operations(sorted(KILLSWITCH_CODE.glob("*.py")), KILLSWITCH_SERVICES)
    assert {("iam", "PutRolePolicy"), ("iam", "DeleteRolePolicy"), ("stepfunctions", "StopExecution")} <= operations
    assert {("organizations", "ListAccounts"), ("sts", "AssumeRole")} <= operations
    assert kill_switch_calls_not_granted(stack) == []


def test_a_call_the_kill_switch_makes_but_its_role_lacks_is_caught() -> None:
    template = pristine_template()
    role_statement(template, "KillSwitchRole", "RevokeRemediationSessions")["Action"].remove("iam:DeleteRolePolicy")
    assert kill_switch_calls_not_granted(build_stack(template)) == [
        "the kill switch calls iam:DeleteRolePolicy, which KillSwitchRole does not grant on RemediationRole",
        "the kill switch calls iam:DeleteRolePolicy, which KillSwitchRole does not grant on UndoRole",
    ]


def test_each_half_can_do_its_own_job(stack: Stack) -> None:
    approval_secret = f"external:{stack.parameters['ApprovalAuth0ClientSecretArn']}"
    executor_secret = f"external:{stack.parameters['ExecutorAuth0ClientSecretArn']}"

    def can(role: str) -> set[tuple[str, str]]:
        return {(g.action, g.resource) for g in stack.grants(role)}

    assert {
        ("states:StartExecution", "MissionStateMachine"),
        ("dynamodb:PutItem", "CheckpointsTable"),
        ("dynamodb:Query", "CheckpointsTable"),
        ("dynamodb:GetItem", "ControlTable"),
        ("ec2:DescribeSecurityGroupRules", UNSCOPED),
    } <= can("AgentRole")
    assert {
        ("secretsmanager:GetSecretValue", approval_secret),
        ("dynamodb:PutItem", "HandoffTable"),
        ("states:SendTaskSuccess", UNSCOPED),
        ("lambda:InvokeFunction", "ApprovalFunction"),
    } <= can("ApprovalRole")
    assert {
        ("secretsmanager:GetSecretValue", executor_secret),
        ("dynamodb:DeleteItem", "HandoffTable"),
        ("dynamodb:PutItem", "IdempotencyTable"),
    } <= can("ExecutorRole")


# --- the organization -------------------------------------------------------------------------------------------------

ORGANIZATION = "o-a1b2c3d4e5"
OTHER_ORGANIZATION = "o-z9y8x7w6v5"
MEMBER = "210987654321"


def test_the_only_sts_grants_beyond_the_credential_side_assume_member_roles_inside_the_organization(
    stack: Stack,
) -> None:
    """An explicit, narrow allowance: the agent stays unable to mutate anything or to read a secret, because the
    only role it can assume is a member's AegisScanRole, which member/template.yaml makes read-only
    (tests/unit/member); the kill switch reaches only members' AegisKillSwitchRole."""
    assert member_assume_problems(stack) == []
    assert member_assume_problems(build_stack(OrganizationId=ORGANIZATION)) == []


@pytest.mark.parametrize(
    ("role", "member_role"), [("AgentRole", "AegisScanRole"), ("KillSwitchRole", "AegisKillSwitchRole")]
)
def test_each_role_assumes_its_member_role_only_in_the_organization(role: str, member_role: str) -> None:
    stack = build_stack(OrganizationId=ORGANIZATION)
    documents = [document for _, document in stack.policy_documents(role)]

    def may_assume(name: str, organization: str | None) -> bool:
        context = {"aws:ResourceOrgID": organization} if organization else {}
        return allows(documents, Request("sts:AssumeRole", f"arn:aws:iam::{MEMBER}:role/{name}", context))

    assert may_assume(member_role, ORGANIZATION)
    assert not may_assume(member_role, OTHER_ORGANIZATION)
    assert not may_assume(member_role, None)
    for other in ("AegisRemediationRole", "AegisUndoRole", "OrganizationAccountAccessRole"):
        assert not may_assume(other, ORGANIZATION), other
    assert MEMBER_ROLE_ASSUMED_BY[role].endswith(f"role/{member_role}")
    for action in ("sts:AssumeRoleWithWebIdentity", "sts:GetSessionToken", "sts:GetFederationToken"):
        assert not allows(documents, Request(action, "*", {"aws:ResourceOrgID": ORGANIZATION})), action


@pytest.mark.parametrize("role", ["AgentRole", "KillSwitchRole"])
def test_without_an_organization_no_member_role_can_be_assumed(stack: Stack, role: str) -> None:
    assert stack.parameters["OrganizationId"] == ""
    documents = [document for _, document in stack.policy_documents(role)]
    for name in ("AegisScanRole", "AegisKillSwitchRole"):
        request = Request("sts:AssumeRole", f"arn:aws:iam::{MEMBER}:role/{name}", {"aws:ResourceOrgID": ORGANIZATION})
        assert not allows(documents, request)


def test_the_kill_switch_lists_the_members_and_stops_organization_scans(stack: Stack) -> None:
    granted = {(g.action, g.resource) for g in stack.grants("KillSwitchRole")}
    assert {
        ("organizations:ListAccounts", UNSCOPED),
        ("states:StopExecution", f"external:{ORG_SCAN_EXECUTIONS}"),
        ("states:DescribeExecution", f"external:{ORG_SCAN_EXECUTIONS}"),
        ("states:ListExecutions", "OrgScanStateMachine"),
    } <= granted


def test_the_organization_scan_lists_accounts_and_records_only_its_own_items(stack: Stack) -> None:
    assert org_scan_reach(stack) == []


def test_the_organization_scan_writes_only_org_items_of_the_missions_table(stack: Stack) -> None:
    documents = [document for _, document in stack.policy_documents("OrgScanRole")]
    table = stack.arn("MissionsTable")
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert allows(documents, Request(action, table, {"dynamodb:LeadingKeys": ["org#org-0123456789abcdef0123"]}))
        assert not allows(documents, Request(action, table, {"dynamodb:LeadingKeys": ["m-0123456789abcdef0123"]}))


def test_the_organization_scan_state_machine_invokes_only_its_function_and_the_scan(stack: Stack) -> None:
    assert org_scan_state_machine_reach(stack) == []


def test_the_validator_reads_the_missions_account_and_ops_the_organization_scan_index(stack: Stack) -> None:
    assert ("dynamodb:GetItem", "MissionsTable") in {(g.action, g.resource) for g in stack.grants("ValidatorRole")}
    assert ("dynamodb:Query", "MissionsTable/index/ByOrgScan") in {
        (g.action, g.resource) for g in stack.grants("OpsRole")
    }
    # Reads only: neither writes a mission.
    for role in ("ValidatorRole", "OpsRole"):
        assert not {g.action for g in stack.grants(role) if g.resource == "MissionsTable"} - {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
        }, role
