"""Public buckets: CIS v3.0.0 2.1.4 / v5.0.0 2.1.4 / v7.0.0 3.1.4, and the three fixes a finding may get."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from aegis.catalogue.bucket_policies import policy_sha256
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.remove_bucket_acl_public_grants import RemoveBucketAclPublicGrants
from aegis.catalogue.kinds.remove_bucket_policy_public_statements import RemoveBucketPolicyPublicStatements
from aegis.checks import PlanConfig, s3_bucket_public
from aegis.checks.base import EXEMPT_TAG
from aegis.checks.s3_bucket_public import public_policy_statements
from aegis.models import Risk
from aegis.secrets_guard import WITHHELD
from aegis_executor.remediations import remediation_for

BUCKET_CHECK = s3_bucket_public
ACCOUNT = "123456789012"
ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


@pytest.fixture
def s3(aws):
    return aws.client("s3", region_name="us-east-1")


@pytest.fixture
def s3control(aws):
    return aws.client("s3control", region_name="us-east-1")


def _bucket(s3, name: str, region: str = "us-east-1") -> str:
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter", **location)
    return name


def _public_read_policy(bucket: str, **statement) -> str:
    body = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [body | statement]})


def test_public_acl_and_public_policy_buckets_are_flagged(s3, inventory):
    acl = _bucket(s3, "acl-public")
    s3.put_bucket_acl(Bucket=acl, ACL="public-read")
    policy = _bucket(s3, "policy-public", region="eu-west-1")
    s3.put_bucket_policy(Bucket=policy, Policy=_public_read_policy(policy))
    s3.put_bucket_tagging(Bucket=policy, Tagging={"TagSet": [{"Key": EXEMPT_TAG, "Value": "public website"}]})

    findings = {f.resource_arn: f for f in BUCKET_CHECK.evaluate(inventory())}

    assert set(findings) == {"arn:aws:s3:::acl-public", "arn:aws:s3:::policy-public"}
    by_acl, by_policy = findings["arn:aws:s3:::acl-public"], findings["arn:aws:s3:::policy-public"]
    assert (by_acl.cis_v3, by_acl.cis_v5) == ("2.1.4", "2.1.4")
    assert by_acl.evidence["public_acl_grants"] == ["AllUsers:READ"]
    assert by_acl.evidence["public_policy_statements"] == []
    assert by_policy.evidence["public_policy_statements"] == [0]
    assert by_policy.region == "eu-west-1"
    assert by_acl.region == "us-east-1"
    assert by_policy.tags == {EXEMPT_TAG: "public website"}
    change = BUCKET_CHECK.propose(by_acl, PlanConfig())
    assert isinstance(change, EnableBucketPublicAccessBlock)
    assert change.bucket == "acl-public"
    assert change.after.fully_on
    assert change.region == "us-east-1"


def test_private_buckets_and_neutralised_grants_are_not_flagged(s3, inventory):
    _bucket(s3, "plain-private")
    restricted = _bucket(s3, "vpce-only")
    s3.put_bucket_policy(
        Bucket=restricted,
        Policy=_public_read_policy(
            restricted, Condition={"StringEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}
        ),
    )
    blocked = _bucket(s3, "acl-but-blocked")
    s3.put_bucket_acl(Bucket=blocked, ACL="public-read")
    s3.put_public_access_block(Bucket=blocked, PublicAccessBlockConfiguration=ALL_ON)
    ignored = _bucket(s3, "acl-ignored")  # IgnorePublicAcls makes the grant ineffective
    s3.put_bucket_acl(Bucket=ignored, ACL="public-read")
    s3.put_public_access_block(
        Bucket=ignored, PublicAccessBlockConfiguration={k: k == "IgnorePublicAcls" for k in ALL_ON}
    )

    assert BUCKET_CHECK.evaluate(inventory()) == []


def test_account_block_on_skips_every_per_bucket_call_and_says_so(s3, s3control, inventory):
    for index in range(3):
        s3.put_bucket_acl(Bucket=_bucket(s3, f"would-be-public-{index}"), ACL="public-read")
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON)

    inv = inventory()
    assert BUCKET_CHECK.evaluate(inv) == []

    calls = inv.collectors.clients.api_calls
    assert calls == {"sts.GetCallerIdentity": 1, "s3control.GetPublicAccessBlock": 1}
    assert any("no per-bucket calls" in note for note in inv.collectors.notes)


def test_per_bucket_calls_stay_at_the_floor(s3, inventory):
    for index in range(4):
        _bucket(s3, f"private-{index}")
    s3.put_public_access_block(Bucket="private-0", PublicAccessBlockConfiguration=ALL_ON)
    s3.put_bucket_acl(Bucket=_bucket(s3, "public-one"), ACL="public-read")

    inv = inventory()
    [finding] = BUCKET_CHECK.evaluate(inv)

    assert finding.resource_arn == "arn:aws:s3:::public-one"
    calls = inv.collectors.clients.api_calls
    assert calls["s3.ListBuckets"] == 1
    assert calls["s3.GetPublicAccessBlock"] == 5  # every bucket
    assert calls["s3.GetBucketAcl"] == 4
    assert calls["s3.GetBucketPolicy"] == 4
    assert calls["s3.GetBucketTagging"] == 1
    assert calls["s3.GetBucketLocation"] == 1


def test_one_failing_bucket_is_an_error_and_the_others_are_still_checked(s3, inventory):
    s3.put_bucket_acl(Bucket=_bucket(s3, "public-a"), ACL="public-read")
    s3.put_bucket_acl(Bucket=_bucket(s3, "public-b"), ACL="public-read")
    inv = inventory()
    s3_client = inv.collectors.clients.client("s3", "us-east-1")

    def deny_b(params, **_):
        if params.get("Bucket") == "public-b":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetBucketAcl")

    s3_client.meta.events.register("before-parameter-build.s3.GetBucketAcl", deny_b)

    findings = BUCKET_CHECK.evaluate(inv)

    assert [f.resource_arn for f in findings] == ["arn:aws:s3:::public-a"]
    [error] = inv.collectors.errors
    assert (error.check_id, error.error) == ("s3-bucket-public", "AccessDenied")
    assert "arn:aws:s3:::public-b" in error.message


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        ({"Principal": "*"}, True),
        ({"Principal": {"AWS": "*"}}, True),
        ({"Principal": {"AWS": ["arn:aws:iam::111122223333:root", "*"]}}, True),
        ({"Principal": {"AWS": "arn:aws:iam::111122223333:root"}}, False),
        ({"Principal": {"Service": "cloudtrail.amazonaws.com"}}, False),
        ({"Principal": "*", "Effect": "Deny"}, False),
        ({"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}, False),
        ({"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}, True),
        ({"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}, False),
        ({"Principal": "*", "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}}}, True),
        ({"Principal": "*", "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}, True),
        ({"Principal": "*", "Condition": {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}}, True),
        ({"Principal": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, True),
        ({"NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}}, True),
    ],
)
def test_public_policy_rule(statement, public):
    document = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"} | statement]}
    assert (public_policy_statements(document) == [0]) is public


def test_cis_numbers_and_remediation_kind():
    meta = s3_bucket_public.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("2.1.4", "2.1.4", "enable-bucket-public-access-block")
    assert (meta.cis_v7, meta.cis_id("v6")) == ("3.1.4", "3.1.4")
    assert meta.alternative_kinds == ("remove-bucket-acl-public-grants", "remove-bucket-policy-public-statements")


# --- the alternative fixes -------------------------------------------------------------------------------------------
PIN_ACL = PlanConfig(remediation_choices={"s3-bucket-public": "remove-bucket-acl-public-grants"})
PIN_POLICY = PlanConfig(remediation_choices={"s3-bucket-public": "remove-bucket-policy-public-statements"})


def _own_account(bucket: str) -> dict:
    return {
        "Sid": "OwnAccount",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:*",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }


def _mixed_policy(bucket: str) -> dict:
    public = json.loads(_public_read_policy(bucket))["Statement"][0]
    return {"Version": "2012-10-17", "Id": "mixed", "Statement": [_own_account(bucket), public | {"Sid": "Web"}]}


def test_a_bucket_public_by_its_acl_alone_may_lose_exactly_its_public_grants(s3, inventory):
    everyone = "uri=http://acs.amazonaws.com/groups/global/AllUsers"
    s3.put_bucket_acl(Bucket=_bucket(s3, "acl-only"), GrantRead=everyone, GrantWrite=everyone)
    [finding] = BUCKET_CHECK.evaluate(inventory())

    assert "public_policy" not in finding.evidence
    default, acl = BUCKET_CHECK.candidates(finding, PlanConfig())
    assert isinstance(default, EnableBucketPublicAccessBlock)
    assert isinstance(acl, RemoveBucketAclPublicGrants)
    assert [(g.grantee, g.permission) for g in acl.before.grants] == [("AllUsers", "READ"), ("AllUsers", "WRITE")]
    assert acl.after.grants == ()
    assert acl.describe_before() == "2 public ACL grants: AllUsers READ, WRITE"
    assert BUCKET_CHECK.propose(finding, PlanConfig()) == default
    assert BUCKET_CHECK.propose(finding, PIN_ACL) == acl
    # Pinned to a fix that does not apply to this bucket: the safest one.
    assert BUCKET_CHECK.propose(finding, PIN_POLICY) == default


def test_a_bucket_public_by_its_policy_alone_may_lose_exactly_its_public_statements(s3, inventory):
    bucket = _bucket(s3, "policy-only")
    document = _mixed_policy(bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    [finding] = BUCKET_CHECK.evaluate(inventory())

    assert finding.evidence["public_policy"] == {
        "sha256": policy_sha256(document),
        "statement_count": 2,
        "version": "2012-10-17",
        "id": "mixed",
        "statements": [{"index": 1, "statement": document["Statement"][1]}],
    }
    default, policy = BUCKET_CHECK.candidates(finding, PlanConfig())
    assert isinstance(policy, RemoveBucketPolicyPublicStatements)
    assert (policy.before.indices, policy.after.statement_count, policy.risk) == ((1,), 1, Risk.MEDIUM)
    assert policy.describe_before().endswith("1 public (Principal * or NotPrincipal): #1 Allow s3:GetObject")
    assert BUCKET_CHECK.propose(finding, PIN_POLICY) == policy
    assert BUCKET_CHECK.propose(finding, PIN_ACL) == default


def test_a_bucket_public_both_ways_can_only_be_blocked(s3, inventory):
    bucket = _bucket(s3, "both-ways")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_bucket_policy(Bucket=bucket, Policy=_public_read_policy(bucket))
    [finding] = BUCKET_CHECK.evaluate(inventory())

    [only] = BUCKET_CHECK.candidates(finding, PlanConfig())
    assert isinstance(only, EnableBucketPublicAccessBlock)
    assert BUCKET_CHECK.propose(finding, PIN_POLICY) == only


def test_a_withheld_statement_leaves_only_block_public_access(s3, inventory):
    bucket = _bucket(s3, "withheld")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(_mixed_policy(bucket)))
    [finding] = BUCKET_CHECK.evaluate(inventory())
    policy = finding.evidence["public_policy"]
    policy["statements"][0]["statement"]["Sid"] = WITHHELD
    screened = finding.model_copy(update={"evidence": {**finding.evidence, "public_policy": policy}})

    assert [c.kind for c in BUCKET_CHECK.candidates(screened, PIN_POLICY)] == ["enable-bucket-public-access-block"]


@pytest.mark.parametrize("pinned", [PIN_ACL, PIN_POLICY])
def test_an_applied_alternative_makes_the_bucket_private_and_its_undo_public_again(aws, s3, inventory, pinned):
    s3.put_bucket_acl(Bucket=_bucket(s3, "by-acl"), ACL="public-read")
    s3.put_bucket_policy(Bucket=_bucket(s3, "by-policy"), Policy=json.dumps(_mixed_policy("by-policy")))
    changes = [BUCKET_CHECK.propose(f, pinned) for f in BUCKET_CHECK.evaluate(inventory())]
    [change] = [c for c in changes if c is not None and c.kind == pinned.remediation_choices["s3-bucket-public"]]
    fix = remediation_for(change)

    fix.apply(aws, change)
    assert change.resource_arn not in {f.resource_arn for f in BUCKET_CHECK.evaluate(inventory())}
    fix.undo(aws, change)
    assert change.resource_arn in {f.resource_arn for f in BUCKET_CHECK.evaluate(inventory())}
