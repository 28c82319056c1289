"""Reading and writing a bucket's whole policy, shared by the bucket-policy remediations. Every call names the
bucket's owner (ExpectedBucketOwner): a bucket of the same name in another account (after a delete and re-create) is
not the bucket the human approved."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from aegis.catalogue.bucket_policies import BucketPolicyDocument, policy_text

NO_POLICY = "NoSuchBucketPolicy"


def read_policy(s3: Any, bucket: str, owner: str) -> BucketPolicyDocument:
    """The bucket's policy; "no policy" is a state, not an error."""
    try:
        text = s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner)["Policy"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == NO_POLICY:
            return BucketPolicyDocument()
        raise
    return BucketPolicyDocument.from_text(text)


def write_policy(s3: Any, bucket: str, owner: str, document: dict[str, Any] | None) -> None:
    """Make the bucket's policy exactly `document`: put it, or delete the policy when `document` is None."""
    if document is None:
        s3.delete_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner)
    else:
        s3.put_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner, Policy=policy_text(document))
