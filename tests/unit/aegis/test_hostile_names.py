"""Hostile names must not switch remediation off.

A resource's name is chosen by whoever created it. An IAM user may be named like an access key id or a JWT (both fit
IAM's own character set), a bucket may be named like a 40-character secret key: such values are identifiers, and a
change built from them must still be proposed, with the identifier in it. Only the free texts shown to people
(binding message, approval texts) withhold a secret-shaped identifier; the change and its digest keep it.
"""

from __future__ import annotations

import json

import boto3
import pytest

from aegis.catalogue import parse_change
from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail
from aegis.catalogue.kinds.detach_policy import DetachPolicy
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.checks import CHECKS, PlanConfig
from aegis.checks.base import WITHHELD
from aegis.models import Finding
from aegis.scan import run_scan
from aegis.secrets_guard import refuse_secrets, secret_kind
from tests.support.changes import detach_admin_policy_from

REGION = "us-east-1"
ACCOUNT = "123456789012"
ADMIN = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})

# Each is a valid IAM user name (letters, digits and _+=,.@- only, at most 64 characters) that looks like a secret.
ACCESS_KEY_SHAPED = "AKIA" + "Q7ZK2M4T6V8X0B3N"
JWT_SHAPED = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiYWNrZG9vciJ9.Zx9Qw3Er7Ty1Ui5Op2"
HIGH_ENTROPY_MAX_LENGTH = "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm1Qa2Ws3Ed4Rf5Tg6Yh7Uj8Ik9" + "O"
SECRET_KEY_SHAPED_BUCKET = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0"
# A group name may be 128 characters long.
GROUP_AT_MAX_LENGTH = "eyJ" + "Q7ZK2M4T6V8X0B3N" * 7 + "a1b2c3d4e5f6g"


def test_the_hostile_names_really_look_like_secrets_and_are_valid_aws_names() -> None:
    assert secret_kind(ACCESS_KEY_SHAPED) == "aws-access-key-id"
    assert secret_kind(JWT_SHAPED) == "jwt"
    assert secret_kind(HIGH_ENTROPY_MAX_LENGTH) == "high-entropy"
    assert secret_kind(SECRET_KEY_SHAPED_BUCKET) == "aws-secret-access-key"
    assert secret_kind(GROUP_AT_MAX_LENGTH) is not None
    assert len(HIGH_ENTROPY_MAX_LENGTH) == 64
    assert len(GROUP_AT_MAX_LENGTH) == 128


@pytest.mark.parametrize("user", [ACCESS_KEY_SHAPED, JWT_SHAPED, HIGH_ENTROPY_MAX_LENGTH])
def test_an_admin_policy_attached_to_a_secret_shaped_user_is_still_detached_from_everyone(
    aws: boto3.Session, user: str
) -> None:
    iam = aws.client("iam")
    policy_arn = iam.create_policy(PolicyName="Everything", PolicyDocument=ADMIN)["Policy"]["Arn"]
    iam.create_user(UserName="alice")
    iam.create_user(UserName=user)
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    iam.create_group(GroupName=GROUP_AT_MAX_LENGTH)
    for kind, name in (("user", "alice"), ("user", user), ("role", "app"), ("group", GROUP_AT_MAX_LENGTH)):
        getattr(iam, f"attach_{kind}_policy")(**{f"{kind.capitalize()}Name": name, "PolicyArn": policy_arn})

    result = run_scan(aws, [REGION], check_ids=["iam-admin-policy-attached"])

    [finding] = result.findings
    assert result.withheld == []
    assert finding.remediation == "detach-policy"
    assert sorted(finding.evidence["attachments"]["users"]) == sorted(["alice", user])  # type: ignore[index,call-overload]
    change = CHECKS[finding.check_id].propose(finding, PlanConfig())
    assert isinstance(change, DetachPolicy)
    assert change.detached == {("user", "alice"), ("user", user), ("role", "app"), ("group", GROUP_AT_MAX_LENGTH)}
    # The change is storable as it is: its identifiers are identifiers, wherever the secret guard looks at it.
    refuse_secrets(change, where="plan")
    refuse_secrets(finding, where="scan")
    assert parse_change(change.model_dump(mode="json")) == change


def test_a_public_bucket_named_like_a_secret_key_is_found_and_fixed(aws: boto3.Session) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=SECRET_KEY_SHAPED_BUCKET, ObjectOwnership="ObjectWriter")
    s3.put_bucket_acl(Bucket=SECRET_KEY_SHAPED_BUCKET, ACL="public-read")

    result = run_scan(aws, [REGION], check_ids=["s3-bucket-public"])

    assert [e.error for e in result.errors] == []
    [finding] = result.findings
    assert finding.resource_arn == f"arn:aws:s3:::{SECRET_KEY_SHAPED_BUCKET}"
    assert finding.remediation == "enable-bucket-public-access-block"
    change = CHECKS[finding.check_id].propose(finding, PlanConfig())
    assert isinstance(change, EnableBucketPublicAccessBlock)
    refuse_secrets(change, where="plan")


def test_a_stopped_multi_region_trail_with_a_secret_shaped_name_does_not_stop_the_new_trail(
    aws: boto3.Session,
) -> None:
    logs = "org-trail-logs"
    aws.client("s3").create_bucket(Bucket=logs)
    aws.client("cloudtrail").create_trail(Name=ACCESS_KEY_SHAPED, S3BucketName=logs, IsMultiRegionTrail=True)

    result = run_scan(
        aws, [REGION], check_ids=["cloudtrail-no-multi-region-trail"], plan_config=PlanConfig(trail_bucket=logs)
    )

    [finding] = result.findings
    assert result.withheld == []
    change = CHECKS[finding.check_id].propose(finding, PlanConfig(trail_bucket=logs))
    assert isinstance(change, CreateMultiRegionTrail)
    assert [t.name for t in change.before.trails] == [ACCESS_KEY_SHAPED]
    refuse_secrets(change, where="plan")


def test_approval_texts_withhold_a_secret_shaped_identifier_but_the_digest_covers_it() -> None:
    change = detach_admin_policy_from("alice", ACCESS_KEY_SHAPED, JWT_SHAPED, policy=ACCESS_KEY_SHAPED)
    other = detach_admin_policy_from("alice", "AKIA" + "Q7ZK2M4T6V8X0B3M", JWT_SHAPED, policy=ACCESS_KEY_SHAPED)

    properties = change.approval_properties()
    free_texts = [change.binding_message(), change.summary(), properties["before"], properties["after"]]
    assert not any(ACCESS_KEY_SHAPED in text or JWT_SHAPED in text for text in free_texts)
    assert all(secret_kind(text) is None for text in free_texts)
    assert properties["before"] == f"attached to user {WITHHELD}, user alice, user {WITHHELD}"
    # The resource is shown as the identifier it is (a whole ARN); the digest binds the exact names.
    assert properties["resource"] == change.resource_arn
    assert change.digest != other.digest
    # What goes to the provider and the phone: the digest, and no name outside the resource's ARN.
    from aegis_auth.rar import change_authorization_details

    [details] = change_authorization_details(change)
    sent = json.dumps(details).replace(json.dumps(change.resource_arn), "")
    assert change.digest in sent
    assert ACCESS_KEY_SHAPED not in sent
    assert JWT_SHAPED not in sent


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("bad\u202ename", id="right-to-left override"),
        pytest.param("ops\u200fteam", id="right-to-left mark"),
        pytest.param("bell\x07user", id="control character"),
        pytest.param("nul\x00user", id="nul"),
    ],
)
def test_names_aws_would_refuse_are_still_planned_and_shown_inert(name: str) -> None:
    """AWS refuses such names; an emulator (or a bug) may not. They are still planned (nothing hides a backdoor), and
    every text shown to a person spells the character out instead of letting it act."""
    finding = Finding(
        check_id="iam-admin-policy-attached",
        title="admin",
        cis_v3="1.16",
        cis_v5="1.15",
        severity="high",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/Everything",
        resource_type="AWS::IAM::ManagedPolicy",
        account_id=ACCOUNT,
        region=REGION,
        evidence={"attachments": {"roles": [], "users": ["alice", name], "groups": []}},
        remediation="detach-policy",
    )
    change = CHECKS[finding.check_id].propose(finding, PlanConfig())
    assert isinstance(change, DetachPolicy)
    assert ("user", name) in change.detached
    for text in (change.binding_message(), change.summary(), *change.approval_properties().values()):
        assert not any(ord(c) < 32 or c in "\u202e\u200f" for c in text), repr(text)
    hostile = next(c for c in name if ord(c) < 32 or c in "\u202e\u200f")
    assert f"\\u{ord(hostile):04x}" in change.describe_before()


def test_a_value_withheld_outside_what_the_change_is_built_from_stops_nothing() -> None:
    """Only a withheld value the change would be built from makes a check propose nothing."""
    block = {"block_public_acls": False, "ignore_public_acls": False, "block_public_policy": False}
    finding = Finding(
        check_id="s3-bucket-public",
        title="public",
        cis_v3="2.1.5",
        cis_v5="2.1.4",
        severity="high",
        resource_arn=f"arn:aws:s3:::{SECRET_KEY_SHAPED_BUCKET}",
        resource_type="AWS::S3::Bucket",
        account_id=ACCOUNT,
        region=REGION,
        evidence={
            "public_access_block": block | {"restrict_public_buckets": False},
            "public_policy_statements": [0],
            "policy_note": WITHHELD,
        },
        remediation="enable-bucket-public-access-block",
    )
    assert isinstance(CHECKS[finding.check_id].propose(finding, PlanConfig()), EnableBucketPublicAccessBlock)
    unreadable = finding.model_copy(
        update={"evidence": {**finding.evidence, "public_access_block": block | {"restrict_public_buckets": WITHHELD}}}
    )
    assert CHECKS[finding.check_id].propose(unreadable, PlanConfig()) is None
