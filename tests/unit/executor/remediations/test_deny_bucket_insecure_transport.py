"""The deny remediation adds its one statement to the approved policy only, last, keeping every other statement as it
was; undo removes exactly it, or deletes the policy it created."""

from __future__ import annotations

import json

import boto3
import pytest

from aegis.catalogue.bucket_policies import policy_sha256
from aegis.catalogue.kinds.deny_bucket_insecure_transport import (
    DENY_SID,
    BucketPolicyDigest,
    DenyBucketInsecureTransport,
    InsecureTransportDenied,
    deny_insecure_transport_statement,
)
from aegis.models import Risk
from aegis_executor.remediations import RemediationFailed, remediation_for
from tests.support.action_recorder import ActionRecorder
from tests.support.changes import ACCOUNT, in_moto
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")


def _change(bucket: str, document: dict | None) -> DenyBucketInsecureTransport:
    count = len(document["Statement"]) if document else 0
    return in_moto(
        DenyBucketInsecureTransport,
        check_id="s3-bucket-insecure-transport-allowed",
        resource_arn=f"arn:aws:s3:::{bucket}",
        risk=Risk.LOW,
        before=BucketPolicyDigest(sha256=policy_sha256(document), statement_count=count),
        after=InsecureTransportDenied(index=count),
    )


def _policy(s3, bucket: str) -> dict | None:
    try:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except s3.exceptions.ClientError:
        return None


def test_a_created_policy_is_deleted_by_undo_and_a_neighbour_is_untouched() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in ("aegis-http", "aegis-http-neighbour"):
        s3.create_bucket(Bucket=bucket)
    change = _change("aegis-http", None)
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    recorder = ActionRecorder(session)

    fix.apply(session, change)
    assert _policy(s3, "aegis-http") == {
        "Version": "2012-10-17",
        "Statement": [deny_insecure_transport_statement("arn:aws:s3:::aegis-http")],
    }
    assert _policy(s3, "aegis-http-neighbour") is None
    recorder.take()

    fix.undo(session, change)
    assert recorder.take() == ["s3:GetBucketPolicy", "s3:DeleteBucketPolicy"]
    assert _policy(s3, "aegis-http") is None


def test_an_existing_policy_keeps_its_version_id_and_statements() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="aegis-http-kept")
    own = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::aegis-http-kept/*",
    }
    document = {"Version": "2008-10-17", "Id": "kept", "Statement": own}  # a lone statement object
    s3.put_bucket_policy(Bucket="aegis-http-kept", Policy=json.dumps(document))
    change = _change("aegis-http-kept", {**document, "Statement": [own]})
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    assert fix.is_before(fix.read_current(session, change), change)

    fix.apply(session, change)
    applied = _policy(s3, "aegis-http-kept")
    assert applied is not None
    assert (applied["Version"], applied["Id"], applied["Statement"][0]) == ("2008-10-17", "kept", own)
    assert applied["Statement"][1]["Sid"] == DENY_SID

    fix.undo(session, change)
    assert policy_sha256(_policy(s3, "aegis-http-kept")) == change.before.sha256


def test_a_statement_added_after_the_deny_blocks_the_undo_and_an_edit_blocks_the_apply() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="aegis-http-late")
    change = _change("aegis-http-late", None)
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    fix.apply(session, change)
    later = _policy(s3, "aegis-http-late")
    assert later is not None
    extra = {"Sid": "Later", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"}
    later["Statement"] = [*later["Statement"], extra]
    s3.put_bucket_policy(Bucket="aegis-http-late", Policy=json.dumps(later))

    assert not fix.is_after(fix.read_current(session, change), change)
    with pytest.raises(RemediationFailed):
        fix.undo(session, change)
    with pytest.raises(RemediationFailed):
        fix.apply(session, change)
    assert _policy(s3, "aegis-http-late") == later
