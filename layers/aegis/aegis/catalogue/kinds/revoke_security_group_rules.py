"""Revoke exactly the listed security-group rules, by SecurityGroupRuleId (CIS 5.3, 5.4, 5.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from aegis.catalogue.base import ChangeBase, Phase, WideningChange
from aegis.models import Frozen


def ports_and_peer(rule: dict[str, Any]) -> dict[str, Any]:
    """The optional fields of a DescribeSecurityGroupRules entry, each None when the entry leaves it out: the port
    range and the one peer (a CIDR, a prefix list or a referenced group)."""
    return {
        "from_port": rule.get("FromPort"),
        "to_port": rule.get("ToPort"),
        "cidr_ipv4": rule.get("CidrIpv4"),
        "cidr_ipv6": rule.get("CidrIpv6"),
        "prefix_list_id": rule.get("PrefixListId"),
        "referenced_group_id": (rule.get("ReferencedGroupInfo") or {}).get("GroupId"),
    }


class SecurityGroupRule(Frozen):
    rule_id: str = Field(pattern=r"^sgr-[0-9a-f]+$")
    is_egress: bool
    ip_protocol: str
    from_port: int | None = None
    to_port: int | None = None
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None

    @classmethod
    def from_aws(cls, rule: dict[str, Any]) -> SecurityGroupRule:
        """One entry of DescribeSecurityGroupRules."""
        return cls(
            rule_id=rule["SecurityGroupRuleId"],
            is_egress=bool(rule["IsEgress"]),
            ip_protocol=str(rule["IpProtocol"]),
            **ports_and_peer(rule),
        )

    def ip_permission(self) -> dict[str, Any]:
        """The IpPermissions entry that authorises exactly this rule again (under a new rule id)."""
        permission: dict[str, Any] = {"IpProtocol": self.ip_protocol}
        if self.from_port is not None:
            permission["FromPort"] = self.from_port
        if self.to_port is not None:
            permission["ToPort"] = self.to_port
        if self.cidr_ipv4:
            permission["IpRanges"] = [{"CidrIp": self.cidr_ipv4}]
        if self.cidr_ipv6:
            permission["Ipv6Ranges"] = [{"CidrIpv6": self.cidr_ipv6}]
        if self.prefix_list_id:
            permission["PrefixListIds"] = [{"PrefixListId": self.prefix_list_id}]
        if self.referenced_group_id:
            permission["UserIdGroupPairs"] = [{"GroupId": self.referenced_group_id}]
        return permission

    def describe(self) -> str:
        direction = "out" if self.is_egress else "in"
        ports = "all" if self.from_port in (None, -1) else f"{self.from_port}-{self.to_port}"
        peer = self.cidr_ipv4 or self.cidr_ipv6 or self.prefix_list_id or self.referenced_group_id or "?"
        return f"{self.rule_id} {direction} {self.ip_protocol}/{ports} {peer}"


class SecurityGroupRules(Frozen):
    group_id: str = Field(pattern=r"^sg-[0-9a-f]+$")
    rules: tuple[SecurityGroupRule, ...]


class RevokeSecurityGroupRules(ChangeBase):
    kind: Literal["revoke-security-group-rules"] = "revoke-security-group-rules"
    before: SecurityGroupRules
    after: SecurityGroupRules

    TITLE = "Revoke security-group rules"
    APPLY_ACTIONS = ("ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress")
    READ_ACTIONS = ("ec2:DescribeSecurityGroupRules",)
    UNDO_ACTIONS = ("ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress")
    UNSCOPED_ACTIONS = ("ec2:DescribeSecurityGroupRules",)
    REGION_SCOPE = "scanned"

    @property
    def group_id(self) -> str:
        return self.before.group_id

    @property
    def revoked(self) -> tuple[SecurityGroupRule, ...]:
        kept = set(self.after.rules)
        return tuple(rule for rule in self.before.rules if rule not in kept)

    def assert_narrows(self) -> None:
        if self.after.group_id != self.before.group_id:
            raise WideningChange("before and after name different security groups")
        if not set(self.after.rules) < set(self.before.rules):
            raise WideningChange("after must keep a strict subset of the rules before")

    def summary(self) -> str:
        ports = sorted({str(r.from_port) for r in self.revoked if r.from_port not in (None, -1)}) or ["all"]
        return f"Close {','.join(ports)} on {self.group_id}"

    def describe_before(self) -> str:
        return "; ".join(rule.describe() for rule in self.before.rules)

    def describe_after(self) -> str:
        return "; ".join(rule.describe() for rule in self.after.rules) or "rules revoked"

    def scoped_resources(self, phase: Phase) -> list[str]:
        # Revoke/Authorize are authorised on the group; the rule ids are pinned by the executor's call itself.
        return [self.resource_arn]

    # Each revoked rule is revoked by its own id, and the executor checks only the rules a change names: a group
    # with too many rules to show at once is revoked by several changes, each showing all of its rules.
    def approval_parts(self) -> tuple[Any, ...]:
        return self.revoked

    def with_parts(self, items: Sequence[Any]) -> RevokeSecurityGroupRules:
        return self.with_states(
            before=SecurityGroupRules(group_id=self.group_id, rules=tuple(items)),
            after=SecurityGroupRules(group_id=self.group_id, rules=()),
        )
