"""The executor's settings, read once from the environment the template sets (docs/CONTRACTS.md, executor
environment). An invalid setting is `Executor.InvalidSettings` naming the variable, never its value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aegis.approvals.policy import RISK_ORDER
from aegis.models import Risk
from aegis.settings import Environment
from aegis_auth.oidc import CLIENT_AUTH_METHODS, ClientAuthMethod
from aegis_executor.errors import InvalidSettings

TWO_PERSON_RISK = "APPROVAL_TWO_PERSON_RISK"
# `none` turns the two-person rule off; otherwise a change at or above the named risk needs two distinct approvers.
TWO_PERSON_RISK_CHOICES = ("none", *(risk.value for risk in RISK_ORDER))

# IAM's role names: what may follow `role/` in the member role ARN built from it.
ROLE_NAME_PATTERN = r"[\w+=,.@-]{1,64}"

# Read on its own at import: the handler's idempotency store is built with the module (app.py).
IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"


@dataclass(frozen=True)
class ExecutorSettings:
    control_table: str
    audit_table: str
    handoff_table: str
    idempotency_table: str
    auth0_issuer: str
    auth0_client_id: str
    auth0_client_secret_arn: str
    client_auth_method: ClientAuthMethod
    audience: str
    # The approval application, not this function's own client: only a token CIBA issued to it is accepted.
    approval_client_id: str
    connection: str
    remediation_role_arn: str
    # Empty when the deployment disables undo.
    undo_role_arn: str = ""
    undo_connection: str = ""
    # A change about another account than the remediation role's (a member account of the organization) is applied
    # as that account's role of this name (member/template.yaml); empty: such changes are refused (WrongAccount).
    member_remediation_role_name: str = ""
    # The same for an undo; empty when the deployment disables undo (a member change's undo is then refused too).
    member_undo_role_name: str = ""
    # The risk at or above which a change needs two distinct approvers; None: never (APPROVAL_TWO_PERSON_RISK=none).
    two_person_risk: Risk | None = Risk.HIGH
    # The region of the STS endpoint the remediation sessions are assumed at; None leaves it to botocore.
    region: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExecutorSettings:
        env = Environment(InvalidSettings, environ)
        return cls(
            control_table=env.required("CONTROL_TABLE"),
            audit_table=env.required("AUDIT_TABLE"),
            handoff_table=env.required("HANDOFF_TABLE"),
            idempotency_table=env.required(IDEMPOTENCY_TABLE),
            auth0_issuer=env.required("AUTH0_ISSUER"),
            auth0_client_id=env.required("AUTH0_CLIENT_ID"),
            auth0_client_secret_arn=env.required("AUTH0_CLIENT_SECRET_ARN"),
            client_auth_method=env.choice("CLIENT_AUTH_METHOD", CLIENT_AUTH_METHODS, "client_secret_post"),
            audience=env.required("AUTH0_AUDIENCE"),
            approval_client_id=env.required("APPROVAL_CLIENT_ID"),
            connection=env.required("TOKEN_VAULT_CONNECTION"),
            remediation_role_arn=env.required("REMEDIATION_ROLE_ARN"),
            undo_role_arn=env.optional("UNDO_ROLE_ARN"),
            undo_connection=env.optional("UNDO_TOKEN_VAULT_CONNECTION"),
            member_remediation_role_name=_role_name(env, "MEMBER_REMEDIATION_ROLE_NAME"),
            member_undo_role_name=_role_name(env, "MEMBER_UNDO_ROLE_NAME"),
            two_person_risk=_risk_or_none(env.choice(TWO_PERSON_RISK, TWO_PERSON_RISK_CHOICES, "high")),
            region=env.optional("AWS_REGION") or env.optional("AWS_DEFAULT_REGION") or None,
        )


def _role_name(env: Environment, name: str) -> str:
    """An IAM role name (or empty): it becomes part of the role ARN the executor assumes in a member account."""
    value = env.optional(name)
    if value and not re.fullmatch(ROLE_NAME_PATTERN, value):
        raise env.invalid(f"{name} must be an IAM role name")
    return value


def _risk_or_none(value: str) -> Risk | None:
    return None if value == "none" else Risk(value)
