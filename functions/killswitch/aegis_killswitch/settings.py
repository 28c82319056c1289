"""What the kill switch needs to know about its deployment, read once from the environment the template sets. An
invalid setting is `KillSwitch.InvalidSettings` naming the variable, never its value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aegis.settings import Environment
from aegis_auth.oidc import CLIENT_AUTH_METHODS, ClientAuthMethod
from aegis_killswitch.errors import InvalidSettings

# template.yaml's OrganizationId pattern; and IAM's for a role name and an external id (sts:ExternalId).
ORGANIZATION_ID_PATTERN = re.compile(r"o-[a-z0-9]{10,32}")
ROLE_NAME_PATTERN = re.compile(r"[\w+=,.@-]{1,64}")
EXTERNAL_ID_PATTERN = re.compile(r"[\w+=,.@:/-]{2,1224}")
# arn:<partition>:states:<region>:<account>:stateMachine:<name>
STATE_MACHINE_ARN_PATTERN = re.compile(
    r"arn:(?P<partition>[a-z-]+):states:[a-z0-9-]+:(?P<account>\d{12}):stateMachine:.+"
)


@dataclass(frozen=True)
class KillSwitchSettings:
    control_table: str
    audit_table: str
    state_machine_arn: str
    schedule_rule_name: str
    scan_rule_name: str
    auth0_issuer: str
    auth0_client_id: str
    auth0_client_secret_arn: str
    client_auth_method: ClientAuthMethod
    approver_subs: tuple[str, ...]
    # Empty when the deployment uses no Token Vault connection: the kill switch then has no account to cut off.
    token_vault_connection: str
    remediation_role_name: str
    ops_api_audience: str
    # Sealed approvals: the trigger purges every one, the end of an execution purges that execution's.
    handoff_table: str
    # Empty when the deployment has no undo connection (and so no UndoRole).
    undo_role_name: str = ""
    # The rule that delivers `aegis.undo` requests to the agent: a halt disables it with the scan rules.
    undo_rule_name: str = ""
    # The organization whose members a halt reaches (through each member's AegisKillSwitchRole, member/template.yaml);
    # empty: this account alone.
    organization_id: str = ""
    # Its running organization scans are stopped by a trigger; empty: the deployment has none.
    org_scan_state_machine_arn: str = ""
    member_killswitch_role_name: str = ""
    # Not a secret: it stops a confused deputy from using the members' kill switch roles.
    member_external_id: str = ""
    member_remediation_role_name: str = ""
    # Empty when undo is disabled: the members then have no undo role to halt.
    member_undo_role_name: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KillSwitchSettings:
        env = Environment(InvalidSettings, environ)
        issuer = env.required("AUTH0_ISSUER")
        if not issuer.endswith("/"):
            # Auth0 issuers end with a slash and every URL below is built by appending to it.
            issuer += "/"
        return cls(
            control_table=env.required("CONTROL_TABLE"),
            audit_table=env.required("AUDIT_TABLE"),
            state_machine_arn=env.required("STATE_MACHINE_ARN"),
            schedule_rule_name=env.required("SCHEDULE_RULE_NAME"),
            scan_rule_name=env.required("SCAN_RULE_NAME"),
            auth0_issuer=issuer,
            auth0_client_id=env.required("AUTH0_CLIENT_ID"),
            auth0_client_secret_arn=env.required("AUTH0_CLIENT_SECRET_ARN"),
            client_auth_method=env.choice("CLIENT_AUTH_METHOD", CLIENT_AUTH_METHODS, "client_secret_post"),
            approver_subs=env.items("APPROVER_SUBS"),
            token_vault_connection=env.optional("TOKEN_VAULT_CONNECTION"),
            remediation_role_name=env.required("REMEDIATION_ROLE_NAME"),
            ops_api_audience=env.required("OPS_API_AUDIENCE"),
            handoff_table=env.required("HANDOFF_TABLE"),
            undo_role_name=env.optional("UNDO_ROLE_NAME"),
            undo_rule_name=env.optional("UNDO_RULE_NAME"),
            org_scan_state_machine_arn=env.optional("ORG_SCAN_STATE_MACHINE_ARN"),
            **_organization(env),
        )

    @property
    def organization_enabled(self) -> bool:
        return bool(self.organization_id)

    @property
    def own_account_id(self) -> str:
        """This deployment's account (its state machine's): the one member a halt of the members leaves out."""
        return _state_machine_arn_part(self.state_machine_arn, "account")

    @property
    def partition(self) -> str:
        return _state_machine_arn_part(self.state_machine_arn, "partition")

    @property
    def member_role_names(self) -> tuple[str, ...]:
        """The roles a halt denies in each member: its AegisRemediationRole, and its AegisUndoRole when undo is on."""
        return tuple(name for name in (self.member_remediation_role_name, self.member_undo_role_name) if name)

    def member_killswitch_role_arn(self, account_id: str) -> str:
        return f"arn:{self.partition}:iam::{account_id}:role/{self.member_killswitch_role_name}"

    @property
    def management_audience(self) -> str:
        """Auth0's Management API identifier for the tenant (`https://{domain}/api/v2/`)."""
        return f"{self.auth0_issuer}api/v2/"

    @property
    def rule_names(self) -> tuple[str, ...]:
        """The rules that start missions: the schedule, scan requests and undo requests (when named)."""
        return tuple(name for name in (self.schedule_rule_name, self.scan_rule_name, self.undo_rule_name) if name)

    @property
    def remediation_role_names(self) -> tuple[str, ...]:
        """Every role a halt denies: RemediationRole, and UndoRole when the deployment has one."""
        return tuple(name for name in (self.remediation_role_name, self.undo_role_name) if name)


def _organization(env: Environment) -> dict[str, str]:
    """The member settings: unused (and left empty) without an organization, each required and checked with one."""
    organization_id = env.optional("ORGANIZATION_ID")
    if not organization_id:
        return {}
    if not ORGANIZATION_ID_PATTERN.fullmatch(organization_id):
        raise env.invalid("ORGANIZATION_ID must be an organization id (o-...)")
    if not STATE_MACHINE_ARN_PATTERN.fullmatch(env.required("STATE_MACHINE_ARN")):
        # Its account is the one a halt of the members leaves out, its partition the members' role ARNs'.
        raise env.invalid("STATE_MACHINE_ARN must be a state machine ARN")
    names = {
        "member_killswitch_role_name": env.required("MEMBER_KILLSWITCH_ROLE_NAME"),
        "member_remediation_role_name": env.required("MEMBER_REMEDIATION_ROLE_NAME"),
        "member_undo_role_name": env.optional("MEMBER_UNDO_ROLE_NAME"),
    }
    for field_name, value in names.items():
        if value and not ROLE_NAME_PATTERN.fullmatch(value):
            raise env.invalid(f"{field_name.upper()} must be an IAM role name")
    external_id = env.required("MEMBER_EXTERNAL_ID")
    if not EXTERNAL_ID_PATTERN.fullmatch(external_id):
        raise env.invalid("MEMBER_EXTERNAL_ID must be 2 to 1224 characters of letters, digits and +=,.@:/-_")
    return {"organization_id": organization_id, "member_external_id": external_id, **names}


def _state_machine_arn_part(arn: str, part: str) -> str:
    match = STATE_MACHINE_ARN_PATTERN.fullmatch(arn)
    if match is None:
        raise InvalidSettings("STATE_MACHINE_ARN must be a state machine ARN")
    return match.group(part)
