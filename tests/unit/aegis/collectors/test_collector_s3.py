"""The S3 collector: one bucket listing that asks for regions, and per-bucket values fetched at most once."""

from __future__ import annotations

from aegis.collectors import Inventory
from aegis.collectors.s3 import Bucket


def test_the_bucket_listing_asks_for_regions_and_a_listed_region_costs_no_call(aws):
    s3 = aws.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="here")
    s3.create_bucket(Bucket="there", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    inventory = Inventory.from_session(aws, "us-east-1")
    sent = []
    client = inventory.collectors.clients.client("s3", "us-east-1")
    client.meta.events.register("before-parameter-build.s3.ListBuckets", lambda params, **_: sent.append(params))

    names = [b.name for b in inventory.s3.buckets()]

    assert sorted(names) == ["here", "there"]
    assert sent == [{"MaxBuckets": 10_000}]  # AWS returns BucketRegion only when a parameter is given
    assert inventory.s3.bucket_region(Bucket("listed", "ap-south-1")) == "ap-south-1"
    assert "s3.GetBucketLocation" not in inventory.collectors.clients.api_calls
    # Where the server omits BucketRegion (moto does), the region is looked up, once per bucket.
    there = next(b for b in inventory.s3.buckets() if b.name == "there")
    assert inventory.s3.bucket_region(there) == "eu-west-2"
    assert inventory.s3.bucket_region(there) == "eu-west-2"
    assert inventory.s3.bucket_region(next(b for b in inventory.s3.buckets() if b.name == "here")) == "us-east-1"
    assert inventory.collectors.clients.api_calls["s3.GetBucketLocation"] == 2
    assert inventory.collectors.clients.api_calls["s3.ListBuckets"] == 1


def test_missing_configurations_read_as_absent(aws):
    aws.client("s3", region_name="us-east-1").create_bucket(Bucket="bare")
    s3 = Inventory.from_session(aws, "us-east-1").s3

    assert s3.account_public_access_block().configured is False
    assert s3.bucket_public_access_block("bare").configured is False
    assert s3.bucket_policy("bare") is None
    assert s3.bucket_tags("bare") == {}
    assert s3.bucket_public_acl_grants("bare") == []
