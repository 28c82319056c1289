"""The validator against what the real executor does (its handler, moto in-process, real CIBA approvals of the Auth0
emulator; the executor's own integration world):

- an undo is allowed by the `executor.applied` record the executor itself writes, and refused once it has been
  undone (records found by the change id the audit writer promotes, as the ByChange index does);
- the changes a too-long security-group change is split into are applied independently, in any order.
"""

from __future__ import annotations

from typing import Any

import boto3

from aegis.catalogue import Undo
from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.models import Risk
from aegis_validator.rules import parse_envelope, plan_problems
from aegis_validator.settings import ValidatorSettings
from tests.support.changes import ACCOUNT, CASES
from tests.support.changes import CASE_REGION as REGION
from tests.support.executor_world import World
from tests.support.validator_plans import POLICY

MISSION_ID = "m-" + "c" * 20
EXECUTION_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:aegis-mission:{MISSION_ID}"
DEPLOYMENT = ValidatorSettings(
    audit_table="Audit",
    account_id=ACCOUNT,
    scan_regions=(REGION,),
    max_changes_per_mission=10,
    approval_policy=POLICY,
    undo_enabled=True,
)


def undo_problems(world: World, undo: Undo) -> list[str]:
    items = world.tables["audit"].scan()["Items"]

    def by_change(change_id: str) -> list[dict[str, Any]]:
        return [item for item in items if item.get("change_id") == change_id]

    request = {
        "execution_arn": EXECUTION_ARN,
        "plan": {"mission_id": MISSION_ID, "changes": [undo.model_dump(mode="json")]},
    }
    return [problem.rule for problem in plan_problems(parse_envelope(request), DEPLOYMENT, by_change)]


def test_the_executors_own_records_allow_an_undo_once(world: World) -> None:
    change = CASES["enable-kms-key-rotation"]().change
    undo = Undo.of(change)
    assert undo_problems(world, undo) == ["undo-not-applied"]

    assert world.invoke(world.payload(change, world.approve(change)))["outcome"] == "applied"
    assert undo_problems(world, undo) == []

    assert world.invoke(world.payload(undo, world.approve(undo)))["outcome"] == "applied"
    assert undo_problems(world, undo) == ["undo-already-undone"]


def test_the_parts_of_a_split_security_group_change_apply_independently_in_any_order(world: World) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="jump", Description="jump hosts", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": f"203.0.{n}.0/24"}]}
            for n in range(12)
        ],
    )
    listed = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    ssh = tuple(sorted((SecurityGroupRule.from_aws(r) for r in listed if not r["IsEgress"]), key=lambda r: r.rule_id))
    change = RevokeSecurityGroupRules.propose(
        check_id="ec2-admin-port-open-ipv4",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.MEDIUM,
        before=SecurityGroupRules(group_id=group, rules=ssh),
        after=SecurityGroupRules(group_id=group, rules=()),
    )
    parts = change.split_for_approval()
    assert len(parts) > 1

    for part in reversed(parts):
        assert world.invoke(world.payload(part, world.approve(part)))["outcome"] == "applied"

    left = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert [r for r in left if not r["IsEgress"]] == []
    assert [r["IsEgress"] for r in left] == [True]  # the group's own egress rule was never part of the change
