"""aegis.partitions: a region's partition and IAM's home region in it come from botocore's endpoint data."""

from __future__ import annotations

import re

import botocore.session
import pytest

from aegis.partitions import (
    PARTITION_PATTERN,
    MixedPartitions,
    UnknownRegion,
    arn_partition,
    home_region,
    home_region_of,
    partition_of,
    partition_of_regions,
)

# (region, its partition, IAM's home region in that partition)
REGIONS = [
    ("us-east-1", "aws", "us-east-1"),
    ("eu-west-1", "aws", "us-east-1"),
    ("ap-southeast-2", "aws", "us-east-1"),
    ("us-gov-west-1", "aws-us-gov", "us-gov-west-1"),
    ("us-gov-east-1", "aws-us-gov", "us-gov-west-1"),
    ("cn-north-1", "aws-cn", "cn-north-1"),
    ("cn-northwest-1", "aws-cn", "cn-north-1"),
]


@pytest.mark.parametrize(("region", "partition", "home"), REGIONS)
def test_a_regions_partition_and_home_region(region: str, partition: str, home: str) -> None:
    assert partition_of(region) == partition
    assert home_region(partition) == home
    assert home_region_of(region) == home


@pytest.mark.parametrize("region", ["zz-east-1", "us-gov-moon-1x", "", "EU-WEST-1"])
def test_a_region_of_no_partition_is_named_unknown(region: str) -> None:
    with pytest.raises(UnknownRegion, match="no AWS partition has region"):
        partition_of(region)


def test_an_unknown_partition_has_no_home_region() -> None:
    with pytest.raises(UnknownRegion, match="no AWS partition is called"):
        home_region("aws-moon")


def test_a_partition_without_a_global_iam_endpoint_has_its_implicit_global_region_as_home() -> None:
    # botocore's endpoint data lists no global IAM endpoint for the European Sovereign Cloud.
    assert home_region(partition_of("eusc-de-east-1")) == "eusc-de-east-1"


@pytest.mark.parametrize(
    ("arn", "partition"),
    [
        ("arn:aws:iam::123456789012:root", "aws"),
        ("arn:aws-us-gov:s3:::bucket", "aws-us-gov"),
        ("arn:aws-cn:ec2:cn-north-1:123456789012:vpc/vpc-1", "aws-cn"),
        ("arn:aws-iso-b:kms:us-isob-east-1:123456789012:key/k", "aws-iso-b"),
        ("arn:awsx:s3:::bucket", None),
        ("arn::s3:::bucket", None),
        ("aws:s3:::bucket", None),
        ("arn:AWS:s3:::bucket", None),
        ("", None),
    ],
)
def test_the_partition_an_arn_names(arn: str, partition: str | None) -> None:
    assert arn_partition(arn) == partition


def test_every_partition_botocore_knows_fits_the_arn_pattern() -> None:
    partitions = botocore.session.get_session().get_available_partitions()
    assert {"aws", "aws-us-gov", "aws-cn"} <= set(partitions)
    assert all(re.fullmatch(PARTITION_PATTERN, partition) for partition in partitions)


def test_the_regions_of_one_account_are_of_one_partition() -> None:
    assert partition_of_regions(["us-gov-west-1", "us-gov-east-1"]) == "aws-us-gov"
    with pytest.raises(MixedPartitions, match="aws, aws-cn"):
        partition_of_regions(["us-east-1", "cn-north-1"])
    with pytest.raises(UnknownRegion):
        partition_of_regions(["us-east-1", "xx-nowhere-1"])
