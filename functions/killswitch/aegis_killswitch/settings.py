"""What the kill switch needs to know about its deployment, read once from the environment the template sets. An
invalid setting is `KillSwitch.InvalidSettings` naming the variable, never its value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aegis.settings import Environment
from aegis_auth.oidc import CLIENT_AUTH_METHODS, ClientAuthMethod
from aegis_killswitch.errors import InvalidSettings


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
        )

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
