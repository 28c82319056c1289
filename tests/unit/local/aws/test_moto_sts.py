"""`MotoStsFix`: cross-account AssumeRole is refused as on AWS when the role does not exist, its trust names another
account, or the trust's sts:ExternalId condition does not hold; same-account AssumeRole and AssumeRoleWithWebIdentity
keep moto's behaviour; uninstall restores moto."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis_local.aws.moto_sts import MotoStsFix, trust_refusal
from aegis_local.aws.organization import account_session

SECURITY = "123456789012"
MEMBER = "210987654321"
EXTERNAL_ID = "aegiscloud"


def trust(principal: object, external_id: str | None = EXTERNAL_ID) -> str:
    statement: dict[str, object] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def fix(aws: boto3.Session) -> Iterator[boto3.Session]:
    MotoStsFix.install()
    try:
        yield aws
    finally:
        MotoStsFix.uninstall()


def member_role(name: str, document: str) -> str:
    iam = account_session(MEMBER, "us-east-1").client("iam")
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)["Role"]["Arn"])


def assume(session: boto3.Session, arn: str, external_id: str | None = EXTERNAL_ID) -> dict[str, object]:
    extra = {"ExternalId": external_id} if external_id is not None else {}
    return session.client("sts").assume_role(RoleArn=arn, RoleSessionName="test-session", **extra)  # type: ignore[no-any-return]


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_trusted_role_with_the_right_external_id_is_assumed_and_acts_in_its_account(fix: boto3.Session) -> None:
    arn = member_role("AegisScanRole", trust({"AWS": f"arn:aws:iam::{SECURITY}:role/aegis-agent"}))
    answer = assume(fix, arn)
    assert answer["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{MEMBER}:assumed-role/AegisScanRole/")  # type: ignore[index]
    credentials = answer["Credentials"]
    assumed = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],  # type: ignore[index]
        aws_secret_access_key=credentials["SecretAccessKey"],  # type: ignore[index]
        aws_session_token=credentials["SessionToken"],  # type: ignore[index]
        region_name="us-east-1",
    )
    assert assumed.client("sts").get_caller_identity()["Account"] == MEMBER


def test_a_role_that_does_not_exist_is_access_denied(fix: boto3.Session) -> None:
    with pytest.raises(ClientError) as refused:
        assume(fix, f"arn:aws:iam::{MEMBER}:role/AegisScanRole")
    assert error_code(refused) == "AccessDenied"


@pytest.mark.parametrize("external_id", ["wrong", None])
def test_a_wrong_or_missing_external_id_is_access_denied(fix: boto3.Session, external_id: str | None) -> None:
    arn = member_role("AegisScanRole", trust({"AWS": f"arn:aws:iam::{SECURITY}:root"}))
    with pytest.raises(ClientError) as refused:
        assume(fix, arn, external_id)
    assert error_code(refused) == "AccessDenied"


def test_a_trust_naming_another_account_is_access_denied(fix: boto3.Session) -> None:
    arn = member_role("AegisScanRole", trust({"AWS": "arn:aws:iam::111122223333:role/someone"}))
    with pytest.raises(ClientError) as refused:
        assume(fix, arn)
    assert error_code(refused) == "AccessDenied"


def test_a_service_only_trust_is_access_denied(fix: boto3.Session) -> None:
    arn = member_role("AppRole", trust({"Service": "ec2.amazonaws.com"}, external_id=None))
    with pytest.raises(ClientError) as refused:
        assume(fix, arn)
    assert error_code(refused) == "AccessDenied"


def test_same_account_and_web_identity_keep_moto_behaviour(fix: boto3.Session) -> None:
    # Same account: moto's answer, whether the role exists or not (the fix is about crossing accounts).
    assume(fix, f"arn:aws:iam::{SECURITY}:role/not-created-here", external_id=None)
    # AssumeRoleWithWebIdentity into a member role that does not exist: still moto's answer.
    answer = fix.client("sts").assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/AegisRemediationRole",
        RoleSessionName="test-session",
        WebIdentityToken="x" * 20,
    )
    assert f":{MEMBER}:" in answer["AssumedRoleUser"]["Arn"]


def test_uninstall_restores_moto(aws: boto3.Session) -> None:
    MotoStsFix.install()
    MotoStsFix.uninstall()
    assert not MotoStsFix.installed()
    assume(aws, f"arn:aws:iam::{MEMBER}:role/AegisScanRole")


@pytest.mark.parametrize(
    ("document", "external_id", "refused"),
    [
        (trust({"AWS": SECURITY}), EXTERNAL_ID, False),
        (trust("*"), EXTERNAL_ID, False),
        (trust({"AWS": [f"arn:aws:iam::{SECURITY}:role/x", "arn:aws:iam::1:root"]}), EXTERNAL_ID, False),
        (trust({"AWS": SECURITY}, external_id=None), None, False),
        (trust({"AWS": SECURITY}), "other", True),
        (trust({"AWS": "999999999999"}), EXTERNAL_ID, True),
        (
            json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": SECURITY},
                            "Action": "sts:*",
                            "Condition": {"StringLike": {"sts:ExternalId": "aegis*"}},
                        }
                    ]
                }
            ),
            EXTERNAL_ID,
            False,
        ),
        (
            json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": SECURITY}, "Action": "s3:*"}]}),
            None,
            True,
        ),
    ],
)
def test_trust_refusal(document: str, external_id: str | None, refused: bool) -> None:
    assert (trust_refusal(document, SECURITY, external_id) is not None) is refused
