"""What AWS itself would allow with the remediation roles, whatever our code asks for: the trust and the permission
policies of RemediationRole and UndoRole, evaluated as IAM does (moto evaluates neither).

The attacker here holds a provider token that leaked from the executor, or a compromised executor: the roles must
refuse a token of anyone but an approver, a forward token must never reach the widening actions undo needs, and
even UndoRole must not attach an AWS-managed policy or stop a trail the catalogue did not create.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.catalogue import Undo, declared_actions, direction_of
from aegis.catalogue.kinds.create_multi_region_trail import TRAIL_NAME_PREFIX
from aegis.checks.base import DEFAULT_TRAIL_NAME
from aegis_executor.credentials import session_policy
from aegis_local.aws.template import TemplateError
from tests.support.changes import ACCOUNT, one_of_each_kind
from tests.support.iam_policy import Request, allows, session_allows
from tests.support.stack import EXAMPLE_PARAMETERS, Stack, build_stack, pristine_template

ROLES = {"forward": "RemediationRole", "undo": "UndoRole"}
PROVIDER_HOST = EXAMPLE_PARAMETERS["RemediationOidcProviderUrl"].removeprefix("https://")
APPROVER = EXAMPLE_PARAMETERS["RemediationOidcSubjects"].split(",")[0]
FORWARD_AUDIENCE = EXAMPLE_PARAMETERS["RemediationOidcAudience"]
UNDO_AUDIENCE = EXAMPLE_PARAMETERS["UndoOidcAudience"]
# Every action that can give access back or switch protection off, and that only undo needs.
WIDENING = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "kms:DisableKeyRotation",
    "ec2:DisableEbsEncryptionByDefault",
    "ec2:DeleteFlowLogs",
    "iam:DeleteAccountPasswordPolicy",
)
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
OWN_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/team-admin"
OTHER_ACCOUNTS_POLICY = "arn:aws:iam::210987654321:policy/team-admin"


def role_documents(stack: Stack, role: str) -> list[dict[str, Any]]:
    return [document for _, document in stack.policy_documents(role)]


def assume(stack: Stack, role: str, *, audience: str, subject: str = APPROVER, provider: str | None = None) -> bool:
    """Whether a web identity token with these claims may assume `role` (its trust policy, evaluated)."""
    federated = provider or stack.ref("RemediationOidcProvider")
    request = Request(
        action="sts:AssumeRoleWithWebIdentity",
        context={f"{PROVIDER_HOST}:aud": audience, f"{PROVIDER_HOST}:sub": subject},
        principal={"Federated": federated},
    )
    return allows([stack.trust_policy(role)], request)


# --- who can assume which role -------------------------------------------------------------------------------------


def test_an_approvers_forward_token_assumes_remediation_role_and_never_undo_role(stack: Stack) -> None:
    assert assume(stack, "RemediationRole", audience=FORWARD_AUDIENCE)
    assert not assume(stack, "UndoRole", audience=FORWARD_AUDIENCE)


def test_only_the_undo_connections_token_assumes_undo_role(stack: Stack) -> None:
    assert assume(stack, "UndoRole", audience=UNDO_AUDIENCE)
    assert not assume(stack, "RemediationRole", audience=UNDO_AUDIENCE)


@pytest.mark.parametrize("role", sorted(ROLES.values()))
def test_a_token_of_anyone_but_an_approver_assumes_neither_role(stack: Stack, role: str) -> None:
    audience = FORWARD_AUDIENCE if role == "RemediationRole" else UNDO_AUDIENCE
    for subject in EXAMPLE_PARAMETERS["RemediationOidcSubjects"].split(","):
        assert assume(stack, role, audience=audience, subject=subject)
    assert not assume(stack, role, audience=audience, subject="auth0|somebody-else")
    assert not assume(stack, role, audience=audience, subject="")
    assert not assume(stack, role, audience="sts.amazonaws.com")
    other_provider = "arn:aws:iam::123456789012:oidc-provider/evil.example.com/"
    assert not assume(stack, role, audience=audience, provider=other_provider)


def test_the_provider_knows_both_audiences_and_trusts_no_generic_one(stack: Stack) -> None:
    assert stack.properties("RemediationOidcProvider")["ClientIdList"] == [FORWARD_AUDIENCE, UNDO_AUDIENCE]
    without_undo = build_stack(UndoTokenVaultConnection="", UndoOidcAudience="")
    assert without_undo.properties("RemediationOidcProvider")["ClientIdList"] == [FORWARD_AUDIENCE]


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"RemediationOidcAudience": "sts.amazonaws.com"}, "RemediationOidcAudience"),
        ({"UndoOidcAudience": ""}, "UndoTokenVaultConnection needs UndoOidcAudience"),
        ({"UndoOidcAudience": FORWARD_AUDIENCE}, "must differ from RemediationOidcAudience"),
        ({"RemediationOidcSubjects": ""}, "RemediationOidcSubjects"),
    ],
)
def test_a_deployment_that_would_blur_the_two_roles_is_refused(overrides: dict[str, str], refusal: str) -> None:
    with pytest.raises(TemplateError, match=refusal):
        build_stack(**overrides)


# --- what each role may do ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", sorted(ROLES))
def test_each_role_grants_exactly_what_the_catalogue_declares_for_its_direction(stack: Stack, direction: str) -> None:
    granted = {g.action for g in stack.grants(ROLES[direction])}
    assert granted == set(declared_actions(direction))


@pytest.mark.parametrize("action", WIDENING)
def test_remediation_role_itself_refuses_every_widening_action(stack: Stack, action: str) -> None:
    """Not only the session policy: a session assumed without one (a compromised executor) can only narrow."""
    for resource in ("*", f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123", f"arn:aws:iam::{ACCOUNT}:role/x"):
        request = Request(action, resource, {"iam:PolicyARN": OWN_POLICY})
        assert not allows(role_documents(stack, "RemediationRole"), request)


@pytest.mark.parametrize("verb", ["Attach", "Detach"])
@pytest.mark.parametrize("entity", ["Role", "User", "Group"])
def test_policies_are_attached_and_detached_only_if_customer_managed_in_this_account(
    stack: Stack, verb: str, entity: str
) -> None:
    role = "UndoRole" if verb == "Attach" else "RemediationRole"
    action = f"iam:{verb}{entity}Policy"
    resource = f"arn:aws:iam::{ACCOUNT}:{entity.lower()}/backdoor"
    documents = role_documents(stack, role)
    assert allows(documents, Request(action, resource, {"iam:PolicyARN": OWN_POLICY}))
    assert not allows(documents, Request(action, resource, {"iam:PolicyARN": ADMINISTRATOR_ACCESS}))
    assert not allows(documents, Request(action, resource, {"iam:PolicyARN": OTHER_ACCOUNTS_POLICY}))
    assert not allows(documents, Request(action, resource))


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        ("UndoRole", ("cloudtrail:StopLogging", "cloudtrail:DeleteTrail")),
        ("RemediationRole", ("cloudtrail:CreateTrail", "cloudtrail:StartLogging")),
    ],
)
def test_cloudtrail_changes_reach_only_the_trails_the_catalogue_creates(
    stack: Stack, role: str, actions: tuple[str, ...]
) -> None:
    assert DEFAULT_TRAIL_NAME.startswith(TRAIL_NAME_PREFIX)
    ours = f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/{DEFAULT_TRAIL_NAME}"
    theirs = f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/organization-trail"
    elsewhere = f"arn:aws:cloudtrail:eu-west-1:210987654321:trail/{DEFAULT_TRAIL_NAME}"
    for action in actions:
        assert allows(role_documents(stack, role), Request(action, ours))
        assert not allows(role_documents(stack, role), Request(action, theirs))
        assert not allows(role_documents(stack, role), Request(action, elsewhere))


def test_pass_role_goes_to_vpc_flow_logs_only(stack: Stack) -> None:
    documents = role_documents(stack, "RemediationRole")
    role = f"arn:aws:iam::{ACCOUNT}:role/flow-logs"
    assert allows(documents, Request("iam:PassRole", role, {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}))
    assert not allows(documents, Request("iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}))
    assert not allows(role_documents(stack, "UndoRole"), Request("iam:PassRole", role))


CHANGES = one_of_each_kind()
ALL_CHANGES = CHANGES + [Undo.of(change) for change in CHANGES]


@pytest.mark.parametrize("change", ALL_CHANGES, ids=lambda c: f"{c.kind}:{getattr(c, 'original', c).kind}")
def test_every_change_is_done_by_its_own_role_and_refused_by_the_other(stack: Stack, change: Any) -> None:
    """Each action a change's session policy allows is allowed by the role of its direction (role and session policy
    together), and the mutating ones are refused by the other role."""
    own = ROLES[direction_of(change)]
    other = ROLES["undo" if own == "RemediationRole" else "forward"]
    policy = json.loads(session_policy(change))
    target = getattr(change, "original", change)
    mutating = target.UNDO_ACTIONS if direction_of(change) == "undo" else target.APPLY_ACTIONS
    for statement in policy["Statement"]:
        context = {
            key: str(value[0] if isinstance(value, list) else value)
            for pairs in (statement.get("Condition") or {}).values()
            for key, value in pairs.items()
        }
        for action in statement["Action"]:
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            ):
                concrete = resource.replace("*", "aegis-x") if "trail/" in resource else resource
                request = Request(action, concrete.replace("*", "x"), {"aws:RequestedRegion": change.region, **context})
                assert session_allows(role_documents(stack, own), policy, request), (own, action, resource)
                if action in mutating and action not in declared_actions("forward" if own == "UndoRole" else "undo"):
                    assert not allows(role_documents(stack, other), request), (other, action)


# --- undo disabled ------------------------------------------------------------------------------------------------


def test_without_an_undo_connection_there_is_no_undo_role_and_executor_and_validator_know() -> None:
    stack = build_stack(UndoTokenVaultConnection="", UndoOidcAudience="")
    assert stack.resource("UndoRole")["Condition"] == "UndoEnabled"
    assert stack.resolver.condition("UndoEnabled") is False
    executor = stack.properties("ExecutorFunction")["Environment"]["Variables"]
    assert executor["UNDO_ROLE_ARN"] == ""
    assert executor["UNDO_TOKEN_VAULT_CONNECTION"] == ""
    assert stack.properties("ValidatorFunction")["Environment"]["Variables"]["UNDO_ENABLED"] == "false"
    assert pristine_template()["Outputs"]["UndoRoleArn"]["Condition"] == "UndoEnabled"


def test_with_an_undo_connection_the_executor_gets_undo_role_and_the_validator_allows_undo(stack: Stack) -> None:
    assert stack.properties("ValidatorFunction")["Environment"]["Variables"]["UNDO_ENABLED"] == "true"
    executor = stack.properties("ExecutorFunction")["Environment"]["Variables"]
    assert executor["UNDO_ROLE_ARN"] == stack.arn("UndoRole")
    assert executor["UNDO_TOKEN_VAULT_CONNECTION"] == EXAMPLE_PARAMETERS["UndoTokenVaultConnection"]
    assert executor["REMEDIATION_ROLE_ARN"] == stack.arn("RemediationRole")
