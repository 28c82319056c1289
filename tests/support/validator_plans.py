"""Plans as the agent submits them, and the deployment they are valid for, for the validator's tests."""

from __future__ import annotations

import json
from typing import Any

from aegis.approvals.policy import ApprovalPolicy
from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase
from aegis_validator.rules import REGION_SCOPE
from aegis_validator.settings import ValidatorSettings
from tests.support.changes import ACCOUNT, FLOW_LOG, REGION, one_of_each_kind

MISSION_ID = "m-0123456789abcdef0123"
EXECUTION_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:aegis-mission:{MISSION_ID}"
TRAIL_BUCKET = "aegis-trail-logs"
CONFIG_BUCKET = "aegis-config-logs"
OTHER_ACCOUNT = "210987654321"
APPROVERS = ("auth0|approver-a", "auth0|approver-b")
# The template's defaults (batch at or below medium, two approvers at high), with two approvers to share them.
POLICY = ApprovalPolicy(approver_subs=APPROVERS)


def settings(**overrides: Any) -> ValidatorSettings:
    """The deployment every change of `valid_changes()` belongs to."""
    values: dict[str, Any] = {
        "audit_table": "Audit",
        "account_id": ACCOUNT,
        "scan_regions": (REGION, "eu-central-1"),
        "max_changes_per_mission": 25,
        "approval_policy": POLICY,
        "trail_bucket": TRAIL_BUCKET,
        "flow_logs_log_group": FLOW_LOG.log_group_name,
        "flow_logs_role_arn": FLOW_LOG.deliver_logs_role_arn,
        "config_bucket": CONFIG_BUCKET,
        "undo_enabled": True,
    }
    return ValidatorSettings(**(values | overrides))


def valid_changes() -> list[ChangeBase]:
    """One change of every forward kind, in the region a planner puts it: account-wide kinds in the home region."""
    return [
        rebuilt(change, region=settings().home_region) if REGION_SCOPE[change.kind] == "home" else change
        for change in one_of_each_kind()
    ]


def wire(change: ChangeBase) -> dict[str, Any]:
    """A change as the state machine's input carries it (the agent's json.dumps of model_dump, read back)."""
    return json.loads(json.dumps(change.model_dump(mode="json")))


def request(changes: list[Any], mission_id: str = MISSION_ID, execution_arn: str = EXECUTION_ARN) -> dict[str, Any]:
    """The validator's payload: the execution's ARN and its input."""
    wired = [wire(c) if isinstance(c, ChangeBase) else c for c in changes]
    return {"execution_arn": execution_arn, "plan": {"mission_id": mission_id, "changes": wired}}


def rebuilt(change: ChangeBase, **fields: Any) -> ChangeBase:
    """The same kind of change with some content replaced, its id derived anew (a forger who knows the scheme)."""
    return type(change).propose(**(change.model_dump(exclude={"kind", "change_id"}) | fields))


def audit_change(
    table: Any,
    change: ChangeBase,
    *,
    actor: str = "executor",
    action: str = "executor.applied",
    outcome: str = "applied",
    account: str = ACCOUNT,
) -> None:
    """An audit record about `change` as AuditLog writes the executor's (details: change_id, execution_arn, digest,
    approver_sub), into `table`: the Audit table, or anything with its put_item."""
    mission_id = "m-" + "a" * 20
    AuditLog(table, actor).append(
        mission_id,
        action,
        outcome,
        change_id=change.change_id,
        execution_arn=f"arn:aws:states:us-east-1:{account}:execution:aegis-mission:{mission_id}",
        digest=change.digest,
        approver_sub="auth0|approver-1",
    )
