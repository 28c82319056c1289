"""One change of each forward kind, in the two forms tests need, written side by side per kind:

- a static change (`one_of_each_kind()`): a valid member as a planner would build it, about made-up resources, for
  tests of every half that never call AWS;
- moto-backed cases (`CASES`): a resource created misconfigured in the `aws` fixture's moto account, the approved
  change that fixes it, a way to make it drift and the facts to check it by. The before-states are written out from
  what each case created (not read back through the executor's own readers), so a reader that misreads AWS shows up
  as drift or a failed verification.

Adding a kind adds one section: its `@static` change and its `@case` (tests/unit/test_registry_completeness.py
names a kind that has neither).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail, MultiRegionTrails, TrailSpec
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from aegis.catalogue.kinds.enable_trail_log_file_validation import EnableTrailLogFileValidation, LogFileValidation
from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.catalogue.kinds.strengthen_password_policy import PasswordPolicy, StrengthenPasswordPolicy
from aegis.catalogue.states import PublicAccessBlock
from aegis.models import Risk

ACCOUNT = "123456789012"
# Static changes are about a region of their own; moto cases live where the `aws` fixture's account does.
REGION = "eu-west-1"
CASE_REGION = "us-east-1"
COMMON = {"account_id": ACCOUNT, "region": REGION, "risk": Risk.MEDIUM}

SSH_RULE = SecurityGroupRule(
    rule_id="sgr-0aa1", is_egress=False, ip_protocol="tcp", from_port=22, to_port=22, cidr_ipv4="0.0.0.0/0"
)
RDP_RULE = SecurityGroupRule(
    rule_id="sgr-0bb2", is_egress=False, ip_protocol="tcp", from_port=3389, to_port=3389, cidr_ipv6="::/0"
)
FLOW_LOG = FlowLogDestination(
    log_group_name="/aegis/flow-logs", deliver_logs_role_arn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs-delivery"
)
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


_STATIC: dict[str, Callable[[], ChangeBase]] = {}
# Case name -> builder: the kind, or "<kind>/<variant>" for a kind's further cases.
CASES: dict[str, Callable[[], Case]] = {}


def static[F: Callable[[], ChangeBase]](kind: str) -> Callable[[F], F]:
    """Register the static change of `kind` (one per kind, in the order of this file)."""

    def register(build: F) -> F:
        _STATIC[kind] = build
        return build

    return register


def case[F: Callable[[], Case]](name: str) -> Callable[[F], F]:
    """Register a moto-backed case: `name` is its kind, or "<kind>/<variant>"."""

    def register(build: F) -> F:
        CASES[name] = build
        return build

    return register


def one_of_each_kind() -> list[ChangeBase]:
    """A valid member of every forward kind, as a planner would build it."""
    return [build() for build in _STATIC.values()]


def in_moto[C: ChangeBase](kind: type[C], *, risk: Risk, **fields: Any) -> C:
    """A change of `kind` about a resource of the moto account, in CASE_REGION."""
    return kind.propose(account_id=ACCOUNT, region=CASE_REGION, risk=risk, **fields)


def detach_admin_policy_from(*users: str, policy: str = "Everything") -> DetachPolicy:
    """The detach-policy change of an `Allow * on *` policy attached to `users` (names a test may make hostile), about
    the moto account's region."""
    return in_moto(
        DetachPolicy,
        check_id="iam-admin-policy-attached",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/{policy}",
        risk=Risk.HIGH,
        before=PolicyAttachments(users=users),
        after=PolicyAttachments(),
    )


def _switch_case(
    kind: type[ChangeBase],
    *,
    check_id: str,
    resource_arn: str,
    off: Any,
    on: Any,
    switch_on: Callable[[], None],
    is_on: Callable[[], bool],
) -> Case:
    """The case of a setting that is off and the change turns on (at low risk): it drifts when turned on out of band,
    and its facts are whether it is on."""
    change = in_moto(kind, check_id=check_id, resource_arn=resource_arn, risk=Risk.LOW, before=off, after=on)
    return Case(change, drift=switch_on, facts=is_on, facts_before=False, facts_after=True)


# --- revoke-security-group-rules -------------------------------------------------------------------------------------
@static("revoke-security-group-rules")
def security_group_change() -> ChangeBase:
    return RevokeSecurityGroupRules.propose(
        check_id="ec2-admin-port-open-ipv4",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0abc",
        before=SecurityGroupRules(group_id="sg-0abc", rules=(SSH_RULE, RDP_RULE)),
        after=SecurityGroupRules(group_id="sg-0abc", rules=()),
        **COMMON,
    )


@case("revoke-security-group-rules")
def security_group_case() -> Case:
    ec2 = boto3.client("ec2", region_name=CASE_REGION)
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
    change = in_moto(
        RevokeSecurityGroupRules,
        check_id="ec2-admin-ports-open-to-world",
        resource_arn=f"arn:aws:ec2:{CASE_REGION}:{ACCOUNT}:security-group/{group}",
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
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[ssh.ip_permission()])

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


# --- enable-account-public-access-block ------------------------------------------------------------------------------
@static("enable-account-public-access-block")
def account_public_access_block_change() -> ChangeBase:
    return EnableAccountPublicAccessBlock.propose(
        check_id="s3-account-public-access-block-off",
        resource_arn=f"arn:aws:s3:::account/{ACCOUNT}",
        before=PublicAccessBlock(configured=False),
        after=PublicAccessBlock.all_on(),
        **COMMON,
    )


@case("enable-account-public-access-block")
def account_public_access_block_case() -> Case:
    s3control = boto3.client("s3control", region_name=CASE_REGION)
    change = in_moto(
        EnableAccountPublicAccessBlock,
        check_id="s3-account-public-access-block",
        resource_arn=f"arn:aws:s3:::account/{ACCOUNT}",
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


# --- enable-bucket-public-access-block -------------------------------------------------------------------------------
@static("enable-bucket-public-access-block")
def bucket_public_access_block_change() -> ChangeBase:
    return EnableBucketPublicAccessBlock.propose(
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::public-bucket",
        before=PublicAccessBlock(block_public_acls=True),
        after=PublicAccessBlock.all_on(),
        **COMMON,
    )


@case("enable-bucket-public-access-block")
def bucket_public_access_block_case() -> Case:
    s3 = boto3.client("s3", region_name=CASE_REGION)
    s3.create_bucket(Bucket="aegis-public-bucket")
    partial = PublicAccessBlock(block_public_acls=True, ignore_public_acls=True)
    s3.put_public_access_block(Bucket="aegis-public-bucket", PublicAccessBlockConfiguration=partial.to_aws())
    change = in_moto(
        EnableBucketPublicAccessBlock,
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::aegis-public-bucket",
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


# --- detach-policy ---------------------------------------------------------------------------------------------------
@static("detach-policy")
def detach_policy_change() -> ChangeBase:
    return DetachPolicy.propose(
        check_id="iam-admin-policy-attached",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/AdminEverything",
        before=PolicyAttachments(roles=("ci-deployer",), users=("alice",)),
        after=PolicyAttachments(),
        **COMMON,
    )


@case("detach-policy")
def detach_policy_case() -> Case:
    iam = boto3.client("iam", region_name=CASE_REGION)
    policy_arn = iam.create_policy(PolicyName="everything", PolicyDocument=json.dumps(ADMIN_POLICY))["Policy"]["Arn"]
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(ASSUME_EC2))
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="ops")
    iam.attach_role_policy(RoleName="app", PolicyArn=policy_arn)
    iam.attach_user_policy(UserName="alice", PolicyArn=policy_arn)
    iam.attach_group_policy(GroupName="ops", PolicyArn=policy_arn)
    change = in_moto(
        DetachPolicy,
        check_id="iam-admin-policy-attached",
        resource_arn=policy_arn,
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


# --- strengthen-password-policy --------------------------------------------------------------------------------------
@static("strengthen-password-policy")
def password_policy_change() -> ChangeBase:
    return StrengthenPasswordPolicy.propose(
        check_id="iam-password-policy-weak",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:account-password-policy",
        before=PasswordPolicy(minimum_password_length=8, require_symbols=True),
        after=PasswordPolicy(minimum_password_length=8, require_symbols=True).strengthened(),
        **COMMON,
    )


def _strengthen_in_moto(before: PasswordPolicy) -> StrengthenPasswordPolicy:
    return in_moto(
        StrengthenPasswordPolicy,
        check_id="iam-password-policy-weak",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:account-password-policy",
        risk=Risk.LOW,
        before=before,
        after=before.strengthened(),
    )


@case("strengthen-password-policy")
def password_policy_case() -> Case:
    iam = boto3.client("iam", region_name=CASE_REGION)
    iam.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=True, MaxPasswordAge=90)
    change = _strengthen_in_moto(PasswordPolicy.from_aws(iam.get_account_password_policy()["PasswordPolicy"]))

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


@case("strengthen-password-policy/none-before")
def no_password_policy_case() -> Case:
    iam = boto3.client("iam", region_name=CASE_REGION)
    change = _strengthen_in_moto(PasswordPolicy(exists=False))

    def facts() -> tuple[Any, ...] | None:
        try:
            policy = iam.get_account_password_policy()["PasswordPolicy"]
        except iam.exceptions.NoSuchEntityException:
            return None
        return (policy["MinimumPasswordLength"], policy.get("PasswordReusePrevention"))

    def drift() -> None:
        iam.update_account_password_policy(MinimumPasswordLength=6)

    return Case(change, drift, facts, None, (14, 24))


# --- enable-ebs-default-encryption -----------------------------------------------------------------------------------
@static("enable-ebs-default-encryption")
def ebs_default_encryption_change() -> ChangeBase:
    return EnableEbsDefaultEncryption.propose(
        check_id="ec2-ebs-default-encryption-off",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:ebs-default-encryption",
        before=EbsDefaultEncryption(enabled=False),
        after=EbsDefaultEncryption(enabled=True),
        **COMMON,
    )


@case("enable-ebs-default-encryption")
def ebs_default_encryption_case() -> Case:
    ec2 = boto3.client("ec2", region_name=CASE_REGION)
    return _switch_case(
        EnableEbsDefaultEncryption,
        check_id="ec2-ebs-default-encryption",
        resource_arn=f"arn:aws:ec2:{CASE_REGION}:{ACCOUNT}:ebs-default-encryption",
        off=EbsDefaultEncryption(enabled=False),
        on=EbsDefaultEncryption(enabled=True),
        switch_on=ec2.enable_ebs_encryption_by_default,
        is_on=lambda: bool(ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]),
    )


# --- enable-kms-key-rotation -----------------------------------------------------------------------------------------
@static("enable-kms-key-rotation")
def kms_key_rotation_change() -> ChangeBase:
    return EnableKmsKeyRotation.propose(
        check_id="kms-key-rotation-off",
        resource_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        before=KeyRotation(rotation_enabled=False),
        after=KeyRotation(rotation_enabled=True),
        **COMMON,
    )


@case("enable-kms-key-rotation")
def kms_key_rotation_case() -> Case:
    kms = boto3.client("kms", region_name=CASE_REGION)
    key_arn = kms.create_key(Description="data key")["KeyMetadata"]["Arn"]
    return _switch_case(
        EnableKmsKeyRotation,
        check_id="kms-key-rotation",
        resource_arn=key_arn,
        off=KeyRotation(rotation_enabled=False),
        on=KeyRotation(rotation_enabled=True),
        switch_on=lambda: kms.enable_key_rotation(KeyId=key_arn),
        is_on=lambda: bool(kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"]),
    )


# --- create-vpc-flow-logs --------------------------------------------------------------------------------------------
@static("create-vpc-flow-logs")
def vpc_flow_logs_change() -> ChangeBase:
    return CreateVpcFlowLogs.propose(
        check_id="ec2-vpc-flow-logs-off",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0abc",
        before=VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=()),
        after=VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=(FLOW_LOG,)),
        **COMMON,
    )


@case("create-vpc-flow-logs")
def vpc_flow_logs_case() -> Case:
    ec2 = boto3.client("ec2", region_name=CASE_REGION)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    destination = FlowLogDestination(
        log_group_name="/aegis/flow-logs",
        deliver_logs_role_arn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs-delivery",
        traffic_type="REJECT",
    )
    change = in_moto(
        CreateVpcFlowLogs,
        check_id="vpc-flow-logs",
        resource_arn=f"arn:aws:ec2:{CASE_REGION}:{ACCOUNT}:vpc/{vpc}",
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


# --- create-multi-region-trail ---------------------------------------------------------------------------------------
@static("create-multi-region-trail")
def multi_region_trail_change() -> ChangeBase:
    return CreateMultiRegionTrail.propose(
        check_id="cloudtrail-no-multi-region-trail",
        resource_arn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/aegis-trail",
        before=MultiRegionTrails(trails=()),
        after=MultiRegionTrails(trails=(TrailSpec(name="aegis-trail", s3_bucket="aegis-trail-logs"),)),
        **COMMON,
    )


@case("create-multi-region-trail")
def multi_region_trail_case() -> Case:
    s3 = boto3.client("s3", region_name=CASE_REGION)
    cloudtrail = boto3.client("cloudtrail", region_name=CASE_REGION)
    s3.create_bucket(Bucket="aegis-trail-logs")
    trail = TrailSpec(name="aegis-trail", s3_bucket="aegis-trail-logs")
    arn = f"arn:aws:cloudtrail:{CASE_REGION}:{ACCOUNT}:trail/aegis-trail"
    change = in_moto(
        CreateMultiRegionTrail,
        check_id="cloudtrail-multi-region",
        resource_arn=arn,
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


# --- enable-trail-log-file-validation --------------------------------------------------------------------------------
@static("enable-trail-log-file-validation")
def trail_log_file_validation_change() -> ChangeBase:
    return EnableTrailLogFileValidation.propose(
        check_id="cloudtrail-log-file-validation-off",
        resource_arn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/org-trail",
        before=LogFileValidation(enabled=False),
        after=LogFileValidation(enabled=True),
        **COMMON,
    )


@case("enable-trail-log-file-validation")
def trail_log_file_validation_case() -> Case:
    boto3.client("s3", region_name=CASE_REGION).create_bucket(Bucket="org-trail-logs")
    cloudtrail = boto3.client("cloudtrail", region_name=CASE_REGION)
    arn = cloudtrail.create_trail(Name="org-trail", S3BucketName="org-trail-logs", IsMultiRegionTrail=True)["TrailARN"]
    change = in_moto(
        EnableTrailLogFileValidation,
        check_id="cloudtrail-log-file-validation-off",
        resource_arn=arn,
        risk=Risk.LOW,
        before=LogFileValidation(enabled=False),
        after=LogFileValidation(enabled=True),
    )

    def facts() -> tuple[bool, bool]:
        [trail] = cloudtrail.describe_trails()["trailList"]
        return (trail["LogFileValidationEnabled"], trail["IsMultiRegionTrail"])

    def drift() -> None:
        cloudtrail.update_trail(Name=arn, EnableLogFileValidation=True)

    return Case(change, drift, facts, (False, True), (True, True))
