"""Hostile names through the agent, with the real scanner over moto: a backdoor user named like an access key id (or
a JWT, or at IAM's length limit) attached to an admin policy is planned like anyone else. The change carries the name
(Step Functions input, plan document), the checkpoints and documents store it as the identifier it is, the approval
texts and the report's free texts withhold it, and the mission completes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.catalogue import parse_change
from aegis.catalogue.kinds.detach_policy import DetachPolicy
from aegis.secrets_guard import WITHHELD, secret_kind
from aegis_agent.missions import MissionStore
from tests.integration.agent.conftest import World
from tests.support.agent_world import LambdaContext, raw_text, scan_event
from tests.support.lambda_app import load_app

ADMIN = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})
HOSTILE_USERS = {
    "access-key-shaped": "AKIA" + "Q7ZK2M4T6V8X0B3N",
    "jwt-shaped": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiYWNrZG9vciJ9.Zx9Qw3Er7Ty1Ui5Op2",
    "64-characters": "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm1Qa2Ws3Ed4Rf5Tg6Yh7Uj8Ik9O",
}
# The longest name AWS allows for any IAM entity (a group: 128 characters).
HOSTILE_GROUP = "eyJ" + "Q7ZK2M4T6V8X0B3N" * 7 + "a1b2c3d4e5f6g"


def backdoor(world: World, user: str) -> str:
    iam = world.session.client("iam")
    arn = str(iam.create_policy(PolicyName="Backdoor", PolicyDocument=ADMIN)["Policy"]["Arn"])
    iam.create_user(UserName=user)
    iam.create_group(GroupName=HOSTILE_GROUP)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    iam.attach_group_policy(GroupName=HOSTILE_GROUP, PolicyArn=arn)
    iam.attach_role_policy(RoleName=world.seeded.role_name, PolicyArn=arn)
    return arn


def execution_changes(world: World, execution_arn: str) -> list[Any]:
    payload = json.loads(world.sfn.describe_execution(executionArn=execution_arn)["input"])
    return [parse_change(change) for change in payload["changes"]]


@pytest.mark.parametrize("user", HOSTILE_USERS.values(), ids=HOSTILE_USERS.keys())
def test_an_admin_policy_attached_to_a_hostile_name_is_detached_from_everyone(world: World, user: str) -> None:
    policy_arn = backdoor(world, user)

    started = load_app("agent").scan_handler(scan_event(checks=["iam-admin-policy-attached"]), LambdaContext())

    assert started["status"] == "awaiting_approval", started
    changes = execution_changes(world, started["execution_arn"])
    [detach] = [c for c in changes if c.resource_arn == policy_arn]
    assert isinstance(detach, DetachPolicy)
    assert detach.detached == {("user", user), ("group", HOSTILE_GROUP), ("role", world.seeded.role_name)}
    # What the approver reads withholds the name; the digest they approve binds it.
    assert user not in detach.binding_message()
    assert user not in detach.approval_properties()["before"]
    # The plan document and the checkpoints hold it as an identifier; nothing was withheld from the scan.
    assert user in raw_text(world.tables["Missions"])
    mission = world.tables["Missions"].get_item(Key={"mission_id": started["mission_id"]})["Item"]
    assert mission["counts"]["withheld"] == 0

    resumed = load_app("agent").resume_handler(
        {
            "mission_id": started["mission_id"],
            "results": [
                {"change_id": c.change_id, "decision": "approved", "outcome": "applied", "reason": ""} for c in changes
            ],
        },
        LambdaContext("resume-request"),
    )

    assert resumed["status"] == "completed", resumed
    report = MissionStore(world.tables["Missions"]).read_report(started["mission_id"])
    assert report is not None
    [reported] = [c for c in report.changes if c.change_id == detach.change_id]
    assert user in json.dumps(reported.before)
    assert WITHHELD in reported.before_text
    assert secret_kind(reported.before_text) is None
    assert secret_kind(reported.binding_message) is None
    actions = [item["action"] for item in read_trail(world.tables["Audit"], started["mission_id"])]
    assert "mission.failed" not in actions
    assert actions[-1] == "mission.completed"
