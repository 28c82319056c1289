"""Default security group allows traffic: CIS v3.0.0 5.4 / v5.0.0 5.5."""

from __future__ import annotations

from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.checks import PlanConfig, ec2_default_sg_allows_traffic
from aegis.models import Risk

CHECK = ec2_default_sg_allows_traffic


def _default_group(ec2, vpc_id: str) -> str:
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return groups[0]["GroupId"]


def _rules(ec2, group_id: str) -> list[dict]:
    return ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def _empty(ec2, group_id: str) -> None:
    for rule in _rules(ec2, group_id):
        revoke = ec2.revoke_security_group_egress if rule["IsEgress"] else ec2.revoke_security_group_ingress
        revoke(GroupId=group_id, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])


def test_every_rule_of_a_default_group_is_flagged_and_proposed_for_revocation(ec2, inventory):
    vpc_id = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    group_id = _default_group(ec2, vpc_id)
    ec2.authorize_security_group_ingress(
        GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}]
    )

    findings = {f.evidence["group_id"]: f for f in CHECK.evaluate(inventory())}

    finding = findings[group_id]
    assert (finding.cis_v3, finding.cis_v5) == ("5.4", "5.5")
    assert finding.evidence["vpc_id"] == vpc_id
    assert (finding.evidence["ingress_rules"], finding.evidence["egress_rules"]) == (1, 1)
    assert {r["rule_id"] for r in finding.evidence["rules"]} == {
        r["SecurityGroupRuleId"] for r in _rules(ec2, group_id)
    }
    change = CHECK.propose(finding, PlanConfig())
    assert isinstance(change, RevokeSecurityGroupRules)
    assert len(change.revoked) == 2
    assert change.after.rules == ()
    assert change.risk is Risk.LOW  # nothing uses the group


def test_a_default_group_attached_to_an_interface_is_high_risk(ec2, inventory, aws):
    vpc_id = ec2.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    group_id = _default_group(ec2, vpc_id)
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.6.1.0/24")["Subnet"]["SubnetId"]
    ec2.create_network_interface(SubnetId=subnet, Groups=[group_id])

    inv = inventory()
    findings = {f.evidence["group_id"]: f for f in CHECK.evaluate(inv)}

    assert findings[group_id].evidence["attached_to_interfaces"] is True
    assert CHECK.propose(findings[group_id], PlanConfig()).risk is Risk.HIGH
    # The moto default VPC's group is unused: the same single listing answers for both.
    others = [f for gid, f in findings.items() if gid != group_id]
    assert others
    assert all(f.evidence["attached_to_interfaces"] is False for f in others)
    assert inv.collectors.clients.api_calls["ec2.DescribeNetworkInterfaces"] == 1


def test_an_empty_default_group_and_ordinary_groups_are_not_flagged(ec2, inventory, new_group, permission):
    for vpc in ec2.describe_vpcs()["Vpcs"]:
        _empty(ec2, _default_group(ec2, vpc["VpcId"]))
    new_group([permission(443, "0.0.0.0/0")])  # a non-default group with rules is another matter

    assert CHECK.evaluate(inventory()) == []


def test_cis_numbers_and_remediation_kind():
    meta = ec2_default_sg_allows_traffic.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("5.4", "5.5", "revoke-security-group-rules")
