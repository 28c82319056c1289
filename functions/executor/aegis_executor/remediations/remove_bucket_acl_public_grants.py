"""Remove the approved public grants from a bucket's ACL, keeping its owner and every other grant; undo grants
them again.

PutBucketAcl replaces the whole ACL, so each step reads it (GetBucketAcl) and puts it back with only the approved
public grants taken out or added. The state the executor compares is the ACL's public grants: any other change to
them since the scan is drift; grants to named accounts are not the change's business and are kept as they are.
"""

from __future__ import annotations

from typing import Any

from boto3.session import Session

from aegis.catalogue.kinds.remove_bucket_acl_public_grants import (
    PublicAclGrant,
    PublicAclGrants,
    RemoveBucketAclPublicGrants,
)
from aegis_executor.remediations.base import Remediation, remediation

# The grantee fields PutBucketAcl takes back (DisplayName is AWS's to fill in).
_GRANTEE_FIELDS = ("Type", "ID", "URI", "EmailAddress")


def _grant(grant: dict[str, Any]) -> dict[str, Any]:
    grantee = {key: value for key, value in grant.get("Grantee", {}).items() if key in _GRANTEE_FIELDS}
    return {"Grantee": grantee, "Permission": grant["Permission"]}


def _public(grants: list[dict[str, Any]]) -> PublicAclGrants:
    return PublicAclGrants.of([found for found in map(PublicAclGrant.from_aws, grants) if found is not None])


@remediation("remove-bucket-acl-public-grants")
class RemoveBucketAclPublicGrantsRemediation(Remediation[RemoveBucketAclPublicGrants, PublicAclGrants]):
    def _acl(self, session: Session, change: RemoveBucketAclPublicGrants) -> tuple[Any, dict[str, Any]]:
        s3 = self.client(session, "s3", change)
        return s3, s3.get_bucket_acl(Bucket=change.bucket, ExpectedBucketOwner=change.account_id)

    def read_current(self, session: Session, change: RemoveBucketAclPublicGrants) -> PublicAclGrants:
        _, acl = self._acl(session, change)
        return _public(acl.get("Grants", []))

    def _put(self, s3: Any, change: RemoveBucketAclPublicGrants, acl: dict[str, Any], grants: list[Any]) -> None:
        s3.put_bucket_acl(
            Bucket=change.bucket,
            ExpectedBucketOwner=change.account_id,
            AccessControlPolicy={"Grants": grants, "Owner": {"ID": acl["Owner"]["ID"]}},
        )

    def apply(self, session: Session, change: RemoveBucketAclPublicGrants) -> None:
        s3, acl = self._acl(session, change)
        removed = change.removed
        kept = [_grant(g) for g in acl.get("Grants", []) if not any(r.matches(g) for r in removed)]
        self._put(s3, change, acl, kept)

    def undo(self, session: Session, change: RemoveBucketAclPublicGrants) -> None:
        s3, acl = self._acl(session, change)
        grants = [_grant(g) for g in acl.get("Grants", [])]
        missing = [r.to_aws() for r in change.removed if not any(r.matches(g) for g in grants)]
        self._put(s3, change, acl, grants + missing)
