"""Fixtures for the check tests: small builders, in the root `aws` fixture's moto account, for the resources checks
read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from aegis.collectors import Inventory

REGION = "us-east-1"


@pytest.fixture
def inventory(aws: boto3.Session) -> Callable[..., Inventory]:
    """A fresh inventory (fresh collectors, fresh call counts) of a region, made after the test's setup."""

    def make(region: str = REGION) -> Inventory:
        return Inventory.from_session(aws, region)

    return make


@pytest.fixture
def ec2(aws: boto3.Session) -> Any:
    return aws.client("ec2", region_name=REGION)


def _permission(port: int, cidr: str, to_port: int | None = None, protocol: str = "tcp") -> dict[str, Any]:
    ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}
    return {"IpProtocol": protocol, "FromPort": port, "ToPort": port if to_port is None else to_port, **ranges}


@pytest.fixture
def permission() -> Callable[..., dict[str, Any]]:
    """An IpPermissions entry: permission(22, "0.0.0.0/0"), permission(0, "::/0", 65535), protocol="udp"."""
    return _permission


@pytest.fixture
def new_group(ec2: Any) -> Callable[..., str]:
    """Create a security group in a new VPC with the given ingress permissions and tags; returns its id."""
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    count = iter(range(1000))

    def make(permissions: list[dict[str, Any]], tags: dict[str, str] | None = None, egress: bool = False) -> str:
        extra: dict[str, Any] = {}
        if tags:
            pairs = [{"Key": k, "Value": v} for k, v in tags.items()]
            extra["TagSpecifications"] = [{"ResourceType": "security-group", "Tags": pairs}]
        group_id = ec2.create_security_group(
            GroupName=f"test-{next(count)}", Description="test", VpcId=vpc_id, **extra
        )["GroupId"]
        if permissions:
            authorize = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
            authorize(GroupId=group_id, IpPermissions=permissions)
        return str(group_id)

    return make


@pytest.fixture
def rule_ids(ec2: Any) -> Callable[..., set[str]]:
    """Ids of a group's rules whose fields equal the given ones, e.g. rule_ids(group_id, FromPort=22)."""

    def find(group_id: str, **match: Any) -> set[str]:
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        return {
            r["SecurityGroupRuleId"]
            for r in rules["SecurityGroupRules"]
            if all(r.get(k) == v for k, v in match.items())
        }

    return find
