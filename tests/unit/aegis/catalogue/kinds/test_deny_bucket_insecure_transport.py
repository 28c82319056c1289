"""deny-bucket-insecure-transport: adds exactly one Deny statement, for this bucket, after the policy's others."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.deny_bucket_insecure_transport import (
    BucketPolicyDigest,
    DenyBucketInsecureTransport,
    InsecureTransportDenied,
)
from aegis.models import Risk
from tests.support.changes import COMMON, bucket_insecure_transport_change

ARN = "arn:aws:s3:::b"
DIGEST = "7a" * 32


def _change(before: BucketPolicyDigest, index: int) -> DenyBucketInsecureTransport:
    return DenyBucketInsecureTransport.propose(
        check_id="s3-bucket-insecure-transport-allowed",
        resource_arn=ARN,
        before=before,
        after=InsecureTransportDenied(index=index),
        **COMMON,
    )


def test_the_statement_is_the_kinds_own_deny_for_the_changes_bucket_and_nothing_else() -> None:
    change = _change(BucketPolicyDigest(), 0)
    assert change.statement == {
        "Sid": "AegisDenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [ARN, f"{ARN}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    with pytest.raises(ValueError, match="extra"):
        InsecureTransportDenied.model_validate({"index": 0, "statement": {"Effect": "Allow"}})
    with pytest.raises(ValueError, match="bucket ARN"):
        DenyBucketInsecureTransport.propose(
            **{**change.model_dump(exclude={"kind", "change_id"}), "resource_arn": f"{ARN}/*"}
        )


def test_the_statement_goes_after_every_statement_the_policy_had() -> None:
    assert _change(BucketPolicyDigest(sha256=DIGEST, statement_count=3), 3).after.index == 3
    with pytest.raises(ValueError, match="after every statement"):
        _change(BucketPolicyDigest(sha256=DIGEST, statement_count=3), 1)
    with pytest.raises(ValueError, match="no statements"):
        _change(BucketPolicyDigest(sha256=None, statement_count=2), 2)
    with pytest.raises(ValueError, match="no statements"):
        _change(BucketPolicyDigest(sha256=DIGEST, statement_count=0), 0)


def test_the_approver_sees_what_the_policy_was_and_the_one_statement_added() -> None:
    change = bucket_insecure_transport_change()
    assert change.risk is Risk.LOW
    assert change.summary() == "Deny plain HTTP s3 plain-http-bucket"
    assert change.describe_before() == "no bucket policy: requests over plain HTTP are not denied"
    assert change.describe_after().startswith("statement #0 AegisDenyInsecureTransport added: Deny s3:* to everyone")
    existing = _change(BucketPolicyDigest(sha256=DIGEST, statement_count=3), 3)
    assert existing.describe_before() == (
        f"bucket policy sha256 {DIGEST[:12]} (3 statements), none denying requests over plain HTTP"
    )
    assert not existing.creates_policy


def test_the_session_may_read_and_write_this_buckets_policy_only() -> None:
    change = bucket_insecure_transport_change()
    [apply] = change.session_policy_statements("apply")
    [undo] = change.session_policy_statements("undo")
    assert apply["Action"] == ["s3:GetBucketPolicy", "s3:PutBucketPolicy"]
    assert undo["Action"] == ["s3:DeleteBucketPolicy", "s3:GetBucketPolicy", "s3:PutBucketPolicy"]
    assert apply["Resource"] == undo["Resource"] == ["arn:aws:s3:::plain-http-bucket"]
