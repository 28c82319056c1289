"""Planning never proposes a change whose approval text would be cut on the approver's phone: a security group with
too many rules to show is revoked by several changes, each showing all of its rules; a change no split shortens is
not planned, and the report says why (unplanned: approval-text-too-long)."""

from __future__ import annotations

from typing import Any

from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.checks import CHECKS
from aegis.checks.base import PlanConfig
from aegis.models import Finding
from aegis.partitions import home_region
from aegis_agent.plan import PlanNoteReason, make_plan
from aegis_agent.report import Disposition
from aegis_agent.state import PlanPolicy, PlanStatus
from tests.support.agent_world import report_of

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ADMIN_PORTS = CHECKS["ec2-admin-port-open-ipv4"]
ADMIN_POLICY = CHECKS["iam-admin-policy-attached"]


def policy(**overrides: Any) -> PlanPolicy:
    return PlanPolicy(**({"max_changes_per_mission": 10, "max_share_per_resource_type": 1.0} | overrides))


def propose(finding: Finding) -> Any:
    return CHECKS[finding.check_id].propose(finding, PlanConfig())


def open_group(rule_count: int) -> Finding:
    """The admin-port check's finding for a group whose SSH is open to the world through `rule_count` rules."""
    rules = [
        {
            "rule_id": f"sgr-{index:017x}",
            "is_egress": False,
            "ip_protocol": "tcp",
            "from_port": 22,
            "to_port": 22 + index,
            "cidr_ipv4": "0.0.0.0/0",
        }
        for index in range(rule_count)
    ]
    return ADMIN_PORTS.METADATA.finding(
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123456789abcdef0",
        account_id=ACCOUNT,
        region=REGION,
        evidence={
            "group_id": "sg-0123456789abcdef0",
            "vpc_id": "vpc-0abc",
            "source": "0.0.0.0/0",
            "exposed_ports": [22],
            "rules": rules,
        },
    )


def long_policy_finding() -> Finding:
    """An admin policy under an IAM path long enough that its ARN alone does not fit the approver's screen."""
    return ADMIN_POLICY.METADATA.finding(
        resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/{'platform/' * 30}AdminEverything",
        account_id=ACCOUNT,
        region=home_region("aws"),
        evidence={"attachments": {"roles": ["ci"], "users": [], "groups": []}},
    )


def test_a_group_with_too_many_rules_to_show_is_planned_as_several_changes_that_revoke_them_all() -> None:
    finding = open_group(12)
    whole = propose(finding)
    assert isinstance(whole, RevokeSecurityGroupRules)
    assert whole.overlong_properties() == ("before",)  # one change would not show every rule

    plan = make_plan([finding], policy(), propose)

    assert plan.status == PlanStatus.PROPOSED
    assert len(plan.changes) > 1
    assert plan.notes == ()
    for change in plan.changes:
        assert isinstance(change, RevokeSecurityGroupRules)
        change.approval_properties()  # shows everything: raises otherwise
        assert (change.check_id, change.resource_arn) == (finding.check_id, finding.resource_arn)
    revoked = [rule for change in plan.changes for rule in change.revoked]  # type: ignore[attr-defined]
    assert revoked == list(whole.revoked)


def test_the_parts_of_a_split_count_against_the_change_cap_but_are_one_capped_finding() -> None:
    finding = open_group(12)
    parts = len(make_plan([finding], policy(), propose).changes)
    capped = make_plan([finding], policy(max_changes_per_mission=parts - 1), propose)
    assert capped.status == PlanStatus.CAPPED
    assert capped.capped_finding_ids == (finding.finding_id,)


def test_a_change_no_split_shortens_is_not_planned_and_reported_as_not_remediable() -> None:
    finding = long_policy_finding()
    assert isinstance(propose(finding), DetachPolicy)

    plan = make_plan([finding], policy(), propose)

    assert plan.changes == ()
    assert [(n.finding_id, n.reason) for n in plan.notes] == [
        (finding.finding_id, PlanNoteReason.APPROVAL_TEXT_TOO_LONG)
    ]
    [reported] = report_of([finding], plan, policy()).findings
    assert (reported.disposition, reported.reason) == (Disposition.UNPLANNED, "approval-text-too-long")


def test_the_long_policy_is_refused_for_its_arn_not_its_attachments() -> None:
    change = propose(long_policy_finding())
    assert change.overlong_properties() == ("resource",)
    assert change.before == PolicyAttachments(roles=("ci",))
