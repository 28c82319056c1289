"""Buckets that accept plain HTTP: CIS v5.0.0 2.1.1 / v7.0.0 3.1.1."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from aegis.catalogue.bucket_policies import policy_sha256
from aegis.catalogue.kinds.deny_bucket_insecure_transport import (
    DENY_SID,
    DenyBucketInsecureTransport,
    deny_insecure_transport_statement,
)
from aegis.checks import PlanConfig, s3_bucket_insecure_transport_allowed, s3_bucket_public
from aegis.checks.base import EXEMPT_TAG
from aegis.checks.s3_bucket_insecure_transport_allowed import denied_over_http
from aegis.models import Risk
from aegis.secrets_guard import WITHHELD

CHECK = s3_bucket_insecure_transport_allowed
ARN = "arn:aws:s3:::b"


@pytest.fixture
def s3(aws):
    return aws.client("s3", region_name="us-east-1")


def _bucket(s3, name: str, *statements: dict, region: str = "us-east-1") -> str:
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **location)
    if statements:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    return name


def _own_read(bucket: str) -> dict:
    return {
        "Sid": "OwnRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }


def test_buckets_without_the_deny_are_flagged_and_those_with_it_are_not(s3, inventory):
    _bucket(s3, "no-policy")
    _bucket(s3, "other-policy", _own_read("other-policy"), region="eu-west-1")
    s3.put_bucket_tagging(Bucket="other-policy", Tagging={"TagSet": [{"Key": EXEMPT_TAG, "Value": "legacy client"}]})
    _bucket(s3, "denied", _own_read("denied"), deny_insecure_transport_statement("arn:aws:s3:::denied"))

    findings = {f.resource_arn: f for f in CHECK.evaluate(inventory())}

    assert set(findings) == {"arn:aws:s3:::no-policy", "arn:aws:s3:::other-policy"}
    bare, other = findings["arn:aws:s3:::no-policy"], findings["arn:aws:s3:::other-policy"]
    assert bare.evidence == {
        "policy_sha256": None,
        "policy_statement_count": 0,
        "denied_over_http": {"bucket": False, "objects": False},
        "fix_sid_taken": False,
    }
    document = {"Version": "2012-10-17", "Statement": [_own_read("other-policy")]}
    assert other.evidence["policy_sha256"] == policy_sha256(document)
    assert other.evidence["policy_statement_count"] == 1
    assert (other.region, other.tags) == ("eu-west-1", {EXEMPT_TAG: "legacy client"})
    assert (bare.cis_v5, bare.cis_v6, bare.cis_v7, bare.severity) == ("2.1.1", "3.1.1", "3.1.1", "medium")


def test_the_change_adds_the_deny_after_every_statement_the_policy_has(s3, inventory):
    _bucket(s3, "no-policy")
    _bucket(s3, "other-policy", _own_read("other-policy"))
    findings = {f.resource_arn: f for f in CHECK.evaluate(inventory())}

    created = CHECK.propose(findings["arn:aws:s3:::no-policy"], PlanConfig())
    added = CHECK.propose(findings["arn:aws:s3:::other-policy"], PlanConfig())

    assert isinstance(created, DenyBucketInsecureTransport)
    assert isinstance(added, DenyBucketInsecureTransport)
    assert created.risk is Risk.LOW
    assert (created.bucket, created.creates_policy, created.after.index) == ("no-policy", True, 0)
    assert created.statement == deny_insecure_transport_statement("arn:aws:s3:::no-policy")
    assert (added.creates_policy, added.before.statement_count, added.after.index) == (False, 1, 1)
    assert added.before.sha256 == findings["arn:aws:s3:::other-policy"].evidence["policy_sha256"]


def test_nothing_is_proposed_from_withheld_evidence_or_when_the_fix_sid_is_taken(s3, inventory):
    edited = {**deny_insecure_transport_statement("arn:aws:s3:::edited"), "Condition": {}, "Sid": DENY_SID}
    _bucket(s3, "edited", edited)
    [finding] = CHECK.evaluate(inventory())
    assert finding.evidence["fix_sid_taken"] is True
    assert CHECK.propose(finding, PlanConfig()) is None
    withheld = finding.model_copy(
        update={"evidence": {**finding.evidence, "fix_sid_taken": False, "policy_sha256": WITHHELD}}
    )
    assert CHECK.propose(withheld, PlanConfig()) is None


def _deny(**overrides) -> dict:
    return {**deny_insecure_transport_statement(ARN), **overrides}


@pytest.mark.parametrize(
    ("statements", "bucket", "objects"),
    [
        ([_deny()], True, True),
        ([_deny(Principal={"AWS": "*"}, Action="*", Resource=[f"{ARN}*"])], True, True),
        (
            [_deny(Resource=ARN), _deny(Resource=f"{ARN}/*", Condition={"Bool": {"aws:securetransport": False}})],
            True,
            True,
        ),
        ([_deny(Resource="*")], True, True),
        ([_deny(Resource=f"{ARN}/*")], False, True),
        ([_deny(Resource=[ARN, f"{ARN}/public/*"])], True, False),
        ([_deny(Resource=[ARN, f"{ARN}/?"])], True, False),
        ([_deny(Action="s3:GetObject")], False, False),
        ([_deny(Principal={"AWS": "arn:aws:iam::111122223333:root"})], False, False),
        ([_deny(Effect="Allow")], False, False),
        ([_deny(Condition={"Bool": {"aws:SecureTransport": "true"}})], False, False),
        (
            [_deny(Condition={"Bool": {"aws:SecureTransport": "false"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
            False,
            False,
        ),
        ([_deny(Condition={"BoolIfExists": {"aws:SecureTransport": "false"}})], False, False),
        ([{**_deny(), "NotResource": f"{ARN}/x"}], False, False),
        ([], False, False),
    ],
)
def test_what_counts_as_denying_plain_http(statements, bucket, objects):
    document = {"Version": "2012-10-17", "Statement": statements}
    assert denied_over_http(document, ARN) == {"bucket": bucket, "objects": objects}


def test_a_policy_read_by_both_s3_checks_is_fetched_once_per_bucket(s3, inventory):
    for index in range(3):
        _bucket(s3, f"shared-{index}", _own_read(f"shared-{index}"))
    s3.put_bucket_acl(Bucket="shared-0", ACL="public-read")
    inv = inventory()

    CHECK.evaluate(inv)
    s3_bucket_public.evaluate(inv)

    calls = inv.collectors.clients.api_calls
    assert calls["s3.GetBucketPolicy"] == 3
    assert calls["s3.GetBucketTagging"] == 3  # every bucket is flagged by this check; tags are read once each
    assert calls["s3.ListBuckets"] == 1


def test_a_failing_bucket_is_an_error_and_the_others_are_still_checked(s3, inventory):
    _bucket(s3, "ok-bucket")
    _bucket(s3, "denied-bucket")
    inv = inventory()
    client = inv.collectors.clients.client("s3", "us-east-1")

    def deny(params, **_):
        if params.get("Bucket") == "denied-bucket":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetBucketPolicy")

    client.meta.events.register("before-parameter-build.s3.GetBucketPolicy", deny)

    findings = CHECK.evaluate(inv)

    assert [f.resource_arn for f in findings] == ["arn:aws:s3:::ok-bucket"]
    [error] = inv.collectors.errors
    assert (error.check_id, error.error) == ("s3-bucket-insecure-transport-allowed", "AccessDenied")


def test_cis_numbers_and_remediation_kind():
    meta = CHECK.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_v7, meta.cis_id("v6")) == ("2.1.1", "2.1.1", "3.1.1", "3.1.1")
    assert meta.cis_unsure == ("v3",)
    assert meta.remediation_kind == "deny-bucket-insecure-transport"
    assert meta.manual_fix
