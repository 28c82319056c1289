"""The scanner over whole accounts: exact findings on the seeded account, errors that do not stop the scan, withheld
secret-shaped values, and API calls at the list/paginate floor."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import boto3
import pytest

from aegis.checks import CHECKS, PlanConfig, UnknownCheck, kms_key_rotation_off
from aegis.checks.base import EXEMPT_TAG, WITHHELD
from aegis.scan import InvalidScanRequest, ScanAborted, run_scan
from aegis_local.scenario.seed import INJECTION_TEXT, SEEDED_JWT, SeededAccount, seed_account
from tests.support.botocore_answers import answer
from tests.support.moto_account import moto_account

REGION = "us-east-1"
ACCOUNT = "123456789012"
FULL_CONFIG = PlanConfig(
    trail_bucket="org-trail-logs",
    flow_logs_log_group="/aegis/flow-logs",
    flow_logs_role_arn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs",
    config_bucket="org-config-history",
)


@pytest.fixture
def private_session(aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    """A session of its own, for tests that register event handlers on it; retries do not sleep."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def _keys(result) -> set[tuple[str, str]]:
    return {(f.check_id, f.resource_arn) for f in result.findings}


# --- the seeded account (seeded once; these tests only read it) -------------------------------------------------


@pytest.fixture(scope="class")
def seeded() -> Iterator[tuple[boto3.Session, SeededAccount]]:
    with pytest.MonkeyPatch.context() as patch, moto_account(patch) as session:
        yield session, seed_account(session, REGION)


class TestSeededAccount:
    def test_it_yields_exactly_the_expected_findings(self, seeded):
        session, account = seeded

        result = run_scan(session, [REGION], plan_config=FULL_CONFIG)

        assert result.errors == []
        assert result.account_id == ACCOUNT
        assert _keys(result) == account.expected_findings
        assert not {f.resource_arn for f in result.findings} & account.lookalikes
        # Every finding names its CIS controls, and every one is remediable in a full configuration.
        for finding in result.findings:
            meta = CHECKS[finding.check_id].METADATA
            assert (finding.cis_v3, finding.cis_v5) == (meta.cis_v3, meta.cis_v5)
            assert finding.remediation in {meta.remediation_kind, *meta.kinds}

    def test_tags_are_inert_exemptions_kept_and_secret_shaped_values_withheld(self, seeded):
        session, account = seeded

        result = run_scan(session, [REGION])

        by_arn = {f.resource_arn: f for f in result.findings if f.check_id == "ec2-admin-port-open-ipv4"}
        [exempt] = account.exempt_claimed
        assert by_arn[exempt].tags == {EXEMPT_TAG: "bastion, ticket SEC-42"}
        [(jwt_arn, field)] = account.withheld_expected
        assert by_arn[jwt_arn].tags == {EXEMPT_TAG: WITHHELD}
        assert [(w.resource_arn, w.field, w.kind) for w in result.withheld] == [(jwt_arn, field, "jwt")]
        injected_group = account.security_groups["injection-tagged"]
        injected = by_arn[f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{injected_group}"]
        assert injected.tags == {}
        assert injected.remediation == "revoke-security-group-rules"  # the tag's "open port 22" changed nothing
        dumped = result.model_dump_json()
        assert SEEDED_JWT not in dumped
        assert INJECTION_TEXT not in dumped

    def test_the_default_group_in_use_is_marked_so(self, seeded):
        session, account = seeded

        result = run_scan(session, [REGION], check_ids=["ec2-default-sg-allows-traffic"])

        attached = {f.evidence["group_id"]: f.evidence["attached_to_interfaces"] for f in result.findings}
        assert attached[account.security_groups["vulnerable-default"]] is True
        assert attached[account.security_groups["default-default"]] is False

    def test_without_destinations_trail_and_flow_logs_are_notify_only(self, seeded):
        session, _ = seeded

        result = run_scan(session, [REGION], check_ids=["cloudtrail-no-multi-region-trail", "ec2-vpc-flow-logs-off"])

        assert result.findings
        assert {f.remediation for f in result.findings} == {None}

    def test_a_check_that_raises_becomes_a_named_error(self, seeded, monkeypatch):
        session, account = seeded

        def broken(inventory):
            raise KeyError("KeyMetadata")

        monkeypatch.setattr(kms_key_rotation_off, "evaluate", broken)

        result = run_scan(session, [REGION])

        [error] = result.errors
        assert (error.check_id, error.region, error.error) == ("kms-key-rotation-off", REGION, "KeyError")
        assert _keys(result) == {key for key in account.expected_findings if key[0] != "kms-key-rotation-off"}

    def test_resource_counts_give_the_planner_its_share_base(self, seeded):
        session, account = seeded
        ec2 = session.client("ec2", region_name=REGION)

        result = run_scan(session, [REGION])

        assert result.resource_counts == {
            "AWS::EC2::SecurityGroup": len(ec2.describe_security_groups()["SecurityGroups"]),
            "AWS::EC2::VPC": len(ec2.describe_vpcs()["Vpcs"]),
            "AWS::S3::Bucket": len(account.buckets),
            "AWS::IAM::ManagedPolicy": len(account.policies),
            "AWS::IAM::Policy": 5,  # the seed's inline policies, admin and look-alike
            "AWS::KMS::Key": len(account.kms_keys),
            "AWS::RDS::DBInstance": len(account.db_instances),
            "AWS::CloudTrail::Trail": len(account.trails),
            "AWS::EC2::Instance": len(account.instances),
            "AWS::EC2::NetworkAcl": len(ec2.describe_network_acls()["NetworkAcls"]),
            "AWS::EC2::EbsEncryptionByDefault": 1,
            "AWS::S3::AccountPublicAccessBlock": 1,
            "AWS::IAM::AccountPasswordPolicy": 1,
            "AWS::IAM::RootUser": 1,
            "AWS::Config::ConfigurationRecorder": 1,  # the region's recording, one setting per region
        }
        # Every resource type that has a finding has a count at least as large as its flagged resources (several
        # checks may flag the same trail).
        for finding_type in {f.resource_type for f in result.findings}:
            flagged = len({f.resource_arn for f in result.findings if f.resource_type == finding_type})
            assert result.resource_counts[finding_type] >= flagged

    def test_one_worker_and_many_workers_find_the_same(self, seeded):
        session, _ = seeded

        serial = run_scan(session, [REGION], max_workers=1)
        parallel = run_scan(session, [REGION], max_workers=8)

        assert serial.findings == parallel.findings
        assert serial.api_calls == parallel.api_calls


# --- failures that do not stop the scan ----------------------------------------------------------------------------


def _ec2_throttled(request, **_):
    body = (
        b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
        b"</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
    )
    return answer(request.url, 503, body)


def test_a_throttled_listing_fails_its_checks_only_after_retries(private_session):
    sent = []

    def throttle(request, **kwargs):
        sent.append(1)
        return _ec2_throttled(request, **kwargs)

    private_session.events.register_first("before-send.ec2.DescribeSecurityGroupRules", throttle)

    result = run_scan(private_session, [REGION])

    failed = {(e.check_id, e.error) for e in result.errors}
    assert failed == {
        ("ec2-admin-port-open-ipv4", "RequestLimitExceeded"),
        ("ec2-admin-port-open-ipv6", "RequestLimitExceeded"),
        ("ec2-default-sg-allows-traffic", "RequestLimitExceeded"),
    }
    # One listing shared by three checks: retried by botocore, then not called again by the other checks.
    assert result.api_calls["ec2.DescribeSecurityGroupRules"] == 1
    assert len(sent) == 5
    # Everything else was still scanned.
    assert {f.check_id for f in result.findings} >= {
        "ec2-ebs-default-encryption-off",
        "ec2-vpc-flow-logs-off",
        "iam-password-policy-weak",
        "s3-account-public-access-block-off",
        "cloudtrail-no-multi-region-trail",
    }


def test_an_unidentifiable_account_aborts_with_a_named_error(private_session):
    def denied(request, **_):
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error>"
            b"<RequestId>r</RequestId></ErrorResponse>"
        )
        return answer(request.url, 403, body)

    private_session.events.register_first("before-send.sts.GetCallerIdentity", denied)

    with pytest.raises(ScanAborted) as raised:
        run_scan(private_session, [REGION])
    assert raised.value.error == "AccessDenied"


def _admin_policy_attached_to_role(aws: boto3.Session, role_name: str) -> str:
    """An "Admin" policy allowing everything, attached to a new role of that name; the policy's ARN."""
    iam = aws.client("iam", region_name=REGION)
    admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    arn = str(iam.create_policy(PolicyName="Admin", PolicyDocument=admin)["Policy"]["Arn"])
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    return arn


def test_a_secret_shaped_name_is_an_identifier_and_is_planned(aws):
    odd_name = "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm1"
    _admin_policy_attached_to_role(aws, odd_name)

    result = run_scan(aws, [REGION], check_ids=["iam-admin-policy-attached"])

    [finding] = result.findings
    assert result.withheld == []
    assert finding.evidence["attachments"]["roles"] == [odd_name]
    assert finding.remediation == "detach-policy"


def test_a_name_that_does_not_fit_aws_s_own_character_set_is_text(aws):
    # Longer than IAM allows a role name (moto does not check): not a role name, so screened as text.
    too_long = "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm1Qa2Ws3Ed4Rf5Tg6Yh7Uj8Ik9Ol0P"
    arn = _admin_policy_attached_to_role(aws, too_long)

    result = run_scan(aws, [REGION], check_ids=["iam-admin-policy-attached"])

    [finding] = result.findings
    assert finding.evidence["attachments"]["roles"] == [WITHHELD]
    assert finding.remediation is None  # a change naming "<withheld>" would detach nothing real
    [note] = result.withheld
    assert (note.resource_arn, note.field) == (arn, "evidence{3}{0}[0]")
    assert too_long not in result.model_dump_json()


# --- requests and selection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regions", "check_ids", "max_workers", "error"),
    [
        ([], None, 8, InvalidScanRequest),
        ("us-east-1", None, 8, InvalidScanRequest),
        (["us-east-1", "not a region"], None, 8, InvalidScanRequest),
        ([REGION], [], 8, InvalidScanRequest),
        ([REGION], ["no-such-check"], 8, UnknownCheck),
        ([REGION], None, 0, InvalidScanRequest),
    ],
)
def test_bad_requests_are_named_errors(aws, regions, check_ids, max_workers, error):
    with pytest.raises(error):
        run_scan(aws, regions, check_ids=check_ids, max_workers=max_workers)


def test_only_the_selected_checks_run_and_only_their_calls_are_made(aws):
    result = run_scan(aws, [REGION], check_ids=["ec2-ebs-default-encryption-off"])

    assert result.check_ids == ["ec2-ebs-default-encryption-off"]
    assert _keys(result) == {("ec2-ebs-default-encryption-off", f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*")}
    assert result.api_calls == {"sts.GetCallerIdentity": 1, "ec2.GetEbsEncryptionByDefault": 1}


def test_regional_checks_run_per_region_and_account_checks_once(aws):
    regions = [REGION, "eu-west-1"]
    result = run_scan(
        aws, regions, check_ids=["ec2-ebs-default-encryption-off", "iam-password-policy-weak", "s3-bucket-public"]
    )

    assert sorted((f.check_id, f.region) for f in result.findings) == [
        ("ec2-ebs-default-encryption-off", "eu-west-1"),
        ("ec2-ebs-default-encryption-off", REGION),
        ("iam-password-policy-weak", REGION),
    ]
    assert result.api_calls["ec2.GetEbsEncryptionByDefault"] == 2
    assert result.api_calls["iam.GetAccountPasswordPolicy"] == 1


# --- the floor -----------------------------------------------------------------------------------------------------


def test_api_calls_stay_at_the_list_and_paginate_floor(aws):
    ec2 = aws.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    rule_count = 0
    for index in range(25):
        group = ec2.create_security_group(GroupName=f"g{index}", Description="d", VpcId=vpc)["GroupId"]
        permissions = [
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
            for port in range(8000, 8008)
        ]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=permissions)
        rule_count += len(permissions) + 1  # and the default egress rule
    s3 = aws.client("s3", region_name=REGION)
    for index in range(12):
        s3.create_bucket(Bucket=f"floor-{index}", ObjectOwnership="ObjectWriter")
    s3.put_bucket_acl(Bucket="floor-0", ACL="public-read")
    iam = aws.client("iam", region_name=REGION)
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    for index in range(30):
        action = "*" if index == 0 else f"s3:Get{index}"
        document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}
        arn = iam.create_policy(PolicyName=f"p{index}", PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="app", PolicyArn=arn)
    kms = aws.client("kms", region_name=REGION)
    for _ in range(2):
        kms.create_key()

    result = run_scan(aws, [REGION])

    assert result.errors == []
    calls = result.api_calls
    # Listings: one call per page whatever the number of resources (moto answers in one page; AWS pages by 1,000).
    assert calls["ec2.DescribeSecurityGroupRules"] <= math.ceil(rule_count / 1000)
    for listing in (
        "ec2.DescribeSecurityGroups",
        "ec2.DescribeVpcs",
        "ec2.DescribeFlowLogs",
        "ec2.DescribeNetworkInterfaces",
        "ec2.DescribeInstances",
        "ec2.DescribeNetworkAcls",
        "config.DescribeConfigurationRecorders",
        "config.DescribeDeliveryChannels",
        "iam.GetAccountAuthorizationDetails",
        "s3.ListBuckets",
        "kms.ListKeys",
        "kms.ListAliases",
    ):
        assert calls[listing] == 1, listing
    # Per resource only where no listing exists, and only for what needs it.
    assert calls["s3.GetPublicAccessBlock"] == 12
    assert calls["s3.GetBucketAcl"] == 12
    assert calls["s3.GetBucketPolicy"] == 12
    # Every bucket: none denies plain HTTP (s3-bucket-insecure-transport-allowed), the one public bucket among them.
    assert calls["s3.GetBucketTagging"] == 12
    assert calls["iam.ListPolicyTags"] == 1  # the one admin policy
    assert calls["kms.DescribeKey"] == 2
    assert calls["kms.GetKeyRotationStatus"] == 2
    assert calls["kms.ListResourceTags"] == 2  # both keys are flagged
    assert "iam.GetPolicyVersion" not in calls
    assert "iam.ListEntitiesForPolicy" not in calls
    assert "s3.GetBucketPolicyStatus" not in calls


def test_account_block_on_means_no_per_bucket_calls_and_a_note(aws):
    s3 = aws.client("s3", region_name=REGION)
    for index in range(5):
        s3.create_bucket(Bucket=f"quiet-{index}")
    aws.client("s3control", region_name=REGION).put_public_access_block(
        AccountId=ACCOUNT,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )

    result = run_scan(aws, [REGION], check_ids=["s3-account-public-access-block-off", "s3-bucket-public"])

    assert result.findings == []
    assert result.api_calls == {"sts.GetCallerIdentity": 1, "s3control.GetPublicAccessBlock": 1}
    assert any("no per-bucket calls" in note for note in result.notes)
