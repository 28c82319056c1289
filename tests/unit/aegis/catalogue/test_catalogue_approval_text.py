"""Approval texts are never cut: a change too long to show is split into changes that each show everything, or it
cannot be proposed at all (ApprovalTextTooLong)."""

from __future__ import annotations

import pytest

from aegis.catalogue import ApprovalTextTooLong, ChangeBase, parse_change
from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.models import Risk
from tests.support.changes import ACCOUNT, COMMON, FLOW_LOG, REGION, one_of_each_kind

GROUP_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123456789abcdef0"


def open_rules(count: int) -> tuple[SecurityGroupRule, ...]:
    """Rules as AWS names them (sgr- and 17 hex digits), each opening SSH to a different network."""
    return tuple(
        SecurityGroupRule(
            rule_id=f"sgr-{index:017x}",
            is_egress=False,
            ip_protocol="tcp",
            from_port=22,
            to_port=22,
            cidr_ipv4=f"10.{index}.0.0/16",
        )
        for index in range(count)
    )


def revoke(rules: tuple[SecurityGroupRule, ...], kept: tuple[SecurityGroupRule, ...] = ()) -> RevokeSecurityGroupRules:
    return RevokeSecurityGroupRules.propose(
        check_id="ec2-admin-port-open-ipv4",
        resource_arn=GROUP_ARN,
        before=SecurityGroupRules(group_id="sg-0123456789abcdef0", rules=rules),
        after=SecurityGroupRules(group_id="sg-0123456789abcdef0", rules=kept),
        **COMMON,
    )


def detach(
    roles: tuple[str, ...], resource_arn: str = f"arn:aws:iam::{ACCOUNT}:policy/AdminEverything"
) -> DetachPolicy:
    return DetachPolicy.propose(
        check_id="iam-admin-policy-attached",
        resource_arn=resource_arn,
        before=PolicyAttachments(roles=roles, users=("alice",)),
        after=PolicyAttachments(),
        **COMMON,
    )


def assert_each_part_shows_everything(parts: tuple[ChangeBase, ...]) -> None:
    for part in parts:
        properties = part.approval_properties()  # raises if anything would not fit
        assert all(len(value) <= PROPERTY_VALUE_MAX for value in properties.values())
        assert "…" not in "".join(properties.values())
        assert parse_change(part.model_dump(mode="json")) == part  # an exact catalogue member


def test_a_change_that_fits_is_itself_and_its_properties_are_whole() -> None:
    for change in one_of_each_kind():
        assert change.split_for_approval() == (change,)
        assert change.overlong_properties() == ()


def test_properties_too_long_to_show_are_refused_never_cut() -> None:
    change = revoke(open_rules(12))
    assert change.overlong_properties() == ("before",)
    with pytest.raises(ApprovalTextTooLong, match="before") as refused:
        change.approval_properties()
    assert refused.value.names == ("before",)
    assert "10.0.0.0" not in str(refused.value)  # names the property, not its content


def test_a_security_group_with_many_rules_is_revoked_by_several_changes_each_showing_all_its_rules() -> None:
    rules = open_rules(12)
    change = revoke(rules)

    parts = change.split_for_approval()

    assert len(parts) > 1
    assert_each_part_shows_everything(parts)
    revoked = [rule for part in parts for rule in part.before.rules]  # type: ignore[attr-defined]
    assert revoked == list(rules)  # every rule exactly once, in order
    for part in parts:
        assert isinstance(part, RevokeSecurityGroupRules)
        assert (part.resource_arn, part.check_id, part.risk, part.region) == (
            change.resource_arn,
            change.check_id,
            change.risk,
            change.region,
        )
        assert part.after.rules == ()
        for rule in part.before.rules:
            assert rule.describe() in part.approval_properties()["before"]
    assert len({part.change_id for part in parts}) == len(parts)


def test_a_split_keeps_the_rules_the_change_kept_untouched() -> None:
    rules = open_rules(13)
    change = revoke(rules, kept=rules[:1])
    parts = change.split_for_approval()
    assert_each_part_shows_everything(parts)
    assert {rule for part in parts for rule in part.revoked} == set(change.revoked)  # type: ignore[attr-defined]
    assert rules[0] not in {rule for part in parts for rule in part.before.rules}  # type: ignore[attr-defined]


def test_a_policy_attached_to_many_entities_is_detached_by_several_changes() -> None:
    roles = tuple(f"deployment-pipeline-role-{index:02d}" for index in range(15))
    change = detach(roles)
    parts = change.split_for_approval()
    assert len(parts) > 1
    assert_each_part_shows_everything(parts)
    detached = set().union(*(part.detached for part in parts))  # type: ignore[attr-defined]
    assert detached == change.detached


def test_a_value_no_split_shortens_is_refused() -> None:
    long_arn = f"arn:aws:iam::{ACCOUNT}:policy/{'platform/' * 30}AdminEverything"
    change = detach(("ci",), resource_arn=long_arn)
    with pytest.raises(ApprovalTextTooLong) as refused:
        change.split_for_approval()
    assert refused.value.names == ("resource",)


def test_a_single_part_too_long_to_show_is_refused() -> None:
    group = "/aegis/" + "flow-logs-of-the-production-network/" * 8
    change = CreateVpcFlowLogs.propose(
        check_id="ec2-vpc-flow-logs-off",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0abc",
        before=VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=()),
        after=VpcFlowLogs(
            vpc_id="vpc-0abc",
            flow_logs=(FlowLogDestination(log_group_name=group, deliver_logs_role_arn=FLOW_LOG.deliver_logs_role_arn),),
        ),
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.LOW,
    )
    with pytest.raises(ApprovalTextTooLong, match="after"):
        change.split_for_approval()
