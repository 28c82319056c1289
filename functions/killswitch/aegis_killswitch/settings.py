"""What the kill switch needs to know about its deployment, read once from the environment the template sets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Self

from aegis.settings import MissingSetting, env, env_list

ClientAuthMethod = Literal["client_secret_post", "client_secret_basic"]
_AUTH_METHODS: tuple[ClientAuthMethod, ...] = ("client_secret_post", "client_secret_basic")


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
    killswitch_audience: str
    # Sealed approvals: the trigger purges every one, the end of an execution purges that execution's.
    handoff_table: str
    # Empty when the deployment has no undo connection (and so no UndoRole).
    undo_role_name: str = ""

    @classmethod
    def from_env(cls) -> Self:
        issuer = env("AUTH0_ISSUER")
        if not issuer.endswith("/"):
            # Auth0 issuers end with a slash and every URL below is built by appending to it.
            issuer += "/"
        method = env("CLIENT_AUTH_METHOD", "client_secret_post")
        if method not in _AUTH_METHODS:
            raise MissingSetting(f"CLIENT_AUTH_METHOD must be one of {', '.join(_AUTH_METHODS)}, not {method!r}")
        return cls(
            control_table=env("CONTROL_TABLE"),
            audit_table=env("AUDIT_TABLE"),
            state_machine_arn=env("STATE_MACHINE_ARN"),
            schedule_rule_name=env("SCHEDULE_RULE_NAME"),
            scan_rule_name=env("SCAN_RULE_NAME"),
            auth0_issuer=issuer,
            auth0_client_id=env("AUTH0_CLIENT_ID"),
            auth0_client_secret_arn=env("AUTH0_CLIENT_SECRET_ARN"),
            client_auth_method=method,
            approver_subs=tuple(env_list("APPROVER_SUBS")),
            token_vault_connection=os.environ.get("TOKEN_VAULT_CONNECTION", "").strip(),
            remediation_role_name=env("REMEDIATION_ROLE_NAME"),
            killswitch_audience=env("KILLSWITCH_AUDIENCE"),
            handoff_table=env("HANDOFF_TABLE"),
            undo_role_name=os.environ.get("UNDO_ROLE_NAME", "").strip(),
        )

    @property
    def management_audience(self) -> str:
        """Auth0's Management API identifier for the tenant (`https://{domain}/api/v2/`)."""
        return f"{self.auth0_issuer}api/v2/"

    @property
    def rule_names(self) -> tuple[str, ...]:
        return (self.schedule_rule_name, self.scan_rule_name)

    @property
    def remediation_role_names(self) -> tuple[str, ...]:
        """Every role a halt denies: RemediationRole, and UndoRole when the deployment has one."""
        return tuple(name for name in (self.remediation_role_name, self.undo_role_name) if name)
