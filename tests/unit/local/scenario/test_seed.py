"""The seeded vulnerable account: each misconfiguration and each look-alike really exists (read back with plain
AWS calls, independently of the checks), and a scan of it finds exactly what it promises, in any region."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from aegis.checks import CHECKS
from aegis.scan import run_scan
from aegis.secrets_guard import secret_kind
from aegis_local.scenario.seed import EXEMPT_REASON, INJECTION_TEXT, SEEDED_JWT, SeededAccount, seed_account

REGION = "us-east-1"


@pytest.fixture(scope="class")
def seeded() -> Iterator[tuple[boto3.Session, SeededAccount]]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        yield session, seed_account(session, REGION)


def _ingress(ec2, group_id: str) -> set[tuple[str, int, str]]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return {
        (
            r["IpProtocol"],
            r["FromPort"],
            r.get("CidrIpv4") or r.get("CidrIpv6") or r.get("ReferencedGroupInfo", {}).get("GroupId"),
        )
        for r in rules["SecurityGroupRules"]
        if not r["IsEgress"]
    }


class TestSeededAccount:
    def test_every_check_but_root_keys_has_an_expected_finding(self, seeded):
        _, account = seeded
        covered = {check_id for check_id, _ in account.expected_findings}
        # Root access keys cannot be created through any API: that check is covered by its own unit test.
        assert covered == set(CHECKS) - {"iam-root-access-keys"}
        assert not {arn for _, arn in account.expected_findings} & account.lookalikes

    def test_security_groups_are_as_described(self, seeded):
        session, account = seeded
        ec2 = session.client("ec2", region_name=REGION)
        groups = account.security_groups

        assert _ingress(ec2, groups["admin-open"]) == {
            ("tcp", 22, "0.0.0.0/0"),
            ("tcp", 3389, "0.0.0.0/0"),
            ("tcp", 443, "0.0.0.0/0"),
        }
        assert ("tcp", 22, "::/0") in _ingress(ec2, groups["ssh-open-ipv6"])
        assert _ingress(ec2, groups["ssh-internal"]) == {("tcp", 22, "10.0.0.0/8")}
        assert _ingress(ec2, groups["vulnerable-default"]) == {("-1", -1, groups["vulnerable-default"])}
        clean_default = ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [groups["clean-default"]]}]
        )["SecurityGroupRules"]
        assert clean_default == []
        tags = {
            g["GroupId"]: {t["Key"]: t["Value"] for t in g.get("Tags", [])}
            for g in ec2.describe_security_groups()["SecurityGroups"]
        }
        assert tags[groups["bastion"]] == {"aegis:exempt": EXEMPT_REASON}
        assert tags[groups["injection-tagged"]] == {"Note": INJECTION_TEXT}
        assert tags[groups["jwt-tagged"]] == {"aegis:exempt": SEEDED_JWT}
        assert secret_kind(SEEDED_JWT) == "jwt"

    def test_buckets_policies_and_account_settings_are_as_described(self, seeded):
        session, account = seeded
        s3 = session.client("s3", region_name=REGION)
        grants = s3.get_bucket_acl(Bucket=account.buckets["public-acl"])["Grants"]
        assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)
        assert '"Principal": "*"' in s3.get_bucket_policy(Bucket=account.buckets["public-policy"])["Policy"]
        assert not any(g["Grantee"].get("URI") for g in s3.get_bucket_acl(Bucket=account.buckets["private"])["Grants"])
        with pytest.raises(s3.exceptions.ClientError, match="NoSuchPublicAccessBlockConfiguration"):
            session.client("s3control", region_name=REGION).get_public_access_block(AccountId=account.account_id)

        iam = session.client("iam", region_name=REGION)
        attached = {
            p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=account.role_name)["AttachedPolicies"]
        }
        assert attached == {account.policies["admin"], account.policies["power"], account.policies["scoped"]}
        policy = iam.get_account_password_policy()["PasswordPolicy"]
        assert (policy["MinimumPasswordLength"], policy["PasswordReusePrevention"]) == (8, 5)

        ec2 = session.client("ec2", region_name=REGION)
        assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
        assert {log["ResourceId"] for log in ec2.describe_flow_logs()["FlowLogs"]} == {account.vpcs["clean"]}

        kms = session.client("kms", region_name=REGION)
        rotation = {
            role: kms.get_key_rotation_status(KeyId=arn.rsplit("/", 1)[-1])["KeyRotationEnabled"]
            for role, arn in account.kms_keys.items()
        }
        assert rotation == {"no-rotation": False, "rotating": True}

        trails = {t["Name"]: t for t in session.client("cloudtrail", region_name=REGION).describe_trails()["trailList"]}
        assert trails[account.trails["stopped-multi-region"]]["IsMultiRegionTrail"] is True
        assert trails[account.trails["regional"]]["IsMultiRegionTrail"] is False


def test_a_scan_of_a_fresh_account_seeded_in_another_region_finds_exactly_the_expected(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
    with mock_aws():
        account = seed_account(session, "eu-west-1")

        result = run_scan(session, ["eu-west-1"])

    assert result.errors == []
    assert {(f.check_id, f.resource_arn) for f in result.findings} == account.expected_findings
    regional = [f for f in result.findings if f.resource_arn.startswith(("arn:aws:ec2:", "arn:aws:kms:"))]
    assert regional
    assert {f.region for f in regional} == {"eu-west-1"}


def test_a_second_region_of_the_same_member_account_reuses_the_global_resources_and_scans_exactly(monkeypatch):
    """An organization's member is seeded once per region through a session acting in it: IAM and S3 (global) are
    created by the first region and found again by the second, and a scan of each region alone finds exactly what
    that region's seeding promises, in that account."""
    from aegis_local.aws.organization import account_session

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    member = "210987654321"
    with mock_aws():
        first = seed_account(account_session(member, "us-east-1"), "us-east-1")
        second_session = account_session(member, "eu-west-1")
        second = seed_account(second_session, "eu-west-1")
        result = run_scan(second_session, ["eu-west-1"])
        own = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        own_roles = {r["RoleName"] for r in own.client("iam").list_roles()["Roles"]}

    assert first.account_id == second.account_id == member
    assert first.policies == second.policies
    assert first.buckets == second.buckets
    assert first.security_groups["admin-open"] != second.security_groups["admin-open"]
    assert result.errors == []
    assert {(f.check_id, f.resource_arn) for f in result.findings} == second.expected_findings
    assert all(f":{member}:" in arn or arn.startswith("arn:aws:s3:::") for _, arn in second.expected_findings)
    assert first.role_name not in own_roles


def test_seeding_the_same_region_twice_is_refused(monkeypatch):
    from aegis_local.scenario.seed import AlreadySeeded

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    with mock_aws():
        seed_account(session, REGION)
        with pytest.raises(AlreadySeeded, match="seeded already in us-east-1"):
            seed_account(session, REGION)
