"""remove-bucket-acl-public-grants: only ever takes public grants out of one bucket's ACL."""

from __future__ import annotations

import pytest

from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.catalogue.kinds.remove_bucket_acl_public_grants import (
    PublicAclGrant,
    PublicAclGrants,
    RemoveBucketAclPublicGrants,
)
from tests.support.changes import COMMON, bucket_acl_public_grants_change

READ = PublicAclGrant.from_text("AllUsers:READ")
EVERY_GRANT = [
    PublicAclGrant(grantee=grantee, permission=permission)
    for grantee in ("AllUsers", "AuthenticatedUsers")
    for permission in ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")
]


def _change(
    before: list[PublicAclGrant], after: list[PublicAclGrant], arn: str = "arn:aws:s3:::b"
) -> RemoveBucketAclPublicGrants:
    return RemoveBucketAclPublicGrants.propose(
        check_id="s3-bucket-public",
        resource_arn=arn,
        before=PublicAclGrants.of(before),
        after=PublicAclGrants.of(after),
        **COMMON,
    )


def test_a_change_that_adds_or_keeps_every_grant_is_refused() -> None:
    with pytest.raises(ValueError, match="strict subset"):
        _change([READ], [READ, PublicAclGrant.from_text("AllUsers:WRITE")])
    with pytest.raises(ValueError, match="strict subset"):
        _change([READ], [READ])


def test_only_a_bucket_and_only_public_grantees_are_accepted() -> None:
    with pytest.raises(ValueError, match="bucket ARN"):
        _change([READ], [], arn="arn:aws:s3:::b/key")
    with pytest.raises(ValueError):
        PublicAclGrant.from_text("CanonicalUser:READ")
    with pytest.raises(ValueError, match="distinct"):
        PublicAclGrants(grants=(READ, READ))


def test_a_grant_read_from_aws_is_public_only_for_the_two_groups() -> None:
    group = {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"}}
    assert PublicAclGrant.from_aws(group | {"Permission": "WRITE_ACP"}) == PublicAclGrant.from_text(
        "AuthenticatedUsers:WRITE_ACP"
    )
    log_delivery = {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"}}
    assert PublicAclGrant.from_aws(log_delivery | {"Permission": "WRITE"}) is None
    assert PublicAclGrant.from_aws({"Grantee": {"Type": "CanonicalUser", "ID": "abc"}, "Permission": "READ"}) is None
    assert READ.to_aws() == {
        "Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
        "Permission": "READ",
    }


def test_the_approver_sees_each_grant_removed_and_that_the_rest_is_kept() -> None:
    change = bucket_acl_public_grants_change()
    assert change.summary() == "Remove 2 public ACL grants s3 public-bucket"
    assert change.describe_before() == "2 public ACL grants: AllUsers READ; AuthenticatedUsers READ"
    assert change.describe_after() == (
        "removed AllUsers READ; AuthenticatedUsers READ; the owner's and every other grant unchanged"
    )
    every = _change(EVERY_GRANT, [])
    assert every.approval_properties()  # every grant there is fits on the approver's screen
    assert max(len(text) for text in every.approval_properties().values()) <= PROPERTY_VALUE_MAX


def test_the_session_may_read_and_put_this_buckets_acl_only() -> None:
    change = bucket_acl_public_grants_change()
    [statement] = change.session_policy_statements("apply")
    assert statement["Action"] == ["s3:GetBucketAcl", "s3:PutBucketAcl"]
    assert statement["Resource"] == ["arn:aws:s3:::public-bucket"]
    assert change.session_policy_statements("undo") == [statement]
    assert type(change).REGION_SCOPE == "resource"
