"""Add to a bucket's policy one statement denying every request made without TLS (CIS v5 2.1.1 / v7 3.1.1),
creating the policy if the bucket has none. Undo removes exactly that statement (or the policy it created).

The change names the policy by its digest: the executor adds the statement only to the policy it was approved for
(an edit since the scan is drift), as its last statement, so that the rest of the policy is left as it was. The
statement itself is the kind's, for the change's bucket (`deny_insecure_transport_statement`): nothing in the change
can make it say anything else.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from aegis.catalogue.base import ChangeBase
from aegis.catalogue.bucket_policies import SHA256_PATTERN, bucket_name
from aegis.models import Frozen
from aegis.secrets_guard import display_text

DENY_SID = "AegisDenyInsecureTransport"


def deny_insecure_transport_statement(bucket_arn: str) -> dict[str, Any]:
    """The statement the kind adds: anyone, any S3 action, on the bucket and its objects, unless over TLS."""
    return {
        "Sid": DENY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class BucketPolicyDigest(Frozen):
    """A bucket policy by its digest and size; no digest: the bucket has no policy."""

    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    statement_count: int = Field(default=0, ge=0)

    def describe(self) -> str:
        if self.sha256 is None:
            return "no bucket policy: requests over plain HTTP are not denied"
        return (
            f"bucket policy sha256 {self.sha256[:12]} ({self.statement_count} statements), "
            "none denying requests over plain HTTP"
        )


class InsecureTransportDenied(Frozen):
    """Where the change adds its statement: after every statement the policy had."""

    index: int = Field(ge=0)

    def describe(self) -> str:
        return (
            f"statement #{self.index} {DENY_SID} added: Deny s3:* to everyone on the bucket and its objects "
            "when aws:SecureTransport is false; the rest of the policy unchanged"
        )


class DenyBucketInsecureTransport(ChangeBase):
    kind: Literal["deny-bucket-insecure-transport"] = "deny-bucket-insecure-transport"
    before: BucketPolicyDigest
    after: InsecureTransportDenied

    TITLE = "Deny requests to a bucket over plain HTTP"
    APPLY_ACTIONS = ("s3:PutBucketPolicy",)
    READ_ACTIONS = ("s3:GetBucketPolicy",)
    # A policy the change created is deleted; one it added to is put back without the statement.
    UNDO_ACTIONS = ("s3:DeleteBucketPolicy", "s3:PutBucketPolicy")
    REGION_SCOPE = "resource"

    @property
    def bucket(self) -> str:
        return bucket_name(self.resource_arn, self.partition)

    @property
    def creates_policy(self) -> bool:
        return self.before.sha256 is None

    @property
    def statement(self) -> dict[str, Any]:
        """The one statement the change adds: a Deny, which can only take access away."""
        return deny_insecure_transport_statement(self.resource_arn)

    def assert_narrows(self) -> None:
        bucket_name(self.resource_arn, self.partition)
        if (self.before.sha256 is None) != (self.before.statement_count == 0):
            raise ValueError("a bucket without a policy has no statements, and a policy has at least one")
        if self.after.index != self.before.statement_count:
            raise ValueError("the statement is added after every statement the policy had")

    def summary(self) -> str:
        return f"Deny plain HTTP s3 {display_text(self.bucket)}"
