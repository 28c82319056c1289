"""After the apply has started the executor never raises: a resource named like a secret is applied and its records
are redacted, not refused; every applied change has its `executor.applied` record, written through the safe path; an
audit trail that fails after the apply costs the record, never the result.

The pipeline runs for real (moto IAM and STS, the ledger, the audit writer, the remediation and its guard); only
the approval and the Token Vault exchange, which need an identity provider, are stood in for at their seams.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.models import Risk
from aegis.secrets_guard import WITHHELD, secret_kind
from aegis_auth.token_vault import ConnectionToken
from aegis_executor import execute as execute_module
from aegis_executor.approval import ApproverRecord, VerifiedApproval
from aegis_executor.execute import Executor
from aegis_executor.ledger import DONE, Ledger
from tests.support.changes import ACCOUNT, ADMIN_POLICY, ASSUME_EC2
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")

EXECUTION_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:aegis-mission:m-hostile"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/RemediationRole"
APPROVER = "auth0|aegis-approver"
# Detaching a policy here is a high-risk change: two distinct approvers (the template's default threshold).
SECOND_APPROVER = "auth0|aegis-second"
# Valid IAM names (at most 64 of A-Za-z0-9_+=,.@-) that look like credentials.
HOSTILE_USERS = {
    "access-key-shaped": "AKIA" + "Q7ZK2M4T6V8X0B3N",
    "jwt-shaped": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiYWNrZG9vciJ9.Zx9Qw3Er7Ty1Ui5Op2",
    "high-entropy, 64 characters": "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm1Qa2Ws3Ed4Rf5Tg6Yh7Uj8Ik9O",
}


class FailingAudit:
    """The Audit table, except that writing any of `failing` actions fails as DynamoDB would."""

    def __init__(self, table: Any, failing: set[str]) -> None:
        self._table = table
        self.failing = failing

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["Item"]["action"] in self.failing:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
            )
        return self._table.put_item(**kwargs)


@dataclass
class Stage:
    executor: Executor
    audit_table: Any
    ledger_table: Any
    policy_arn: str

    def detach(self, *users: str) -> DetachPolicy:
        return DetachPolicy.propose(
            check_id="iam-admin-policy-attached",
            resource_arn=self.policy_arn,
            account_id=ACCOUNT,
            region=REGION,
            risk=Risk.HIGH,
            before=PolicyAttachments(users=users, roles=("app",)),
            after=PolicyAttachments(),
        )

    def run(self, change: DetachPolicy) -> dict[str, Any]:
        return self.executor.execute(
            {
                "execution_arn": EXECUTION_ARN,
                "mission_id": "m-hostile",
                "change": change.model_dump(mode="json"),
                "proof": None,
                "approval": {
                    "decision": "approved",
                    "approvals": [
                        {
                            "decision": "approved",
                            "approver_sub": APPROVER,
                            "approved_at": "2026-01-01T00:00:00Z",
                            "handoffs": {change.change_id: "h-1"},
                        },
                        {
                            "decision": "approved",
                            "approver_sub": SECOND_APPROVER,
                            "approved_at": "2026-01-01T00:00:01Z",
                            "handoffs": {change.change_id: "h-2"},
                        },
                    ],
                },
            }
        )

    def audit(self, action: str) -> list[dict[str, Any]]:
        items = sorted(self.audit_table.scan()["Items"], key=lambda item: item["seq"])
        return [json.loads(item["details"]) for item in items if item["action"] == action]

    def attached(self) -> set[tuple[str, str]]:
        page = boto3.client("iam", region_name=REGION).list_entities_for_policy(PolicyArn=self.policy_arn)
        return {("user", u["UserName"]) for u in page["PolicyUsers"]} | {
            ("role", r["RoleName"]) for r in page["PolicyRoles"]
        }


def _table(name: str, keys: list[str]) -> Any:
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    return dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ["HASH", "RANGE"], strict=False)],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Stage:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="RemediationRole", AssumeRolePolicyDocument=json.dumps(ASSUME_EC2))
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(ASSUME_EC2))
    policy_arn = iam.create_policy(PolicyName="Backdoor", PolicyDocument=json.dumps(ADMIN_POLICY))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=policy_arn)
    for user in ("alice", *HOSTILE_USERS.values()):
        iam.create_user(UserName=user)
        iam.attach_user_policy(UserName=user, PolicyArn=policy_arn)

    def approval(*_: Any, **kwargs: Any) -> VerifiedApproval:
        change_id = kwargs["change"].change_id
        return VerifiedApproval(
            approvers=tuple(
                ApproverRecord(a.approver_sub, a.handoffs[change_id], a.approved_at) for a in kwargs["approvals"]
            ),
            batch_root=None,
            token_expires_at=2_000_000_000,
            access_token=SecretStr("approval-access-token"),
        )

    def exchange(*_: Any, **__: Any) -> ConnectionToken:
        return ConnectionToken(
            access_token=SecretStr("connection-token"),
            expires_in=300,
            scope=(),
            issued_token_type="urn:ietf:params:oauth:token-type:access_token",
        )

    monkeypatch.setattr(execute_module, "open_approval", approval)
    monkeypatch.setattr(execute_module, "exchange_for_connection_token", exchange)
    audit_table = _table("Audit", ["mission_id", "seq"])
    ledger_table = _table("Idempotency", ["id"])
    executor = Executor(
        control_table=_table("Control", ["name"]),
        audit_table=audit_table,
        handoffs=None,  # type: ignore[arg-type]  # consumed through the stand-in above
        oidc=None,  # type: ignore[arg-type]
        audience="https://aegis.local/api",
        approval_client_id="approval-client",
        connection="aws-remediation",
        remediation_role_arn=ROLE_ARN,
        sts=boto3.client("sts", region_name=REGION),
        ledger=Ledger(ledger_table),
        verifier=object(),  # type: ignore[arg-type]
        verify_delays=(),
    )
    return Stage(executor=executor, audit_table=audit_table, ledger_table=ledger_table, policy_arn=policy_arn)


@pytest.mark.parametrize("user", HOSTILE_USERS.values(), ids=HOSTILE_USERS.keys())
def test_a_hostile_name_is_applied_and_recorded_redacted(stage: Stage, user: str) -> None:
    change = stage.detach("alice", user)

    result = stage.run(change)

    assert result["outcome"] == "applied", result
    assert ("user", user) not in stage.attached()
    assert ("user", "alice") not in stage.attached()
    [applied] = stage.audit("executor.applied")
    assert applied["digest"] == change.digest
    # The record redacts what the audit trail may not hold, keeps the rest.
    assert applied["approved_before"]["users"] == ["alice", WITHHELD]
    assert user not in json.dumps(stage.audit_table.scan()["Items"])
    [final] = stage.audit("executor.result")
    assert final["result"]["outcome"] == "applied"
    ledger = stage.ledger_table.scan()["Items"]
    assert [item["status"] for item in ledger] == [DONE]


@pytest.mark.parametrize("names", [("alice",), ("alice", HOSTILE_USERS["access-key-shaped"])], ids=["plain", "hostile"])
def test_an_audit_trail_failing_after_the_apply_costs_the_record_not_the_result(
    stage: Stage, caplog: pytest.LogCaptureFixture, names: tuple[str, ...]
) -> None:
    iam = boto3.client("iam", region_name=REGION)
    for user in set(HOSTILE_USERS.values()) - set(names):
        iam.detach_user_policy(UserName=user, PolicyArn=stage.policy_arn)
    stage.executor.audit_table = FailingAudit(stage.audit_table, {"executor.applied", "executor.result"})
    change = stage.detach(*names)

    with caplog.at_level(logging.ERROR):
        result = stage.run(change)

    assert result["outcome"] == "applied"
    assert stage.attached() == set()
    assert stage.audit("executor.applied") == []
    assert "audit write failed" in caplog.text
    # The ledger knows: a retry of this invocation returns the same answer.
    [item] = stage.ledger_table.scan()["Items"]
    assert (item["status"], json.loads(item["result"])["outcome"]) == (DONE, "applied")
    assert stage.run(change)["outcome"] == "applied"


def test_an_audit_trail_failing_before_the_first_mutation_applies_nothing_and_says_so(stage: Stage) -> None:
    stage.executor.audit_table = FailingAudit(stage.audit_table, {"executor.applying"})
    change = stage.detach("alice", HOSTILE_USERS["jwt-shaped"])

    result = stage.run(change)

    assert result["outcome"] == "failed"
    assert "nothing was applied" in result["reason"]
    assert ("user", "alice") in stage.attached()


def test_drift_with_a_hostile_name_is_an_outcome_with_a_redacted_state(stage: Stage) -> None:
    user = HOSTILE_USERS["access-key-shaped"]
    change = stage.detach("alice", user)
    boto3.client("iam", region_name=REGION).detach_user_policy(UserName="alice", PolicyArn=stage.policy_arn)

    result = stage.run(change)

    assert result["outcome"] == "drift"
    assert user not in json.dumps(result)
    assert WITHHELD in result["verified_after"]["users"]
    assert all(secret_kind(text) is None for text in (result["reason"], json.dumps(result)))
    assert len(stage.audit("executor.drift")) == 1


def test_an_unexpected_error_after_the_apply_started_is_a_failed_outcome_not_a_lambda_error(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = execute_module.remediation_for

    class Exploding:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def apply(self, session: Any, change: Any) -> None:
            self._inner.apply(session, change)
            raise KeyError("an answer without the expected field")

    monkeypatch.setattr(execute_module, "remediation_for", lambda change: Exploding(real(change)))
    change = stage.detach("alice", HOSTILE_USERS["jwt-shaped"])

    result = stage.run(change)

    assert result["outcome"] == "failed"
    assert "KeyError" in result["reason"]
    assert [item["status"] for item in stage.ledger_table.scan()["Items"]] == [DONE]
    assert stage.audit("executor.result")[0]["result"]["outcome"] == "failed"
