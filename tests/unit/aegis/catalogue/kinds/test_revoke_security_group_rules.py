"""revoke-security-group-rules: only ever removes rules of one group, by rule id."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from tests.support.changes import ACCOUNT, COMMON, RDP_RULE, REGION, SSH_RULE, one_of_each_kind


def test_a_change_that_opens_a_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="strict subset"):
        RevokeSecurityGroupRules.propose(
            check_id="ec2-admin-port-open-ipv4",
            resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0abc",
            before=SecurityGroupRules(group_id="sg-0abc", rules=()),
            after=SecurityGroupRules(group_id="sg-0abc", rules=(SSH_RULE,)),
            **COMMON,
        )


def test_a_change_that_names_another_group_after_is_refused() -> None:
    with pytest.raises(ValueError, match="different security groups"):
        RevokeSecurityGroupRules.propose(
            check_id="ec2-admin-port-open-ipv4",
            resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0abc",
            before=SecurityGroupRules(group_id="sg-0abc", rules=(SSH_RULE,)),
            after=SecurityGroupRules(group_id="sg-0def", rules=()),
            **COMMON,
        )


def test_security_group_session_policy_is_pinned_to_the_group() -> None:
    change = one_of_each_kind()[0]
    scoped = change.session_policy_statements("apply")[0]
    assert scoped["Resource"] == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0abc"]
    assert scoped["Action"] == ["ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"]


def test_a_rule_read_from_aws_authorises_exactly_itself_again() -> None:
    listed = {
        "SecurityGroupRuleId": "sgr-0cc3",
        "GroupId": "sg-0abc",
        "IsEgress": False,
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "ReferencedGroupInfo": {"GroupId": "sg-0peer"},
    }
    rule = SecurityGroupRule.from_aws(listed)
    assert (rule.rule_id, rule.referenced_group_id, rule.cidr_ipv4) == ("sgr-0cc3", "sg-0peer", None)
    assert rule.ip_permission() == {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "UserIdGroupPairs": [{"GroupId": "sg-0peer"}],
    }
    assert RDP_RULE.ip_permission() == {
        "IpProtocol": "tcp",
        "FromPort": 3389,
        "ToPort": 3389,
        "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
    }


def test_an_all_traffic_rule_names_no_ports() -> None:
    everything = SecurityGroupRule(rule_id="sgr-0dd4", is_egress=True, ip_protocol="-1", cidr_ipv4="0.0.0.0/0")
    assert everything.ip_permission() == {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert everything.describe() == "sgr-0dd4 out -1/all 0.0.0.0/0"
