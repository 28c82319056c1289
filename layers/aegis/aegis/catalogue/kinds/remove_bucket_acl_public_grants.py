"""Remove exactly the public grants of a bucket's ACL: those to everyone (AllUsers) or to every AWS account
(AuthenticatedUsers) that the scan saw, keeping the owner and every other grant (CIS 2.1.4, an alternative to Block
Public Access for a bucket public only through its ACL)."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import model_validator

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.catalogue.bucket_policies import bucket_name
from aegis.models import Frozen
from aegis.secrets_guard import display_text

PublicGroup = Literal["AllUsers", "AuthenticatedUsers"]
AclPermission = Literal["READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL"]
GROUP_URIS: dict[str, str] = {
    "AllUsers": "http://acs.amazonaws.com/groups/global/AllUsers",
    "AuthenticatedUsers": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
}
_PERMISSIONS: tuple[str, ...] = ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")


class PublicAclGrant(Frozen):
    grantee: PublicGroup
    permission: AclPermission

    @classmethod
    def from_text(cls, text: str) -> PublicAclGrant:
        """From the scan's spelling, "AllUsers:READ"."""
        grantee, _, permission = text.partition(":")
        return cls.model_validate({"grantee": grantee, "permission": permission})

    @classmethod
    def from_aws(cls, grant: dict[str, Any]) -> PublicAclGrant | None:
        """One entry of GetBucketAcl's Grants, if it is public."""
        grantee = grant.get("Grantee", {})
        group = next((name for name, uri in GROUP_URIS.items() if grantee.get("URI") == uri), None)
        if grantee.get("Type") != "Group" or group is None or grant.get("Permission") not in _PERMISSIONS:
            return None
        return cls.model_validate({"grantee": group, "permission": grant["Permission"]})

    def matches(self, grant: dict[str, Any]) -> bool:
        return PublicAclGrant.from_aws(grant) == self

    def to_aws(self) -> dict[str, Any]:
        return {"Grantee": {"Type": "Group", "URI": GROUP_URIS[self.grantee]}, "Permission": self.permission}

    def sort_key(self) -> tuple[str, int]:
        return self.grantee, _PERMISSIONS.index(self.permission)


class PublicAclGrants(Frozen):
    """The public grants of a bucket's ACL (each once, in a stable order); the ACL's other grants are not part of it."""

    grants: tuple[PublicAclGrant, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if list(self.grants) != sorted(set(self.grants), key=PublicAclGrant.sort_key):
            raise ValueError("grants must be distinct and in (grantee, permission) order")
        return self

    @classmethod
    def of(cls, grants: list[PublicAclGrant]) -> PublicAclGrants:
        return cls(grants=tuple(sorted(set(grants), key=PublicAclGrant.sort_key)))

    def describe(self) -> str:
        if not self.grants:
            return "no ACL grant to AllUsers or AuthenticatedUsers"
        by_group = {
            group: [g.permission for g in self.grants if g.grantee == group]
            for group in GROUP_URIS
            if any(g.grantee == group for g in self.grants)
        }
        listed = "; ".join(f"{group} {', '.join(permissions)}" for group, permissions in by_group.items())
        return f"{len(self.grants)} public ACL grants: {listed}"


class RemoveBucketAclPublicGrants(ChangeBase):
    kind: Literal["remove-bucket-acl-public-grants"] = "remove-bucket-acl-public-grants"
    before: PublicAclGrants
    after: PublicAclGrants

    TITLE = "Remove a bucket's public ACL grants"
    # PutBucketAcl replaces the whole ACL: the remediation reads it and puts it back without the public grants.
    APPLY_ACTIONS = ("s3:PutBucketAcl",)
    READ_ACTIONS = ("s3:GetBucketAcl",)
    UNDO_ACTIONS = ("s3:PutBucketAcl",)
    # S3 lists every bucket whatever regions are scanned; a bucket's change is in the bucket's own region.
    REGION_SCOPE = "resource"

    @property
    def bucket(self) -> str:
        return bucket_name(self.resource_arn, self.partition)

    @property
    def removed(self) -> tuple[PublicAclGrant, ...]:
        kept = set(self.after.grants)
        return tuple(grant for grant in self.before.grants if grant not in kept)

    def assert_narrows(self) -> None:
        bucket_name(self.resource_arn, self.partition)
        if not set(self.after.grants) < set(self.before.grants):
            raise WideningChange("after must keep a strict subset of the public grants before")

    def summary(self) -> str:
        return f"Remove {len(self.removed)} public ACL grants s3 {display_text(self.bucket)}"

    def describe_after(self) -> str:
        removed = PublicAclGrants.of(list(self.removed)).describe().split(": ", 1)[1]
        kept = f"; kept: {self.after.describe()}" if self.after.grants else ""
        return f"removed {removed}{kept}; the owner's and every other grant unchanged"
