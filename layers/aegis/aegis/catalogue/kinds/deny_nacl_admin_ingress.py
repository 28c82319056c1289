"""Turn network ACL ingress entries that let the internet reach SSH or RDP from allow into deny (CIS v5 5.2 / v7 6.2).

Each entry is replaced in place (ReplaceNetworkAclEntry: same rule number, protocol, port range and CIDR, Egress
false), so its position in the ACL's evaluation order stays and nothing is created or deleted. Undo replaces it with
allow again. An entry is all or nothing: denying an "all traffic from 0.0.0.0/0" entry blocks every inbound packet
it let through, not only SSH and RDP; hence HIGH risk, and the approval text says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen

NETWORK_ACL_ID_PATTERN = r"acl-[0-9a-f]{8,17}"
# Rule numbers a person may write; 32767 is the ACL's fixed catch-all deny, listed but never replaceable.
MAX_RULE_NUMBER = 32766
CATCH_ALL_RULE_NUMBER = 32767
# IANA protocol numbers as the NACL API spells them ("-1": all protocols).
PROTOCOL_NAMES = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


class NaclEntry(Frozen):
    """One ingress entry of a network ACL, with the fields ReplaceNetworkAclEntry takes (ICMP type and code are left
    out: the kind only ever changes entries of all protocols or TCP)."""

    rule_number: int = Field(ge=1, le=CATCH_ALL_RULE_NUMBER)
    protocol: str
    rule_action: Literal["allow", "deny"]
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    # None for an entry of all protocols (the API then lists no port range).
    from_port: int | None = None
    to_port: int | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.cidr_ipv4 is None) == (self.cidr_ipv6 is None):
            raise ValueError("a network ACL entry has exactly one source CIDR, IPv4 or IPv6")
        return self

    @classmethod
    def from_aws(cls, entry: dict[str, Any]) -> NaclEntry:
        """One entry of DescribeNetworkAcls' `Entries`."""
        ports = entry.get("PortRange") or {}
        return cls(
            rule_number=int(entry["RuleNumber"]),
            protocol=str(entry["Protocol"]),
            rule_action=entry["RuleAction"],
            cidr_ipv4=entry.get("CidrBlock"),
            cidr_ipv6=entry.get("Ipv6CidrBlock"),
            from_port=ports.get("From"),
            to_port=ports.get("To"),
        )

    @property
    def source(self) -> str:
        return str(self.cidr_ipv4 or self.cidr_ipv6)

    def with_action(self, action: Literal["allow", "deny"]) -> NaclEntry:
        return self.model_copy(update={"rule_action": action})

    def same_match(self, other: NaclEntry) -> bool:
        """Both entries match the same packets (whatever they do with them)."""
        return self.with_action("allow") == other.with_action("allow")

    def replace_request(self, network_acl_id: str) -> dict[str, Any]:
        """ReplaceNetworkAclEntry's parameters that make the ACL's ingress entry at this rule number exactly this."""
        request: dict[str, Any] = {
            "NetworkAclId": network_acl_id,
            "RuleNumber": self.rule_number,
            "Protocol": self.protocol,
            "RuleAction": self.rule_action,
            "Egress": False,
        }
        if self.cidr_ipv4:
            request["CidrBlock"] = self.cidr_ipv4
        else:
            request["Ipv6CidrBlock"] = self.cidr_ipv6
        if self.from_port is not None and self.to_port is not None:
            request["PortRange"] = {"From": self.from_port, "To": self.to_port}
        return request

    def describe(self) -> str:
        protocol = PROTOCOL_NAMES.get(self.protocol, self.protocol)
        ports = "" if self.from_port is None else f"/{self.from_port}-{self.to_port}"
        return f"#{self.rule_number} in {protocol}{ports} from {self.source} {self.rule_action}"


class NaclIngressEntries(Frozen):
    """Some ingress entries of one network ACL (those a change is about, the ACL being the change's resource)."""

    entries: tuple[NaclEntry, ...]

    def by_rule(self) -> dict[int, NaclEntry]:
        return {entry.rule_number: entry for entry in self.entries}

    def describe(self) -> str:
        return "; ".join(entry.describe() for entry in self.entries) or "no such entries"


class DenyNaclAdminIngress(ChangeBase):
    kind: Literal["deny-nacl-admin-ingress"] = "deny-nacl-admin-ingress"
    before: NaclIngressEntries
    after: NaclIngressEntries

    TITLE = "Deny network ACL entries open to SSH/RDP from anywhere"
    APPLY_ACTIONS = ("ec2:ReplaceNetworkAclEntry",)
    READ_ACTIONS = ("ec2:DescribeNetworkAcls",)
    UNDO_ACTIONS = ("ec2:ReplaceNetworkAclEntry",)
    UNSCOPED_ACTIONS = ("ec2:DescribeNetworkAcls",)
    REGION_SCOPE = "scanned"

    @property
    def network_acl_id(self) -> str:
        return self.resource_arn.rsplit("/", 1)[-1]

    def assert_narrows(self) -> None:
        prefix = re.escape(f"arn:{self.partition}:ec2:{self.region}:{self.account_id}:network-acl/")
        if not re.fullmatch(prefix + NETWORK_ACL_ID_PATTERN, self.resource_arn):
            raise ValueError("resource_arn must be a network ACL ARN of the change's account and region")
        before, after = self.before.by_rule(), self.after.by_rule()
        if not before or len(before) != len(self.before.entries) or len(after) != len(self.after.entries):
            raise WideningChange("the change names at least one entry, each rule number once")
        if set(before) != set(after):
            raise WideningChange("after must name exactly the entries before")
        if max(before) > MAX_RULE_NUMBER:
            raise ValueError("the catch-all entry (rule 32767) cannot be replaced")
        for number, entry in before.items():
            if entry.rule_action != "allow" or after[number] != entry.with_action("deny"):
                raise WideningChange("each entry must go from allow to deny, matching the same traffic")

    def summary(self) -> str:
        numbers = ",".join(str(entry.rule_number) for entry in self.before.entries)
        return f"Deny NACL rule {numbers} on {self.network_acl_id}"

    def describe_after(self) -> str:
        return f"{self.after.describe()}; denies ALL traffic each entry allowed, not only 22/3389"

    # Each entry is replaced by its own call and the executor reads only the entries a change names: an ACL with too
    # many open entries to show at once is fixed by several changes, each showing all of its entries.
    def approval_parts(self) -> tuple[Any, ...]:
        return self.before.entries

    def with_parts(self, items: Sequence[Any]) -> DenyNaclAdminIngress:
        return self.with_states(
            before=NaclIngressEntries(entries=tuple(items)),
            after=NaclIngressEntries(entries=tuple(entry.with_action("deny") for entry in items)),
        )
