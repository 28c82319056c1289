"""The ACL remediation takes out the approved public grants only: the owner, named accounts and public grants it was
not approved for stay; undo grants the removed ones again without duplicating any."""

from __future__ import annotations

import boto3
import pytest

from aegis.catalogue.kinds.remove_bucket_acl_public_grants import (
    GROUP_URIS,
    PublicAclGrant,
    PublicAclGrants,
    RemoveBucketAclPublicGrants,
)
from aegis.models import Risk
from aegis_executor.remediations import remediation_for
from tests.support.action_recorder import ActionRecorder
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import OTHER_CANONICAL_USER, in_moto

pytestmark = pytest.mark.usefixtures("aws")

EVERYONE = f"uri={GROUP_URIS['AllUsers']}"
ANY_ACCOUNT = f"uri={GROUP_URIS['AuthenticatedUsers']}"


def _grants(s3, bucket: str) -> list[tuple[str, str]]:
    return sorted(
        (g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"])
        for g in s3.get_bucket_acl(Bucket=bucket)["Grants"]
    )


def _change(bucket: str, before: list[str], after: list[str]) -> RemoveBucketAclPublicGrants:
    return in_moto(
        RemoveBucketAclPublicGrants,
        check_id="s3-bucket-public",
        resource_arn=f"arn:aws:s3:::{bucket}",
        risk=Risk.MEDIUM,
        before=PublicAclGrants.of([PublicAclGrant.from_text(t) for t in before]),
        after=PublicAclGrants.of([PublicAclGrant.from_text(t) for t in after]),
    )


def test_only_the_approved_grants_go_and_undo_puts_back_exactly_them() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in ("aegis-acl", "aegis-acl-neighbour"):
        s3.create_bucket(Bucket=bucket, ObjectOwnership="ObjectWriter")
        s3.put_bucket_acl(
            Bucket=bucket,
            GrantRead=f"{EVERYONE}, id={OTHER_CANONICAL_USER}",
            GrantWrite=ANY_ACCOUNT,
            GrantFullControl=f"id={s3.get_bucket_acl(Bucket=bucket)['Owner']['ID']}",
        )
    original = _grants(s3, "aegis-acl")
    # A partial change (a strict subset of the public grants stays): AuthenticatedUsers WRITE is not its business.
    change = _change("aegis-acl", ["AllUsers:READ", "AuthenticatedUsers:WRITE"], ["AuthenticatedUsers:WRITE"])
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    recorder = ActionRecorder(session)

    fix.apply(session, change)

    assert recorder.take() == ["s3:GetBucketAcl", "s3:PutBucketAcl"]
    assert _grants(s3, "aegis-acl") == [g for g in original if g != (GROUP_URIS["AllUsers"], "READ")]
    assert _grants(s3, "aegis-acl-neighbour") == original
    assert fix.verify(session, change).ok

    fix.undo(session, change)
    fix.undo(session, change)  # a second undo finds the grant there and adds no duplicate
    assert _grants(s3, "aegis-acl") == original
    assert fix.verify_undone(session, change).ok


def test_a_public_grant_added_since_the_scan_is_drift() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="aegis-acl-drift", ObjectOwnership="ObjectWriter")
    s3.put_bucket_acl(Bucket="aegis-acl-drift", ACL="public-read")
    change = _change("aegis-acl-drift", ["AllUsers:READ"], [])
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    assert fix.is_before(fix.read_current(session, change), change)

    s3.put_bucket_acl(Bucket="aegis-acl-drift", GrantRead=EVERYONE, GrantWriteACP=EVERYONE)

    assert not fix.is_before(fix.read_current(session, change), change)
