"""The ARN builders of aegis.checks.base, in each partition: a regional ARN takes its region's partition, an ARN
without a region the partition it is given."""

from __future__ import annotations

import pytest

from aegis.checks.base import (
    account_root_arn,
    bucket_arn,
    ebs_default_encryption_arn,
    security_group_arn,
    trail_arn,
    trails_arn,
    vpc_arn,
)
from aegis.partitions import arn_partition

ACCOUNT = "123456789012"
# (partition, a region of it)
PARTITIONS = [("aws", "eu-west-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1")]


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=[p for p, _ in PARTITIONS])
def test_every_builder_builds_in_the_partition(partition: str, region: str) -> None:
    where = f"{partition}:ec2:{region}:{ACCOUNT}"
    built = [
        (account_root_arn(partition, ACCOUNT), f"arn:{partition}:iam::{ACCOUNT}:root"),
        (bucket_arn(partition, "logs"), f"arn:{partition}:s3:::logs"),
        (security_group_arn(region, ACCOUNT, "sg-0abc"), f"arn:{where}:security-group/sg-0abc"),
        (vpc_arn(region, ACCOUNT, "vpc-0abc"), f"arn:{where}:vpc/vpc-0abc"),
        (ebs_default_encryption_arn(region, ACCOUNT), f"arn:{where}:volume/*"),
        (trails_arn(region, ACCOUNT), f"arn:{partition}:cloudtrail:{region}:{ACCOUNT}:trail/*"),
        (trail_arn(region, ACCOUNT, "org"), f"arn:{partition}:cloudtrail:{region}:{ACCOUNT}:trail/org"),
    ]
    for arn, expected in built:
        assert arn == expected
        assert arn_partition(arn) == partition
