"""AWS partitions (`aws`, `aws-us-gov`, `aws-cn` ...): which one a region is in, and where account-wide settings
live in it.

An account lives in one partition, and every ARN of its resources begins `arn:<partition>:`. No code names a
partition: a region's partition is what botocore's endpoint data says (the data the SDK routes every call with), so
a scan of us-gov-west-1 builds `arn:aws-us-gov:` ARNs and a change addressed to cn-north-1 must name `arn:aws-cn:`
ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

import botocore.loaders
import botocore.regions
from botocore.exceptions import UnknownRegionError

# The partition field of an ARN: `aws`, or `aws-` and a suffix (`aws-us-gov`, `aws-cn`, `aws-iso-b` ...). A pattern
# only says "an ARN of some partition"; whether it is the right one is the caller's check against the region's.
PARTITION_PATTERN = r"aws(?:-[a-z]+)*"
_ARN_PARTITION = re.compile(rf"^arn:({PARTITION_PATTERN}):")


class UnknownRegion(ValueError):
    """A region name that is in no AWS partition botocore knows (a typo, or a region newer than the SDK)."""


class MixedPartitions(ValueError):
    """Regions of more than one partition where one account's regions are meant: an account lives in one."""


@cache
def _endpoint_data() -> dict[str, Any]:
    # Loaded once per process (about 20 ms), by a loader of its own: no boto3 session is opened for it.
    data: dict[str, Any] = botocore.loaders.create_loader().load_data("endpoints")
    return data


@cache
def partition_of(region: str) -> str:
    """The partition `region` belongs to: "aws" for us-east-1, "aws-us-gov" for us-gov-west-1, "aws-cn" for
    cn-north-1. UnknownRegion if no partition has it."""
    try:
        return str(botocore.regions.EndpointResolver(_endpoint_data()).get_partition_for_region(region))
    except UnknownRegionError as exc:
        raise UnknownRegion(f"no AWS partition has region {region!r}") from exc


def url_suffix(partition: str) -> str:
    """The partition's DNS suffix (CloudFormation's `AWS::URLSuffix`): amazonaws.com, amazonaws.com.cn ..."""
    for candidate in _endpoint_data()["partitions"]:
        if candidate["partition"] == partition:
            return str(candidate["dnsSuffix"])
    raise UnknownRegion(f"no AWS partition is called {partition!r}")


def partition_of_regions(regions: Iterable[str]) -> str:
    """The one partition all `regions` are in (at least one region). UnknownRegion for a region of no partition,
    MixedPartitions for regions of two."""
    partitions = {partition_of(region) for region in regions}
    if len(partitions) != 1:
        raise MixedPartitions(f"regions of one partition only, not of {', '.join(sorted(partitions)) or 'none'}")
    return partitions.pop()


@cache
def home_region(partition: str) -> str:
    """IAM's home region in `partition`: the region IAM's global endpoint signs in (us-east-1, us-gov-west-1,
    cn-north-1). Account-wide settings (IAM's, S3's account-level Block Public Access) are read through it, and
    their findings and changes are addressed to it, whatever regions a scan covers.

    In a partition where IAM has no global endpoint, the partition's implicit global region stands in (what the SDK
    signs other global services with there)."""
    for candidate in _endpoint_data()["partitions"]:
        if candidate["partition"] != partition:
            continue
        iam = candidate["services"].get("iam", {})
        global_endpoint = iam.get("endpoints", {}).get(iam.get("partitionEndpoint", ""), {})
        signing_region = global_endpoint.get("credentialScope", {}).get("region")
        if signing_region:
            return str(signing_region)
        return _implicit_global_region(partition)
    raise UnknownRegion(f"no AWS partition is called {partition!r}")


def _implicit_global_region(partition: str) -> str:
    partitions = botocore.loaders.create_loader().load_data("partitions")["partitions"]
    return str(next(p["outputs"]["implicitGlobalRegion"] for p in partitions if p["id"] == partition))


def home_region_of(region: str) -> str:
    """IAM's home region in the partition of `region`."""
    return home_region(partition_of(region))


def arn_partition(arn: str) -> str | None:
    """The partition an ARN names (`arn:<partition>:...`), or None if `arn` is not an ARN."""
    match = _ARN_PARTITION.match(arn)
    return match.group(1) if match else None


__all__ = [
    "PARTITION_PATTERN",
    "MixedPartitions",
    "UnknownRegion",
    "arn_partition",
    "home_region",
    "home_region_of",
    "partition_of",
    "partition_of_regions",
    "url_suffix",
]
