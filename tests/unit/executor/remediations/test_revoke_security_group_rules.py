"""The security-group remediation revokes the approved rules by id and nothing else; undo authorises their meaning
again (AWS issues new ids)."""

from __future__ import annotations

import boto3
import pytest

from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.models import Risk
from aegis_executor.remediations import remediation_for
from tests.support.changes import ACCOUNT, CASES, in_moto
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")


def test_revoking_rules_leaves_rules_added_since_the_scan_alone() -> None:
    case = CASES["revoke-security-group-rules"]()
    change = case.change
    ec2 = boto3.client("ec2", region_name=REGION)
    group = change.before.group_id  # type: ignore[attr-defined]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}
        ],
    )
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    assert fix.is_before(fix.read_current(session, change), change)
    fix.apply(session, change)
    assert fix.verify(session, change).ok
    assert (False, "tcp", 8080, "10.1.0.0/16") in case.facts()


def test_an_egress_rule_is_revoked_and_authorised_again_under_a_new_id() -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="out", Description="out", VpcId=vpc)["GroupId"]
    [listed] = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroupRules"
    ]
    egress = SecurityGroupRule.from_aws(listed)
    change = in_moto(
        RevokeSecurityGroupRules,
        check_id="ec2-default-sg-allows-traffic",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}",
        risk=Risk.LOW,
        before=SecurityGroupRules(group_id=group, rules=(egress,)),
        after=SecurityGroupRules(group_id=group, rules=()),
    )
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)

    fix.apply(session, change)
    assert fix.read_current(session, change).rules == ()

    fix.undo(session, change)
    [again] = fix.read_current(session, change).rules
    assert fix.verify_undone(session, change).ok
    assert again.rule_id != egress.rule_id
    assert again.model_copy(update={"rule_id": egress.rule_id}) == egress
