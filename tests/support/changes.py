"""Valid catalogue members of every kind, as a planner would build them; shared by tests of every half."""

from __future__ import annotations

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

ACCOUNT = "123456789012"
REGION = "eu-west-1"
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


def one_of_each_kind() -> list[ChangeBase]:
    """A valid member of every forward kind, as a planner would build it."""
    return [
        RevokeSecurityGroupRules.propose(
            check_id="ec2-admin-port-open-ipv4",
            resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0abc",
            before=SecurityGroupRules(group_id="sg-0abc", rules=(SSH_RULE, RDP_RULE)),
            after=SecurityGroupRules(group_id="sg-0abc", rules=()),
            **COMMON,
        ),
        EnableAccountPublicAccessBlock.propose(
            check_id="s3-account-public-access-block-off",
            resource_arn=f"arn:aws:s3:::account/{ACCOUNT}",
            before=PublicAccessBlock(configured=False),
            after=PublicAccessBlock.all_on(),
            **COMMON,
        ),
        EnableBucketPublicAccessBlock.propose(
            check_id="s3-bucket-public",
            resource_arn="arn:aws:s3:::public-bucket",
            before=PublicAccessBlock(block_public_acls=True),
            after=PublicAccessBlock.all_on(),
            **COMMON,
        ),
        DetachPolicy.propose(
            check_id="iam-admin-policy-attached",
            resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/AdminEverything",
            before=PolicyAttachments(roles=("ci-deployer",), users=("alice",)),
            after=PolicyAttachments(),
            **COMMON,
        ),
        StrengthenPasswordPolicy.propose(
            check_id="iam-password-policy-weak",
            resource_arn=f"arn:aws:iam::{ACCOUNT}:account-password-policy",
            before=PasswordPolicy(minimum_password_length=8, require_symbols=True),
            after=PasswordPolicy(minimum_password_length=8, require_symbols=True).strengthened(),
            **COMMON,
        ),
        EnableEbsDefaultEncryption.propose(
            check_id="ec2-ebs-default-encryption-off",
            resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:ebs-default-encryption",
            before=EbsDefaultEncryption(enabled=False),
            after=EbsDefaultEncryption(enabled=True),
            **COMMON,
        ),
        EnableKmsKeyRotation.propose(
            check_id="kms-key-rotation-off",
            resource_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            before=KeyRotation(rotation_enabled=False),
            after=KeyRotation(rotation_enabled=True),
            **COMMON,
        ),
        CreateVpcFlowLogs.propose(
            check_id="ec2-vpc-flow-logs-off",
            resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0abc",
            before=VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=()),
            after=VpcFlowLogs(vpc_id="vpc-0abc", flow_logs=(FLOW_LOG,)),
            **COMMON,
        ),
        CreateMultiRegionTrail.propose(
            check_id="cloudtrail-no-multi-region-trail",
            resource_arn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/aegis-trail",
            before=MultiRegionTrails(trails=()),
            after=MultiRegionTrails(trails=(TrailSpec(name="aegis-trail", s3_bucket="aegis-trail-logs"),)),
            **COMMON,
        ),
    ]
