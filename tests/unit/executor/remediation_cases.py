"""One misconfigured moto resource per catalogue kind, with the change that fixes it and a way to make it drift.

The before-states are written out from what each case created (not read back through the executor's own readers),
so a reader that misreads AWS shows up as drift or a failed verification.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from aegis.catalogue import (
    ChangeBase,
    CreateMultiRegionTrail,
    CreateVpcFlowLogs,
    DetachPolicy,
    EbsDefaultEncryption,
    EnableAccountPublicAccessBlock,
    EnableBucketPublicAccessBlock,
    EnableEbsDefaultEncryption,
    EnableKmsKeyRotation,
    FlowLogDestination,
    KeyRotation,
    MultiRegionTrails,
    PasswordPolicy,
    PolicyAttachments,
    PublicAccessBlock,
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
    StrengthenPasswordPolicy,
    TrailSpec,
    VpcFlowLogs,
)
from aegis.models import Risk
from aegis_executor.iam_actions import iam_action_of

ACCOUNT = "123456789012"
REGION = "us-east-1"

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ASSUME_EC2 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@dataclass(frozen=True)
class Case:
    """A resource in a misconfigured state and the approved change for it."""

    change: ChangeBase
    # Changes the resource out of band so that it no longer matches the approved before-state.
    drift: Callable[[], None]
    # Reads the resource with plain boto3 (not the executor's reader): the facts a user would check.
    facts: Callable[[], Any]
    facts_before: Any
    facts_after: Any


def security_group_case() -> Case:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]

    def authorize(port: int, **peer: Any) -> SecurityGroupRule:
        ranges = {"IpRanges": [{"CidrIp": peer["cidr_ipv4"]}]} if "cidr_ipv4" in peer else {}
        ranges |= {"Ipv6Ranges": [{"CidrIpv6": peer["cidr_ipv6"]}]} if "cidr_ipv6" in peer else {}
        answer = ec2.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **ranges}]
        )
        rule_id = answer["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        return SecurityGroupRule(
            rule_id=rule_id, is_egress=False, ip_protocol="tcp", from_port=port, to_port=port, **peer
        )

    ssh = authorize(22, cidr_ipv4="0.0.0.0/0")
    rdp = authorize(3389, cidr_ipv6="::/0")
    https = authorize(443, cidr_ipv4="10.0.0.0/8")
    egress_id = next(
        r["SecurityGroupRuleId"]
        for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
            "SecurityGroupRules"
        ]
        if r["IsEgress"]
    )
    egress = SecurityGroupRule(
        rule_id=egress_id, is_egress=True, ip_protocol="-1", from_port=-1, to_port=-1, cidr_ipv4="0.0.0.0/0"
    )
    change = RevokeSecurityGroupRules.propose(
        check_id="ec2-admin-ports-open-to-world",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.MEDIUM,
        before=SecurityGroupRules(group_id=group, rules=(ssh, rdp, https, egress)),
        after=SecurityGroupRules(group_id=group, rules=(https, egress)),
    )

    def facts() -> set[tuple[Any, ...]]:
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
        return {
            (r["IsEgress"], r["IpProtocol"], r.get("FromPort"), r.get("CidrIpv4") or r.get("CidrIpv6"))
            for r in rules["SecurityGroupRules"]
        }

    def drift() -> None:
        # The rule is removed and re-added: same meaning, new id. The approved ids no longer exist.
        ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[ssh.rule_id])
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )

    everything = {
        (False, "tcp", 22, "0.0.0.0/0"),
        (False, "tcp", 3389, "::/0"),
        (False, "tcp", 443, "10.0.0.0/8"),
        (True, "-1", -1, "0.0.0.0/0"),
    }
    return Case(
        change=change,
        drift=drift,
        facts=facts,
        facts_before=everything,
        facts_after={(False, "tcp", 443, "10.0.0.0/8"), (True, "-1", -1, "0.0.0.0/0")},
    )


def account_public_access_block_case() -> Case:
    s3control = boto3.client("s3control", region_name=REGION)
    change = EnableAccountPublicAccessBlock.propose(
        check_id="s3-account-public-access-block",
        resource_arn=f"arn:aws:s3:::account/{ACCOUNT}",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.MEDIUM,
        before=PublicAccessBlock(configured=False),
        after=PublicAccessBlock.all_on(),
    )

    def facts() -> dict[str, bool] | None:
        try:
            return dict(s3control.get_public_access_block(AccountId=ACCOUNT)["PublicAccessBlockConfiguration"])
        except s3control.exceptions.NoSuchPublicAccessBlockConfiguration:
            return None

    def drift() -> None:
        s3control.put_public_access_block(
            AccountId=ACCOUNT, PublicAccessBlockConfiguration=PublicAccessBlock(block_public_acls=True).to_aws()
        )

    return Case(change, drift, facts, None, PublicAccessBlock.all_on().to_aws())


def bucket_public_access_block_case() -> Case:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="aegis-public-bucket")
    partial = PublicAccessBlock(block_public_acls=True, ignore_public_acls=True)
    s3.put_public_access_block(Bucket="aegis-public-bucket", PublicAccessBlockConfiguration=partial.to_aws())
    change = EnableBucketPublicAccessBlock.propose(
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::aegis-public-bucket",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.MEDIUM,
        before=partial,
        after=PublicAccessBlock.all_on(),
    )

    def facts() -> dict[str, bool]:
        return dict(s3.get_public_access_block(Bucket="aegis-public-bucket")["PublicAccessBlockConfiguration"])

    def drift() -> None:
        s3.put_public_access_block(
            Bucket="aegis-public-bucket", PublicAccessBlockConfiguration=PublicAccessBlock().to_aws()
        )

    return Case(change, drift, facts, partial.to_aws(), PublicAccessBlock.all_on().to_aws())


def detach_policy_case() -> Case:
    iam = boto3.client("iam", region_name=REGION)
    policy_arn = iam.create_policy(PolicyName="everything", PolicyDocument=json.dumps(ADMIN_POLICY))["Policy"]["Arn"]
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(ASSUME_EC2))
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="ops")
    iam.attach_role_policy(RoleName="app", PolicyArn=policy_arn)
    iam.attach_user_policy(UserName="alice", PolicyArn=policy_arn)
    iam.attach_group_policy(GroupName="ops", PolicyArn=policy_arn)
    change = DetachPolicy.propose(
        check_id="iam-admin-policy-attached",
        resource_arn=policy_arn,
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.HIGH,
        before=PolicyAttachments(roles=("app",), users=("alice",), groups=("ops",)),
        after=PolicyAttachments(),
    )

    def facts() -> set[tuple[str, str]]:
        page = iam.list_entities_for_policy(PolicyArn=policy_arn)
        return (
            {("role", r["RoleName"]) for r in page["PolicyRoles"]}
            | {("user", u["UserName"]) for u in page["PolicyUsers"]}
            | {("group", g["GroupName"]) for g in page["PolicyGroups"]}
        )

    def drift() -> None:
        iam.detach_user_policy(UserName="alice", PolicyArn=policy_arn)

    return Case(change, drift, facts, {("role", "app"), ("user", "alice"), ("group", "ops")}, set())


def password_policy_case() -> Case:
    iam = boto3.client("iam", region_name=REGION)
    iam.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=True, MaxPasswordAge=90)
    before = PasswordPolicy.from_aws(iam.get_account_password_policy()["PasswordPolicy"])
    change = StrengthenPasswordPolicy.propose(
        check_id="iam-password-policy-weak",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:account-password-policy",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.LOW,
        before=before,
        after=before.strengthened(),
    )

    def facts() -> tuple[Any, ...]:
        policy = iam.get_account_password_policy()["PasswordPolicy"]
        return (
            policy["MinimumPasswordLength"],
            policy.get("PasswordReusePrevention"),
            policy["RequireSymbols"],
            policy.get("MaxPasswordAge"),
        )

    def drift() -> None:
        iam.update_account_password_policy(MinimumPasswordLength=10, RequireSymbols=True, MaxPasswordAge=90)

    return Case(change, drift, facts, (8, None, True, 90), (14, 24, True, 90))


def no_password_policy_case() -> Case:
    iam = boto3.client("iam", region_name=REGION)
    before = PasswordPolicy(exists=False)
    change = StrengthenPasswordPolicy.propose(
        check_id="iam-password-policy-weak",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:account-password-policy",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.LOW,
        before=before,
        after=before.strengthened(),
    )

    def facts() -> tuple[Any, ...] | None:
        try:
            policy = iam.get_account_password_policy()["PasswordPolicy"]
        except iam.exceptions.NoSuchEntityException:
            return None
        return (policy["MinimumPasswordLength"], policy.get("PasswordReusePrevention"))

    def drift() -> None:
        iam.update_account_password_policy(MinimumPasswordLength=6)

    return Case(change, drift, facts, None, (14, 24))


def ebs_default_encryption_case() -> Case:
    ec2 = boto3.client("ec2", region_name=REGION)
    change = EnableEbsDefaultEncryption.propose(
        check_id="ec2-ebs-default-encryption",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:ebs-default-encryption",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.LOW,
        before=EbsDefaultEncryption(enabled=False),
        after=EbsDefaultEncryption(enabled=True),
    )

    def drift() -> None:
        ec2.enable_ebs_encryption_by_default()

    def facts() -> bool:
        return bool(ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])

    return Case(change, drift, facts, facts_before=False, facts_after=True)


def kms_key_rotation_case() -> Case:
    kms = boto3.client("kms", region_name=REGION)
    key_arn = kms.create_key(Description="data key")["KeyMetadata"]["Arn"]
    change = EnableKmsKeyRotation.propose(
        check_id="kms-key-rotation",
        resource_arn=key_arn,
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.LOW,
        before=KeyRotation(rotation_enabled=False),
        after=KeyRotation(rotation_enabled=True),
    )

    def drift() -> None:
        kms.enable_key_rotation(KeyId=key_arn)

    def facts() -> bool:
        return bool(kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"])

    return Case(change, drift, facts, facts_before=False, facts_after=True)


def vpc_flow_logs_case() -> Case:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    destination = FlowLogDestination(
        log_group_name="/aegis/flow-logs",
        deliver_logs_role_arn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs-delivery",
        traffic_type="REJECT",
    )
    change = CreateVpcFlowLogs.propose(
        check_id="vpc-flow-logs",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{vpc}",
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.LOW,
        before=VpcFlowLogs(vpc_id=vpc, flow_logs=()),
        after=VpcFlowLogs(vpc_id=vpc, flow_logs=(destination,)),
    )

    def facts() -> set[tuple[str, str]]:
        found = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
        return {(f["LogGroupName"], f["TrafficType"]) for f in found}

    def drift() -> None:
        ec2.create_flow_logs(
            ResourceIds=[vpc],
            ResourceType="VPC",
            TrafficType="REJECT",
            LogGroupName="/aegis/flow-logs",
            DeliverLogsPermissionArn=destination.deliver_logs_role_arn,
        )

    return Case(change, drift, facts, set(), {("/aegis/flow-logs", "REJECT")})


def multi_region_trail_case() -> Case:
    s3 = boto3.client("s3", region_name=REGION)
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    s3.create_bucket(Bucket="aegis-trail-logs")
    trail = TrailSpec(name="aegis-trail", s3_bucket="aegis-trail-logs")
    arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/aegis-trail"
    change = CreateMultiRegionTrail.propose(
        check_id="cloudtrail-multi-region",
        resource_arn=arn,
        account_id=ACCOUNT,
        region=REGION,
        risk=Risk.LOW,
        before=MultiRegionTrails(trails=()),
        after=MultiRegionTrails(trails=(trail,)),
    )

    def facts() -> tuple[Any, ...] | None:
        for found in cloudtrail.describe_trails()["trailList"]:
            if found["Name"] == "aegis-trail":
                status = cloudtrail.get_trail_status(Name=arn)
                return (found["IsMultiRegionTrail"], found["LogFileValidationEnabled"], status["IsLogging"])
        return None

    def drift() -> None:
        cloudtrail.create_trail(Name="aegis-trail", S3BucketName="aegis-trail-logs")

    return Case(change, drift, facts, None, (True, True, True))


class ActionRecorder:
    """Records the IAM action of every AWS call made through one boto3 Session (botocore `before-call` events)."""

    def __init__(self, session: boto3.Session) -> None:
        self.actions: list[str] = []
        session.events.register("before-call", self._record)

    def _record(self, model: object, **_: object) -> None:
        self.actions.append(iam_action_of(model))  # type: ignore[arg-type]

    def take(self) -> list[str]:
        taken, self.actions = self.actions, []
        return taken


CASES: dict[str, Callable[[], Case]] = {
    "revoke-security-group-rules": security_group_case,
    "enable-account-public-access-block": account_public_access_block_case,
    "enable-bucket-public-access-block": bucket_public_access_block_case,
    "detach-policy": detach_policy_case,
    "strengthen-password-policy": password_policy_case,
    "strengthen-password-policy/none-before": no_password_policy_case,
    "enable-ebs-default-encryption": ebs_default_encryption_case,
    "enable-kms-key-rotation": kms_key_rotation_case,
    "create-vpc-flow-logs": vpc_flow_logs_case,
    "create-multi-region-trail": multi_region_trail_case,
}
