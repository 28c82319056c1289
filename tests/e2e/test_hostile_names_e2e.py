"""Hostile names through a whole mission on the local stack: a backdoor user named like an access key id, and a
group at IAM's length limit shaped like a JWT, attached to the seeded admin policy. The scan keeps them, the plan
detaches the policy from every entity, the phone is shown texts that withhold them, the executor applies the change
and records it, the report shows the names as identifiers in the diff, and the leak audit stays clean."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from aegis.audit import read_trail
from aegis.secrets_guard import WITHHELD
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import Console, DemoOptions, run_on_stack, stack_arguments
from aegis_local.scenario.phone import ApprovalPolicy
from aegis_local.scenario.seed import seed_account

pytestmark = pytest.mark.e2e

CHECK = "iam-admin-policy-attached"
BACKDOOR_USER = "AKIA" + "Q7ZK2M4T6V8X0B3N"
BACKDOOR_GROUP = "eyJ" + "Q7ZK2M4T6V8X0B3N" * 7 + "a1b2c3d4e5f6g"


def test_a_backdoor_named_like_a_key_is_detached_approved_applied_and_reported(tmp_path: Path) -> None:
    options = DemoOptions(policy=ApprovalPolicy(approve_all=True), checks=(CHECK,), report_dir=tmp_path / "reports")
    with LocalStack(**stack_arguments(options)) as stack:
        session = stack.session()
        seeded = seed_account(session, stack.identity.region)
        iam = session.client("iam")
        policy_arn = seeded.policies["admin"]
        iam.create_user(UserName=BACKDOOR_USER)
        iam.create_group(GroupName=BACKDOOR_GROUP)
        iam.attach_user_policy(UserName=BACKDOOR_USER, PolicyArn=policy_arn)
        iam.attach_group_policy(GroupName=BACKDOOR_GROUP, PolicyArn=policy_arn)

        output = io.StringIO()
        result = run_on_stack(stack, options, Console(output), seeded=seeded)

        still_attached = iam.list_entities_for_policy(PolicyArn=policy_arn)
        trail = read_trail(session.resource("dynamodb").Table(stack.physical_id("AuditTable")), result.run.mission_id)

    assert result.exit_code == 0, output.getvalue()
    # The admin policy's change (the seeded power-user policy gets a change of its own, a new version).
    [change] = [c for c in result.report.changes if c.check_id == CHECK and c.resource_arn == policy_arn]
    assert (change.decision, change.outcome, change.verified) == ("approved", "applied", "fixed")
    assert BACKDOOR_USER in json.dumps(change.before)
    assert BACKDOOR_GROUP in json.dumps(change.before)
    assert WITHHELD in change.before_text
    assert [still_attached[key] for key in ("PolicyUsers", "PolicyGroups", "PolicyRoles")] == [[], [], []]
    # What the phone showed (the console prints each request's binding message) withholds the names.
    assert change.binding_message in output.getvalue()
    assert BACKDOOR_USER not in output.getvalue()
    applied = [i for i in trail if i["action"] == "executor.applied"]
    assert [i["outcome"] for i in applied if i.get("change_id") == change.change_id] == ["applied"]
    assert all(i["outcome"] == "applied" for i in applied)
    assert "mission.failed" not in {i["action"] for i in trail}
    assert result.leak_audit.clean, result.leak_audit.hits
