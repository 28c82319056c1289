"""The local stack's AWS Organization: the security account as management account, N member accounts, and in each
member what `member/template.yaml` deploys there (the StackSet of an organization's deployment).

- `LocalOrganization.create(session, spec)` creates the organization in moto (`CreateOrganization` from the
  security account, 123456789012) and one `CreateAccount` per member. The stack passes the organization's id as
  its `OrganizationId` parameter, before the functions' environment is resolved.
- `deploy_members(stack_parameters)` creates member/template.yaml's resources in every member account except those
  the spec leaves without them (`unreachable`: AssumeRole into their roles is refused, as on AWS — see
  `aegis_local.aws.moto_sts`). The template's intrinsics are resolved by the local template engine with the member
  parameters the security stack's own values determine (`member_parameter_values`); the supported resource types
  are IAM's (roles, their inline and managed policies, the OIDC provider): a member stack holds nothing else.
- `session(account_id)` is a boto3 session that acts in a member account, for setup code (seeding, assertions).
  Its requests carry moto's `x-moto-account-id` header (a botocore `before-sign` hook), not credentials from an
  AssumeRole: the STS fix refuses setup code's AssumeRole as it refuses anyone's the trust does not name.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from aegis_local.aws.template import Resolver, TemplateError, load_template, parameter_values

__all__ = [
    "ACCOUNT_HEADER",
    "DEFAULT_MEMBER_STACK_NAME",
    "LocalOrganization",
    "MemberDeployment",
    "MemberTemplateError",
    "OrganizationSpec",
    "account_session",
    "default_member_template_path",
    "member_parameter_values",
]

ACCOUNT_HEADER = "x-moto-account-id"
DEFAULT_MEMBER_STACK_NAME = "aegis-member"
MEMBER_EMAIL_DOMAIN = "aegis.local"
# `SecurityAgentRoleArn` <- the security stack's AgentRole's ARN, and so on.
_SECURITY_ROLE_PARAMETER = re.compile(r"Security([A-Za-z0-9]+)Arn")
SUPPORTED_TYPES = (
    "AWS::IAM::OIDCProvider",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::RolePolicy",
)


class MemberTemplateError(ValueError):
    """member/template.yaml holds something the local organization cannot deploy, or lacks a parameter value."""


def default_member_template_path() -> Path:
    """`member/template.yaml` of the checkout this package is installed from."""
    return Path(__file__).resolve().parents[3] / "member" / "template.yaml"


@dataclass(frozen=True)
class OrganizationSpec:
    """What organization the local stack runs in: `accounts` members, the last `unreachable` of which get no member
    stack (their roles do not exist), and the member template's parameter overrides."""

    accounts: int
    unreachable: int = 0
    member_template: Path | None = None
    member_parameters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError("an organization needs at least one member account")
        if not 0 <= self.unreachable <= self.accounts:
            raise ValueError(f"unreachable must be between 0 and the {self.accounts} member accounts")


def account_session(account_id: str, region: str, *, base: boto3.Session | None = None) -> boto3.Session:
    """A boto3 session whose every request acts in `account_id` of the local moto server (its header).

    The hook lives on this session's own botocore session: other sessions of the process are untouched."""
    credentials = base.get_credentials() if base is not None else None
    session = boto3.Session(
        aws_access_key_id=credentials.access_key if credentials else "testing",
        aws_secret_access_key=credentials.secret_key if credentials else "testing",
        region_name=region,
    )

    def in_account(request: Any, **_: Any) -> None:
        request.headers[ACCOUNT_HEADER] = account_id

    session._session.register("before-sign.*.*", in_account)
    return session


@dataclass
class MemberDeployment:
    """What member/template.yaml created in one account."""

    account_id: str
    roles: dict[str, str] = field(default_factory=dict)  # logical id -> role ARN
    oidc_providers: dict[str, str] = field(default_factory=dict)  # logical id -> provider ARN
    policies: dict[str, str] = field(default_factory=dict)  # logical id -> managed policy ARN or inline name

    def role_arn(self, role_name: str) -> str:
        for arn in self.roles.values():
            if arn.rsplit("/", 1)[-1] == role_name:
                return arn
        raise LookupError(f"no role {role_name} in member account {self.account_id}")


def member_parameter_values(
    member_template: Mapping[str, Any],
    stack_parameters: Mapping[str, Any],
    *,
    security_account_id: str,
    security_roles: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The member template's parameters as an operator deploying the StackSet passes them: every parameter the
    security stack also has takes that stack's value (the OIDC provider, audiences and subjects, the external id,
    the organization); `SecurityAccountId` is the security account; `Security<Role>Arn` is the ARN of the security
    stack's role `<Role>` (`security_roles`: logical id -> ARN, e.g. AgentRole, KillSwitchRole); the rest keep their
    defaults unless overridden."""
    declared: Mapping[str, Any] = member_template.get("Parameters") or {}
    values: dict[str, str] = {}
    for name in declared:
        if name in stack_parameters:
            value = stack_parameters[name]
            values[name] = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if "SecurityAccountId" in declared:
        values["SecurityAccountId"] = security_account_id
    for name in declared:
        match = _SECURITY_ROLE_PARAMETER.fullmatch(name)
        if match and match.group(1) in security_roles:
            values[name] = security_roles[match.group(1)]
    values.update(overrides or {})
    try:
        return parameter_values(member_template, values)
    except TemplateError as error:
        raise MemberTemplateError(f"member/template.yaml: {error}") from error


class LocalOrganization:
    """An organization in the local moto server (see the module docstring)."""

    def __init__(
        self,
        *,
        organization_id: str,
        root_id: str,
        management_account_id: str,
        member_account_ids: Sequence[str],
        unreachable_account_ids: Iterable[str],
        region: str,
        base_session: boto3.Session,
        spec: OrganizationSpec,
    ) -> None:
        self.organization_id = organization_id
        self.root_id = root_id
        self.management_account_id = management_account_id
        self.member_account_ids = list(member_account_ids)
        self.unreachable_account_ids = frozenset(unreachable_account_ids)
        self.region = region
        self.spec = spec
        self._base = base_session
        self._sessions: dict[tuple[str, str], boto3.Session] = {}
        self._lock = threading.Lock()
        self.deployments: dict[str, MemberDeployment] = {}

    @classmethod
    def create(cls, session: boto3.Session, spec: OrganizationSpec, *, region: str) -> LocalOrganization:
        """Create the organization from the security account `session` acts in, and its member accounts."""
        organizations = session.client("organizations", region_name=region)
        organization = organizations.create_organization(FeatureSet="ALL")["Organization"]
        root_id = str(organizations.list_roots()["Roots"][0]["Id"])
        members: list[str] = []
        for index in range(1, spec.accounts + 1):
            status = organizations.create_account(
                Email=f"member-{index:03d}@{MEMBER_EMAIL_DOMAIN}", AccountName=f"aegis-member-{index:03d}"
            )["CreateAccountStatus"]
            if status.get("State") != "SUCCEEDED" or not status.get("AccountId"):
                raise RuntimeError(f"moto did not create member account {index}: {status}")
            members.append(str(status["AccountId"]))
        unreachable = members[len(members) - spec.unreachable :] if spec.unreachable else []
        return cls(
            organization_id=str(organization["Id"]),
            root_id=root_id,
            management_account_id=str(organization["MasterAccountId"]),
            member_account_ids=members,
            unreachable_account_ids=unreachable,
            region=region,
            base_session=session,
            spec=spec,
        )

    @property
    def reachable_account_ids(self) -> list[str]:
        return [a for a in self.member_account_ids if a not in self.unreachable_account_ids]

    def session(self, account_id: str, region: str | None = None) -> boto3.Session:
        """A session acting in `account_id` (a member, or the management account) in `region`."""
        chosen = region or self.region
        with self._lock:
            found = self._sessions.get((account_id, chosen))
            if found is None:
                found = account_session(account_id, chosen, base=self._base)
                self._sessions[(account_id, chosen)] = found
        return found

    def client(self, account_id: str, service: str, region: str | None = None) -> Any:
        return self.session(account_id, region).client(service, region_name=region or self.region)

    # -- the member stacks ----------------------------------------------------------------------------

    def deploy_members(
        self,
        stack_parameters: Mapping[str, Any],
        *,
        security_roles: Mapping[str, str],
        template_path: Path | None = None,
    ) -> dict[str, MemberDeployment]:
        """Deploy member/template.yaml in every reachable member account (see the module docstring)."""
        path = template_path or self.spec.member_template or default_member_template_path()
        if not path.is_file():
            raise MemberTemplateError(f"{path} does not exist: the member accounts' roles are defined there")
        template = load_template(path)
        values = member_parameter_values(
            template,
            stack_parameters,
            security_account_id=self.management_account_id,
            security_roles=security_roles,
            overrides=self.spec.member_parameters,
        )
        for account_id in self.reachable_account_ids:
            self.deployments[account_id] = deploy_member_template(
                template, values, iam=self.client(account_id, "iam"), account_id=account_id, region=self.region
            )
        return self.deployments

    def describe(self) -> dict[str, Any]:
        return {
            "organization_id": self.organization_id,
            "management_account_id": self.management_account_id,
            "members": [
                {"account_id": account, "reachable": account not in self.unreachable_account_ids}
                for account in self.member_account_ids
            ],
        }


def deploy_member_template(
    template: Mapping[str, Any], values: Mapping[str, str], *, iam: Any, account_id: str, region: str
) -> MemberDeployment:
    """Create the template's IAM resources through `iam` (a client acting in `account_id`), in dependency order:
    OIDC providers, managed policies, roles, then the policies attached to roles."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    unsupported = sorted(
        f"{logical_id} ({spec.get('Type')})"
        for logical_id, spec in resources.items()
        if spec.get("Type") not in SUPPORTED_TYPES
    )
    if unsupported:
        raise MemberTemplateError(f"member/template.yaml resources the local organization cannot create: {unsupported}")
    resolver = Resolver(
        template,
        values,
        pseudo={"AWS::AccountId": account_id, "AWS::Region": region, "AWS::StackName": DEFAULT_MEMBER_STACK_NAME},
    )
    partition = resolver.pseudo["AWS::Partition"]
    deployment = MemberDeployment(account_id=account_id)

    def wanted(spec: Mapping[str, Any]) -> bool:
        condition = spec.get("Condition")
        return condition is None or resolver.condition(str(condition))

    def of_type(kind: str) -> list[tuple[str, Mapping[str, Any]]]:
        return [(logical_id, spec) for logical_id, spec in resources.items() if spec["Type"] == kind and wanted(spec)]

    for logical_id, spec in of_type("AWS::IAM::OIDCProvider"):
        properties = resolver.resolve(spec.get("Properties") or {})
        url = str(properties["Url"])
        arn = iam.create_open_id_connect_provider(
            Url=url,
            ClientIDList=list(properties.get("ClientIdList") or []),
            ThumbprintList=list(properties.get("ThumbprintList") or ["0" * 40]),
            **_tags(properties),
        )["OpenIDConnectProviderArn"]
        deployment.oidc_providers[logical_id] = str(arn)
        resolver.refs[logical_id] = str(arn)
        resolver.attributes[(logical_id, "Arn")] = str(arn)

    for logical_id, spec in of_type("AWS::IAM::ManagedPolicy"):
        properties = resolver.resolve(spec.get("Properties") or {})
        name = str(properties.get("ManagedPolicyName") or f"{DEFAULT_MEMBER_STACK_NAME}-{logical_id}")
        arn = iam.create_policy(
            PolicyName=name,
            Path=str(properties.get("Path") or "/"),
            PolicyDocument=_document(properties["PolicyDocument"]),
        )["Policy"]["Arn"]
        deployment.policies[logical_id] = str(arn)
        resolver.refs[logical_id] = str(arn)

    # Role names and ARNs are known before any role exists (a role's policy may name another role).
    roles = of_type("AWS::IAM::Role")
    for logical_id, spec in roles:
        raw = spec.get("Properties") or {}
        name = str(resolver.resolve(raw.get("RoleName")) or f"{DEFAULT_MEMBER_STACK_NAME}-{logical_id}")
        path = str(resolver.resolve(raw.get("Path")) or "/")
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = f"arn:{partition}:iam::{account_id}:role{path}{name}"
    for logical_id, spec in roles:
        properties = resolver.resolve(spec.get("Properties") or {})
        name = resolver.refs[logical_id]
        extra: dict[str, Any] = {}
        if properties.get("MaxSessionDuration"):
            extra["MaxSessionDuration"] = int(properties["MaxSessionDuration"])
        if properties.get("Description"):
            extra["Description"] = str(properties["Description"])
        if properties.get("PermissionsBoundary"):
            extra["PermissionsBoundary"] = str(properties["PermissionsBoundary"])
        answer = iam.create_role(
            RoleName=name,
            Path=str(properties.get("Path") or "/"),
            AssumeRolePolicyDocument=_document(properties["AssumeRolePolicyDocument"]),
            **extra,
            **_tags(properties),
        )["Role"]
        deployment.roles[logical_id] = str(answer["Arn"])
        resolver.attributes[(logical_id, "RoleId")] = str(answer["RoleId"])
        for policy in properties.get("Policies") or []:
            iam.put_role_policy(
                RoleName=name, PolicyName=str(policy["PolicyName"]), PolicyDocument=_document(policy["PolicyDocument"])
            )
            deployment.policies[f"{logical_id}/{policy['PolicyName']}"] = str(policy["PolicyName"])
        for arn in properties.get("ManagedPolicyArns") or []:
            iam.attach_role_policy(RoleName=name, PolicyArn=str(arn))

    for kind in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy"):
        for logical_id, spec in of_type(kind):
            properties = resolver.resolve(spec.get("Properties") or {})
            role_names = properties.get("Roles") or [properties.get("RoleName")]
            for role_name in role_names:
                iam.put_role_policy(
                    RoleName=str(role_name),
                    PolicyName=str(properties["PolicyName"]),
                    PolicyDocument=_document(properties["PolicyDocument"]),
                )
            deployment.policies[logical_id] = str(properties["PolicyName"])
    return deployment


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _tags(properties: Mapping[str, Any]) -> dict[str, Any]:
    tags = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in properties.get("Tags") or []]
    return {"Tags": tags} if tags else {}
