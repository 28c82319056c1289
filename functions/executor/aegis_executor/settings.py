"""The executor as the template configures it (docs/CONTRACTS.md, executor environment)."""

from __future__ import annotations

import os

from aegis.settings import dynamodb_resource, dynamodb_table, env
from aegis_auth.handoff import HandoffStore
from aegis_auth.oidc import OidcClient
from aegis_executor.credentials import unsigned_sts_client
from aegis_executor.execute import Executor
from aegis_executor.ledger import Ledger

# The idempotency key: the change within its execution. The change id alone is content-derived and stable across
# missions, so a later mission re-proposing the same change (say, after an undo) must not be answered with the
# result of an earlier one.
IDEMPOTENCY_KEY_JMESPATH = "[execution_arn, change.change_id]"
# A duplicate carrying another approval for the same change of the same execution is refused, not answered.
IDEMPOTENCY_PAYLOAD_JMESPATH = "approval.handoff_id"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


def executor_from_env() -> Executor:
    return Executor(
        control_table=dynamodb_table("CONTROL_TABLE"),
        audit_table=dynamodb_table("AUDIT_TABLE"),
        handoffs=HandoffStore.from_env(dynamodb=dynamodb_resource()),
        oidc=OidcClient.from_env(),
        audience=env("AUTH0_AUDIENCE"),
        # The approval application, not this function's own client: only a token CIBA issued to it is accepted.
        approval_client_id=env("APPROVAL_CLIENT_ID"),
        connection=env("TOKEN_VAULT_CONNECTION"),
        remediation_role_arn=env("REMEDIATION_ROLE_ARN"),
        undo_role_arn=os.environ.get("UNDO_ROLE_ARN", ""),
        undo_connection=os.environ.get("UNDO_TOKEN_VAULT_CONNECTION", ""),
        sts=unsigned_sts_client(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")),
        ledger=Ledger(dynamodb_table("IDEMPOTENCY_TABLE")),
    )
