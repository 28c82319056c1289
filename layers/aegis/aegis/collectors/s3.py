"""Read-only S3 inventory of the account: account-level Block Public Access, the bucket list, and per bucket only
what a check asks for (each fetched at most once).

S3 has no listing that returns buckets with their access settings, so per-bucket calls are unavoidable; the checks
decide which buckets need them (none at all when the account-level block makes every bucket private). Several checks
read the same bucket's policy (s3-bucket-public, s3-bucket-insecure-transport-allowed): whichever asks first makes the
one GetBucketPolicy call of the scan for that bucket, and the others reuse its answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from aegis.catalogue.states import PublicAccessBlock
from aegis.collectors.base import Once, error_code, tag_dict

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
_PUBLIC_GROUPS = {ALL_USERS: "AllUsers", AUTHENTICATED_USERS: "AuthenticatedUsers"}
LIST_BUCKETS_PAGE = 10_000  # the most MaxBuckets allows


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    region: str | None  # from ListBuckets (BucketRegion); servers that omit it cost a lookup per flagged bucket


class S3Collector:
    def __init__(self, s3: Any, s3control: Any, account_id: str) -> None:
        self._s3 = s3
        self._s3control = s3control
        self._account_id = account_id
        self._once = Once()

    def account_public_access_block(self) -> PublicAccessBlock:
        return self._once.get("account_bpa", self._get_account_bpa)

    def _get_account_bpa(self) -> PublicAccessBlock:
        try:
            response = self._s3control.get_public_access_block(AccountId=self._account_id)
        except ClientError as exc:
            if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
                return PublicAccessBlock.from_aws(None)
            raise
        return PublicAccessBlock.from_aws(response["PublicAccessBlockConfiguration"])

    def buckets(self) -> list[Bucket]:
        return self._once.get("buckets", self._list_buckets)

    def _list_buckets(self) -> list[Bucket]:
        # With a parameter (MaxBuckets), ListBuckets also returns each bucket's region: no per-bucket lookup.
        pages = self._s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": LIST_BUCKETS_PAGE})
        return [
            Bucket(name=bucket["Name"], region=bucket.get("BucketRegion"))
            for page in pages
            for bucket in page.get("Buckets", [])
        ]

    def bucket_public_access_block(self, bucket: str) -> PublicAccessBlock:
        return self._once.get(("bpa", bucket), lambda: self._get_bucket_bpa(bucket))

    def _get_bucket_bpa(self, bucket: str) -> PublicAccessBlock:
        try:
            response = self._s3.get_public_access_block(Bucket=bucket)
        except ClientError as exc:
            if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
                return PublicAccessBlock.from_aws(None)
            raise
        return PublicAccessBlock.from_aws(response["PublicAccessBlockConfiguration"])

    def bucket_public_acl_grants(self, bucket: str) -> list[str]:
        """Grants of the bucket ACL to everyone or to every AWS user, as "AllUsers:READ"."""
        return self._once.get(("acl", bucket), lambda: self._get_public_grants(bucket))

    def _get_public_grants(self, bucket: str) -> list[str]:
        grants = self._s3.get_bucket_acl(Bucket=bucket).get("Grants", [])
        public = {
            f"{_PUBLIC_GROUPS[grant['Grantee']['URI']]}:{grant.get('Permission', '')}"
            for grant in grants
            if grant.get("Grantee", {}).get("Type") == "Group" and grant["Grantee"].get("URI") in _PUBLIC_GROUPS
        }
        return sorted(public)

    def bucket_policy(self, bucket: str) -> dict[str, Any] | None:
        return self._once.get(("policy", bucket), lambda: self._get_policy(bucket))

    def _get_policy(self, bucket: str) -> dict[str, Any] | None:
        try:
            text = self._s3.get_bucket_policy(Bucket=bucket)["Policy"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucketPolicy":
                return None
            raise
        document = json.loads(text)
        return document if isinstance(document, dict) else None

    def bucket_tags(self, bucket: str) -> dict[str, str]:
        return self._once.get(("tags", bucket), lambda: self._get_tags(bucket))

    def _get_tags(self, bucket: str) -> dict[str, str]:
        try:
            return tag_dict(self._s3.get_bucket_tagging(Bucket=bucket).get("TagSet"))
        except ClientError as exc:
            if error_code(exc) == "NoSuchTagSet":
                return {}
            raise

    def bucket_region(self, bucket: Bucket) -> str:
        if bucket.region:
            return bucket.region
        return self._once.get(("region", bucket.name), lambda: self._get_region(bucket.name))

    def _get_region(self, bucket: str) -> str:
        # LocationConstraint is empty for us-east-1 and "EU" for the oldest eu-west-1 buckets.
        constraint = self._s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)
