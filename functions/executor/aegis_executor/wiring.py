"""Builds the executor and its idempotency store from the deployment's settings (app.py keeps one of each per Lambda
container)."""

from __future__ import annotations

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from aegis.settings import Environment, dynamodb_table
from aegis_auth.handoff import HandoffStore
from aegis_auth.oidc import ClientAuthentication, OidcClient
from aegis_executor.credentials import unsigned_sts_client
from aegis_executor.errors import InvalidSettings
from aegis_executor.execute import Executor
from aegis_executor.ledger import Ledger
from aegis_executor.settings import IDEMPOTENCY_TABLE, ExecutorSettings

# The idempotency key: the change within its execution. The change id alone is content-derived and stable across
# missions, so a later mission re-proposing the same change (say, after an undo) must not be answered with the
# result of an earlier one.
IDEMPOTENCY_KEY_JMESPATH = "[execution_arn, change.change_id]"
# A duplicate carrying other approvals for the same change of the same execution is refused, not answered: the
# handoffs every approver's answer names (for a batch, the whole batch's; the same for each of its changes).
IDEMPOTENCY_PAYLOAD_JMESPATH = "approval.approvals[*].handoffs"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


def build_executor(settings: ExecutorSettings | None = None) -> Executor:
    settings = settings or ExecutorSettings.from_env()
    auth = ClientAuthentication.from_secret_arn(
        settings.auth0_client_id, settings.auth0_client_secret_arn, settings.client_auth_method
    )
    return Executor(
        control_table=dynamodb_table(settings.control_table),
        audit_table=dynamodb_table(settings.audit_table),
        # The executor opens handoffs and seals none: it needs no key id.
        handoffs=HandoffStore(dynamodb_table(settings.handoff_table), boto3.client("kms")),
        oidc=OidcClient(settings.auth0_issuer, auth),
        audience=settings.audience,
        approval_client_id=settings.approval_client_id,
        connection=settings.connection,
        remediation_role_arn=settings.remediation_role_arn,
        undo_role_arn=settings.undo_role_arn,
        undo_connection=settings.undo_connection,
        member_remediation_role_name=settings.member_remediation_role_name,
        member_undo_role_name=settings.member_undo_role_name,
        two_person_risk=settings.two_person_risk,
        sts=unsigned_sts_client(settings.region),
        ledger=Ledger(dynamodb_table(settings.idempotency_table)),
    )


def idempotency_store() -> DynamoDBPersistenceLayer:
    """The handler's idempotency store. Built with the handler module (the idempotent function's decorator takes
    it), before any other setting is read."""
    # A client of boto3's default session, like every other client of the function: left to itself, the persistence
    # layer would open a boto3 session of its own and load the endpoint rules and the DynamoDB model a second time.
    return DynamoDBPersistenceLayer(
        table_name=Environment(InvalidSettings).required(IDEMPOTENCY_TABLE), boto3_client=boto3.client("dynamodb")
    )


def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=IDEMPOTENCY_KEY_JMESPATH,
        payload_validation_jmespath=IDEMPOTENCY_PAYLOAD_JMESPATH,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    )
