"""The policy remediation removes the approved statements by index from the approved policy only: a policy edited
since the check is refused before anything is written, and undo re-creates a policy it deleted with its version and
id, so that its digest is the approved one again."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from aegis.catalogue.bucket_policies import PolicyStatement, policy_sha256
from aegis.catalogue.kinds.remove_bucket_policy_public_statements import (
    KeptPolicyStatements,
    PublicPolicyStatements,
    RemoveBucketPolicyPublicStatements,
)
from aegis.models import Risk
from aegis_executor.remediations import RemediationFailed, remediation_for
from tests.support.action_recorder import ActionRecorder
from tests.support.changes import ACCOUNT, in_moto
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")


def _public(bucket: str) -> dict:
    return {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}


def _setup(bucket: str, document: dict, public: list[int]) -> tuple[RemoveBucketPolicyPublicStatements, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    change = in_moto(
        RemoveBucketPolicyPublicStatements,
        check_id="s3-bucket-public",
        resource_arn=f"arn:aws:s3:::{bucket}",
        risk=Risk.MEDIUM,
        before=PublicPolicyStatements(
            sha256=policy_sha256(document) or "",
            statement_count=len(statements),
            version=document.get("Version"),
            policy_id=document.get("Id"),
            statements=tuple(PolicyStatement(index=i, statement=statements[i]) for i in public),
        ),
        after=KeptPolicyStatements(statement_count=len(statements) - len(public)),
    )
    return change, s3


def test_a_lone_statement_policy_is_deleted_and_re_created_with_its_version_and_id() -> None:
    document = {"Version": "2008-10-17", "Id": "legacy", "Statement": _public("aegis-lone")}
    change, s3 = _setup("aegis-lone", document, [0])
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    recorder = ActionRecorder(session)

    fix.apply(session, change)
    assert recorder.take() == ["s3:GetBucketPolicy", "s3:DeleteBucketPolicy"]
    assert fix.verify(session, change).ok

    fix.undo(session, change)
    restored = json.loads(s3.get_bucket_policy(Bucket="aegis-lone")["Policy"])
    assert restored == {"Version": "2008-10-17", "Id": "legacy", "Statement": [_public("aegis-lone")]}
    assert fix.verify_undone(session, change).ok


def test_a_policy_edited_between_the_check_and_the_write_is_left_alone() -> None:
    own = {**_public("aegis-edited"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    document = {"Version": "2012-10-17", "Statement": [_public("aegis-edited"), own]}
    change, s3 = _setup("aegis-edited", document, [0])
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    assert fix.is_before(fix.read_current(session, change), change)

    edited = {**document, "Statement": [*document["Statement"], {**own, "Sid": "Later"}]}
    s3.put_bucket_policy(Bucket="aegis-edited", Policy=json.dumps(edited))
    recorder = ActionRecorder(session)

    with pytest.raises(RemediationFailed, match="nothing was written"):
        fix.apply(session, change)
    assert recorder.take() == ["s3:GetBucketPolicy"]
    assert json.loads(s3.get_bucket_policy(Bucket="aegis-edited")["Policy"]) == edited


def test_a_statement_of_the_approved_digest_at_another_index_is_not_the_approved_one() -> None:
    document = {"Version": "2012-10-17", "Statement": [_public("aegis-index"), {**_public("aegis-index"), "Sid": "B"}]}
    change, _ = _setup("aegis-index", document, [0])
    forged = change.with_states(
        before=change.before.model_copy(
            update={"statements": (PolicyStatement(index=1, statement=document["Statement"][0]),)}
        ),
        after=change.after,
    )
    fix = remediation_for(forged)
    session = boto3.Session(region_name=REGION)
    assert fix.is_before(fix.read_current(session, change), change)
    assert not fix.is_before(fix.read_current(session, forged), forged)


def test_undo_after_an_edit_since_the_apply_writes_nothing() -> None:
    own = {**_public("aegis-late"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    document = {"Version": "2012-10-17", "Statement": [own, _public("aegis-late")]}
    change, s3 = _setup("aegis-late", document, [1])
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    fix.apply(session, change)
    s3.put_bucket_policy(Bucket="aegis-late", Policy=json.dumps({**document, "Statement": [own, {**own, "Sid": "X"}]}))

    with pytest.raises(RemediationFailed):
        fix.undo(session, change)
    assert not fix.is_after(fix.read_current(session, change), change)
