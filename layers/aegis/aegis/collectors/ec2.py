"""Read-only EC2 inventory of one region: security groups and their rules, interfaces using groups, VPCs and their
flow logs, EBS encryption by default, instances' metadata options and network ACLs' ingress entries.

Every listing is one paginated call per page (1,000 items a page where the API allows), never one call per resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aegis.catalogue.kinds.deny_nacl_admin_ingress import NaclEntry
from aegis.catalogue.kinds.require_imdsv2 import GONE_STATES, InstanceMetadataOptions
from aegis.catalogue.kinds.revoke_security_group_rules import SecurityGroupRule, ports_and_peer
from aegis.collectors.base import ServiceCollector, tag_dict

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    group_id: str
    vpc_id: str | None
    is_default: bool
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupRule:
    """One rule of one group, with only the fields the checks and the catalogue need (no descriptions, no tags)."""

    group_id: str
    rule_id: str
    is_egress: bool
    ip_protocol: str
    from_port: int | None
    to_port: int | None
    cidr_ipv4: str | None
    cidr_ipv6: str | None
    prefix_list_id: str | None
    referenced_group_id: str | None

    @classmethod
    def from_aws(cls, rule: dict[str, Any]) -> GroupRule:
        return cls(
            group_id=rule["GroupId"],
            rule_id=rule["SecurityGroupRuleId"],
            is_egress=bool(rule.get("IsEgress")),
            ip_protocol=str(rule.get("IpProtocol", "-1")),
            **ports_and_peer(rule),
        )

    def to_catalogue(self) -> SecurityGroupRule:
        return SecurityGroupRule(
            rule_id=self.rule_id,
            is_egress=self.is_egress,
            ip_protocol=self.ip_protocol,
            from_port=self.from_port,
            to_port=self.to_port,
            cidr_ipv4=self.cidr_ipv4,
            cidr_ipv6=self.cidr_ipv6,
            prefix_list_id=self.prefix_list_id,
            referenced_group_id=self.referenced_group_id,
        )


@dataclass(frozen=True, slots=True)
class Vpc:
    vpc_id: str
    is_default: bool
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Instance:
    """An instance that exists (not shutting down or terminated), with its metadata options and tags only."""

    instance_id: str
    state: str
    metadata_options: InstanceMetadataOptions
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NetworkAcl:
    """A network ACL with its ingress entries (egress is no check's business) and how many subnets it governs."""

    network_acl_id: str
    vpc_id: str | None
    is_default: bool
    ingress: tuple[NaclEntry, ...]
    subnets: int
    tags: dict[str, str] = field(default_factory=dict)


# Every state but those of an instance on its way out (which no change can fix, and which AWS soon forgets).
LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped")


class Ec2Collector(ServiceCollector):
    def security_groups(self) -> dict[str, SecurityGroup]:
        """Every group of the region by id (for the default flag, the VPC and the tags)."""
        return self._once.get("security_groups", self._list_security_groups)

    def _list_security_groups(self) -> dict[str, SecurityGroup]:
        groups: dict[str, SecurityGroup] = {}
        pages = self._client.get_paginator("describe_security_groups").paginate(
            PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            for group in page.get("SecurityGroups", []):
                groups[group["GroupId"]] = SecurityGroup(
                    group_id=group["GroupId"],
                    vpc_id=group.get("VpcId"),
                    is_default=group.get("GroupName") == "default",
                    tags=tag_dict(group.get("Tags")),
                )
        return groups

    def security_group_rules(self) -> list[GroupRule]:
        """Every rule of every group of the region, 1,000 a page."""
        return self._once.get("security_group_rules", self._list_rules)

    def _list_rules(self) -> list[GroupRule]:
        pages = self._client.get_paginator("describe_security_group_rules").paginate(
            PaginationConfig={"PageSize": PAGE_SIZE}
        )
        return [GroupRule.from_aws(rule) for page in pages for rule in page.get("SecurityGroupRules", [])]

    def groups_in_use(self, group_ids: Iterable[str]) -> set[str]:
        """Which of `group_ids` are attached to at least one network interface of the region."""
        return self.attached_group_ids() & set(group_ids)

    def attached_group_ids(self) -> set[str]:
        """Every group attached to a network interface: one paginated interface listing for all groups, not one
        call per group. (Unfiltered: a group-id filter would save little and is not supported everywhere.)"""
        return self._once.get("attached_groups", self._list_attached_groups)

    def _list_attached_groups(self) -> set[str]:
        pages = self._client.get_paginator("describe_network_interfaces").paginate(
            PaginationConfig={"PageSize": PAGE_SIZE}
        )
        return {
            group["GroupId"]
            for page in pages
            for interface in page.get("NetworkInterfaces", [])
            for group in interface.get("Groups", [])
            if group.get("GroupId")
        }

    def ebs_encryption_by_default(self) -> bool:
        return self._once.get(
            "ebs", lambda: bool(self._client.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
        )

    def vpcs(self) -> list[Vpc]:
        return self._once.get("vpcs", self._list_vpcs)

    def _list_vpcs(self) -> list[Vpc]:
        pages = self._client.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": PAGE_SIZE})
        return [
            Vpc(vpc_id=vpc["VpcId"], is_default=bool(vpc.get("IsDefault")), tags=tag_dict(vpc.get("Tags")))
            for page in pages
            for vpc in page.get("Vpcs", [])
        ]

    def flow_log_resource_ids(self) -> set[str]:
        """Ids of the resources (VPCs, subnets, interfaces) that have at least one flow log: one listing for all."""
        return self._once.get("flow_logs", self._list_flow_logs)

    def _list_flow_logs(self) -> set[str]:
        pages = self._client.get_paginator("describe_flow_logs").paginate(PaginationConfig={"PageSize": PAGE_SIZE})
        return {log["ResourceId"] for page in pages for log in page.get("FlowLogs", []) if log.get("ResourceId")}

    def instances(self) -> list[Instance]:
        """Every live instance of the region: one paginated DescribeInstances listing (1,000 a page), filtered by
        state on the server, never one call per instance."""
        return self._once.get("instances", self._list_instances)

    def _list_instances(self) -> list[Instance]:
        pages = self._client.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}],
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        return [
            Instance(
                instance_id=instance["InstanceId"],
                state=str((instance.get("State") or {}).get("Name", "")),
                metadata_options=InstanceMetadataOptions.from_aws(instance.get("MetadataOptions")),
                tags=tag_dict(instance.get("Tags")),
            )
            for page in pages
            for reservation in page.get("Reservations", [])
            for instance in reservation.get("Instances", [])
            if (instance.get("State") or {}).get("Name") not in GONE_STATES
        ]

    def network_acls(self) -> list[NetworkAcl]:
        """Every network ACL of the region with its ingress entries: one paginated listing for all."""
        return self._once.get("network_acls", self._list_network_acls)

    def _list_network_acls(self) -> list[NetworkAcl]:
        pages = self._client.get_paginator("describe_network_acls").paginate(PaginationConfig={"PageSize": PAGE_SIZE})
        return [
            NetworkAcl(
                network_acl_id=acl["NetworkAclId"],
                vpc_id=acl.get("VpcId"),
                is_default=bool(acl.get("IsDefault")),
                ingress=tuple(
                    sorted(
                        (NaclEntry.from_aws(entry) for entry in acl.get("Entries", []) if not entry.get("Egress")),
                        key=lambda entry: entry.rule_number,
                    )
                ),
                subnets=len(acl.get("Associations", [])),
                tags=tag_dict(acl.get("Tags")),
            )
            for page in pages
            for acl in page.get("NetworkAcls", [])
        ]
