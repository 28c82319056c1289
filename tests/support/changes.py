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
from aegis.catalogue.bucket_policies import PolicyStatement, policy_sha256
from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail, MultiRegionTrails, TrailSpec
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis.catalogue.kinds.deny_bucket_insecure_transport import (
    DENY_SID,
    BucketPolicyDigest,
    DenyBucketInsecureTransport,
    InsecureTransportDenied,
    deny_insecure_transport_statement,
)
from aegis.catalogue.kinds.deny_nacl_admin_ingress import DenyNaclAdminIngress, NaclEntry, NaclIngressEntries
from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.catalogue.kinds.disable_rds_public_access import DbInstancePublicAccess, DisableRdsPublicAccess
from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_config_recorder import (
    ConfigRecording,
    EnableConfigRecorder,
    config_recorders_arn,
    service_linked_role_arn,
)
from aegis.catalogue.kinds.enable_config_recorder import DeliveryChannel as ConfigDeliveryChannel
from aegis.catalogue.kinds.enable_config_recorder import Recorder as ConfigRecorder
from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from aegis.catalogue.kinds.enable_trail_log_file_validation import EnableTrailLogFileValidation, LogFileValidation
from aegis.catalogue.kinds.remove_bucket_acl_public_grants import (
    GROUP_URIS,
    PublicAclGrant,
    PublicAclGrants,
    RemoveBucketAclPublicGrants,
)
from aegis.catalogue.kinds.remove_bucket_policy_public_statements import (
    KeptPolicyStatements,
    PublicPolicyStatements,
    RemoveBucketPolicyPublicStatements,
)
from aegis.catalogue.kinds.remove_inline_policy_admin_statements import (
    AdminStatement,
    InlineAdminPolicies,
    InlineAdminPolicy,
    RemoveInlinePolicyAdminStatements,
)
from aegis.catalogue.kinds.replace_admin_policy_version import (
    DefaultPolicyVersion,
    RemovedStatements,
    ReplaceAdminPolicyVersion,
)
from aegis.catalogue.kinds.require_imdsv2 import InstanceMetadataOptions, RequireImdsv2
from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.catalogue.kinds.strengthen_password_policy import PasswordPolicy, StrengthenPasswordPolicy
from aegis.catalogue.policy_documents import document_sha256
from aegis.catalogue.states import PublicAccessBlock
from aegis.models import Risk
from aegis_local.scenario.seed import db_instance_parameters

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


# --- require-imdsv2 --------------------------------------------------------------------------------------------------
@static("require-imdsv2")
def require_imdsv2_change() -> ChangeBase:
    return RequireImdsv2.propose(
        check_id="ec2-instance-imdsv2-not-required",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abc1234",
        before=InstanceMetadataOptions(http_tokens="optional"),
        after=InstanceMetadataOptions(http_tokens="required"),
        **COMMON,
    )


def run_instance(region: str = CASE_REGION, **metadata_options: Any) -> str:
    """One running instance of a moto Amazon Linux image with the given MetadataOptions; returns its id."""
    ec2 = boto3.client("ec2", region_name=region)
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])
    image = sorted(i["ImageId"] for i in images["Images"])[0]
    extra = {"MetadataOptions": metadata_options} if metadata_options else {}
    return str(ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, **extra)["Instances"][0]["InstanceId"])


@case("require-imdsv2")
def require_imdsv2_case() -> Case:
    ec2 = boto3.client("ec2", region_name=CASE_REGION)
    instance = run_instance(HttpTokens="optional", HttpEndpoint="enabled")
    change = in_moto(
        RequireImdsv2,
        check_id="ec2-instance-imdsv2-not-required",
        resource_arn=f"arn:aws:ec2:{CASE_REGION}:{ACCOUNT}:instance/{instance}",
        risk=Risk.MEDIUM,
        before=InstanceMetadataOptions(http_endpoint="enabled", http_tokens="optional", hop_limit=1),
        after=InstanceMetadataOptions(http_endpoint="enabled", http_tokens="required", hop_limit=1),
    )

    def facts() -> tuple[Any, ...]:
        [found] = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"]
        return (found["MetadataOptions"].get("HttpTokens"), found["State"]["Name"])

    def drift() -> None:
        # Containers on the instance may now reach the metadata service too: not what was approved, still IMDSv1.
        ec2.modify_instance_metadata_options(
            InstanceId=instance, HttpTokens="optional", HttpEndpoint="enabled", HttpPutResponseHopLimit=2
        )

    return Case(change, drift, facts, ("optional", "running"), ("required", "running"))


# --- deny-nacl-admin-ingress -----------------------------------------------------------------------------------------
NACL_SSH_ENTRY = NaclEntry(
    rule_number=100, protocol="6", rule_action="allow", cidr_ipv4="0.0.0.0/0", from_port=22, to_port=22
)
NACL_ALL_IPV6_ENTRY = NaclEntry(rule_number=120, protocol="-1", rule_action="allow", cidr_ipv6="::/0")


@static("deny-nacl-admin-ingress")
def deny_nacl_admin_ingress_change() -> ChangeBase:
    entries = (NACL_SSH_ENTRY, NACL_ALL_IPV6_ENTRY)
    return DenyNaclAdminIngress.propose(
        check_id="ec2-nacl-admin-port-open",
        resource_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-acl/acl-0abc1234",
        before=NaclIngressEntries(entries=entries),
        after=NaclIngressEntries(entries=tuple(e.with_action("deny") for e in entries)),
        **COMMON,
    )


def create_network_acl(*entries: NaclEntry, cidr: str = "10.50.0.0/16") -> str:
    """A network ACL in a new VPC of the moto account's CASE_REGION with these ingress entries; returns its id."""
    ec2 = boto3.client("ec2", region_name=CASE_REGION)
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    acl = str(ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"])
    for entry in entries:
        ec2.create_network_acl_entry(**entry.replace_request(acl))
    return acl


@case("deny-nacl-admin-ingress")
def deny_nacl_admin_ingress_case() -> Case:
    ec2 = boto3.client("ec2", region_name=CASE_REGION)
    https = NaclEntry(
        rule_number=110, protocol="6", rule_action="allow", cidr_ipv4="0.0.0.0/0", from_port=443, to_port=443
    )
    acl = create_network_acl(NACL_SSH_ENTRY, https, NACL_ALL_IPV6_ENTRY)
    ec2.create_network_acl_entry(
        NetworkAclId=acl, RuleNumber=100, Protocol="-1", RuleAction="allow", Egress=True, CidrBlock="0.0.0.0/0"
    )
    entries = (NACL_SSH_ENTRY, NACL_ALL_IPV6_ENTRY)
    change = in_moto(
        DenyNaclAdminIngress,
        check_id="ec2-nacl-admin-port-open",
        resource_arn=f"arn:aws:ec2:{CASE_REGION}:{ACCOUNT}:network-acl/{acl}",
        risk=Risk.HIGH,
        before=NaclIngressEntries(entries=entries),
        after=NaclIngressEntries(entries=tuple(e.with_action("deny") for e in entries)),
    )

    def facts() -> set[tuple[Any, ...]]:
        [found] = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"]
        return {
            (e["RuleNumber"], e["Egress"], e["Protocol"], e.get("CidrBlock") or e.get("Ipv6CidrBlock"), e["RuleAction"])
            for e in found["Entries"]
            if e["RuleNumber"] < 32767
        }

    def drift() -> None:
        # The SSH entry widened by hand to 22-23: another entry than the one approved, still open to the world.
        ec2.replace_network_acl_entry(**NACL_SSH_ENTRY.model_copy(update={"to_port": 23}).replace_request(acl))

    unchanged = {(110, False, "6", "0.0.0.0/0", "allow"), (100, True, "-1", "0.0.0.0/0", "allow")}
    return Case(
        change,
        drift,
        facts,
        unchanged | {(100, False, "6", "0.0.0.0/0", "allow"), (120, False, "-1", "::/0", "allow")},
        unchanged | {(100, False, "6", "0.0.0.0/0", "deny"), (120, False, "-1", "::/0", "deny")},
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


# --- remove-bucket-acl-public-grants ---------------------------------------------------------------------------------
OTHER_CANONICAL_USER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"


@static("remove-bucket-acl-public-grants")
def bucket_acl_public_grants_change() -> ChangeBase:
    return RemoveBucketAclPublicGrants.propose(
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::public-bucket",
        before=PublicAclGrants.of(
            [PublicAclGrant(grantee="AllUsers", permission="READ"), PublicAclGrant.from_text("AuthenticatedUsers:READ")]
        ),
        after=PublicAclGrants(),
        **COMMON,
    )


def _acl_facts(s3: Any, bucket: str) -> list[tuple[str, str]]:
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    return sorted((g["Grantee"].get("URI") or g["Grantee"].get("ID", ""), g["Permission"]) for g in grants)


@case("remove-bucket-acl-public-grants")
def bucket_acl_public_grants_case() -> Case:
    s3 = boto3.client("s3", region_name=CASE_REGION)
    bucket = "aegis-acl-public"
    s3.create_bucket(Bucket=bucket, ObjectOwnership="ObjectWriter")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    public = [PublicAclGrant.from_text("AllUsers:READ"), PublicAclGrant.from_text("AuthenticatedUsers:READ_ACP")]
    s3.put_bucket_acl(
        Bucket=bucket,
        AccessControlPolicy={
            "Owner": {"ID": owner},
            "Grants": [
                {"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"},
                {"Grantee": {"Type": "CanonicalUser", "ID": OTHER_CANONICAL_USER}, "Permission": "READ"},
                *(grant.to_aws() for grant in public),
            ],
        },
    )
    change = in_moto(
        RemoveBucketAclPublicGrants,
        check_id="s3-bucket-public",
        resource_arn=f"arn:aws:s3:::{bucket}",
        risk=Risk.MEDIUM,
        before=PublicAclGrants.of(public),
        after=PublicAclGrants(),
    )

    def drift() -> None:
        # Another public grant, added by hand: still public, but not the grants the human approved removing.
        s3.put_bucket_acl(Bucket=bucket, GrantWrite=f"uri={GROUP_URIS['AllUsers']}", GrantRead=f"id={owner}")

    kept = [(OTHER_CANONICAL_USER, "READ"), (owner, "FULL_CONTROL")]
    everything = sorted([*kept, (GROUP_URIS["AllUsers"], "READ"), (GROUP_URIS["AuthenticatedUsers"], "READ_ACP")])
    return Case(change, drift, lambda: _acl_facts(s3, bucket), everything, sorted(kept))


# --- remove-bucket-policy-public-statements --------------------------------------------------------------------------
def _public_read(bucket: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}


@static("remove-bucket-policy-public-statements")
def bucket_policy_public_statements_change() -> ChangeBase:
    return RemoveBucketPolicyPublicStatements.propose(
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::public-bucket",
        before=PublicPolicyStatements(
            sha256="5e" * 32,
            statement_count=3,
            version="2012-10-17",
            statements=(PolicyStatement(index=1, statement=_public_read("public-bucket")),),
        ),
        after=KeptPolicyStatements(statement_count=2),
        **COMMON,
    )


def _policy_case(bucket: str, statements: list[dict[str, Any]], public: list[int]) -> Case:
    """A bucket whose policy has `statements`, of which those at `public` are removed."""
    s3 = boto3.client("s3", region_name=CASE_REGION)
    s3.create_bucket(Bucket=bucket)
    document = {"Version": "2012-10-17", "Id": f"{bucket}-policy", "Statement": statements}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    change = in_moto(
        RemoveBucketPolicyPublicStatements,
        check_id="s3-bucket-public",
        resource_arn=f"arn:aws:s3:::{bucket}",
        risk=Risk.MEDIUM,
        before=PublicPolicyStatements(
            sha256=policy_sha256(document) or "",
            statement_count=len(statements),
            version="2012-10-17",
            policy_id=f"{bucket}-policy",
            statements=tuple(PolicyStatement(index=i, statement=statements[i]) for i in public),
        ),
        after=KeptPolicyStatements(statement_count=len(statements) - len(public)),
    )
    kept = [statement.get("Sid") for index, statement in enumerate(statements) if index not in public]

    def drift() -> None:
        # A statement added by hand: the public ones are still there, but the policy is not the one approved.
        added = {**_public_read(bucket), "Sid": "AddedByHand", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**document, "Statement": [*statements, added]}))

    return Case(change, drift, lambda: _policy_sids(s3, bucket), [s.get("Sid") for s in statements], kept or None)


def _policy_sids(s3: Any, bucket: str) -> list[Any] | None:
    try:
        document = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except s3.exceptions.ClientError:
        return None
    return [statement.get("Sid") for statement in document["Statement"]]


@case("remove-bucket-policy-public-statements")
def bucket_policy_public_statements_case() -> Case:
    bucket = "aegis-policy-public"
    own = {
        "Sid": "OwnAccount",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:*",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    tls = deny_insecure_transport_statement(f"arn:aws:s3:::{bucket}") | {"Sid": "TlsOnly"}
    statements = [{"Sid": "PublicList", **_public_read(bucket), "Action": "s3:ListBucket"}, own]
    statements += [{"Sid": "PublicRead", **_public_read(bucket)}, tls]
    return _policy_case(bucket, statements, public=[0, 2])


@case("remove-bucket-policy-public-statements/whole-policy")
def bucket_policy_all_public_case() -> Case:
    bucket = "aegis-policy-all-public"
    return _policy_case(bucket, [{"Sid": "PublicRead", **_public_read(bucket)}], public=[0])


# --- deny-bucket-insecure-transport ----------------------------------------------------------------------------------
@static("deny-bucket-insecure-transport")
def bucket_insecure_transport_change() -> ChangeBase:
    return DenyBucketInsecureTransport.propose(
        check_id="s3-bucket-insecure-transport-allowed",
        resource_arn="arn:aws:s3:::plain-http-bucket",
        before=BucketPolicyDigest(),
        after=InsecureTransportDenied(index=0),
        **{**COMMON, "risk": Risk.LOW},
    )


def _deny_case(bucket: str, document: dict[str, Any] | None) -> Case:
    s3 = boto3.client("s3", region_name=CASE_REGION)
    s3.create_bucket(Bucket=bucket)
    if document is not None:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    count = len(document["Statement"]) if document else 0
    change = in_moto(
        DenyBucketInsecureTransport,
        check_id="s3-bucket-insecure-transport-allowed",
        resource_arn=f"arn:aws:s3:::{bucket}",
        risk=Risk.LOW,
        before=BucketPolicyDigest(sha256=policy_sha256(document), statement_count=count),
        after=InsecureTransportDenied(index=count),
    )
    before = [s.get("Sid") for s in document["Statement"]] if document else None

    def drift() -> None:
        # A statement added by hand: plain HTTP is still allowed, but the policy is not the one approved.
        added = {
            "Sid": "AddedByHand",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        statements = [*(document["Statement"] if document else []), added]
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))

    return Case(change, drift, lambda: _policy_sids(s3, bucket), before, [*(before or []), DENY_SID])


@case("deny-bucket-insecure-transport")
def bucket_insecure_transport_case() -> Case:
    return _deny_case("aegis-plain-http", None)


@case("deny-bucket-insecure-transport/existing-policy")
def bucket_insecure_transport_existing_policy_case() -> Case:
    own = {
        "Sid": "OwnAccount",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::aegis-plain-http-policy/*",
    }
    return _deny_case("aegis-plain-http-policy", {"Version": "2012-10-17", "Statement": [own]})


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


# --- replace-admin-policy-version ------------------------------------------------------------------------------------
READ_LOGS = {"Effect": "Allow", "Action": ["logs:GetLogEvents", "logs:FilterLogEvents"], "Resource": "*"}
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


@static("replace-admin-policy-version")
def replace_admin_policy_version_change() -> ChangeBase:
    return ReplaceAdminPolicyVersion.propose(
        check_id="iam-admin-policy-attached",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/TeamPowerUser",
        before=DefaultPolicyVersion(version_id="v2", document_sha256="ab" * 32, statement_count=3),
        after=RemovedStatements(indices=(1,)),
        **COMMON,
    )


@case("replace-admin-policy-version")
def replace_admin_policy_version_case() -> Case:
    iam = boto3.client("iam", region_name=CASE_REGION)
    document = {"Version": "2012-10-17", "Statement": [READ_LOGS, ALLOW_ALL]}
    policy_arn = iam.create_policy(PolicyName="team-power", PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    change = in_moto(
        ReplaceAdminPolicyVersion,
        check_id="iam-admin-policy-attached",
        resource_arn=policy_arn,
        risk=Risk.MEDIUM,
        before=DefaultPolicyVersion(version_id="v1", document_sha256=document_sha256(document), statement_count=2),
        after=RemovedStatements(indices=(1,)),
    )

    def facts() -> tuple[str, list[Any]]:
        default = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
        version = iam.get_policy_version(PolicyArn=policy_arn, VersionId=default)["PolicyVersion"]
        return default, version["Document"]["Statement"]

    def drift() -> None:
        # Still admin, under a new default version: the approved one is no longer in force.
        edited = {"Version": "2012-10-17", "Statement": [READ_LOGS, ALLOW_ALL, READ_LOGS | {"Sid": "Added"}]}
        iam.create_policy_version(PolicyArn=policy_arn, PolicyDocument=json.dumps(edited), SetAsDefault=True)

    return Case(change, drift, facts, ("v1", [READ_LOGS, ALLOW_ALL]), ("v2", [READ_LOGS]))


# --- remove-inline-policy-admin-statements ---------------------------------------------------------------------------
@static("remove-inline-policy-admin-statements")
def remove_inline_policy_admin_statements_change() -> ChangeBase:
    return RemoveInlinePolicyAdminStatements.propose(
        check_id="iam-inline-policy-admin",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:role/service/ci-deployer",
        before=InlineAdminPolicies(
            policies=(
                InlineAdminPolicy(
                    name="deploy",
                    document_sha256="cd" * 32,
                    statement_count=2,
                    admin_statements=(AdminStatement(index=0, statement=ALLOW_ALL),),
                    frame={"Version": "2012-10-17"},
                ),
            )
        ),
        after=InlineAdminPolicies(),
        **COMMON,
    )


def inline_admin_policy(name: str, document: dict[str, Any], *indices: int) -> InlineAdminPolicy:
    """The approved before-state of an inline policy whose statements at `indices` allow * on *."""
    statements = document["Statement"]
    return InlineAdminPolicy(
        name=name,
        document_sha256=document_sha256(document),
        statement_count=len(statements),
        admin_statements=tuple(AdminStatement(index=i, statement=statements[i]) for i in indices),
        frame={k: v for k, v in document.items() if k != "Statement"},
    )


@case("remove-inline-policy-admin-statements")
def remove_inline_policy_admin_statements_case() -> Case:
    iam = boto3.client("iam", region_name=CASE_REGION)
    role_arn = iam.create_role(
        RoleName="inline-admin", Path="/service/", AssumeRolePolicyDocument=json.dumps(ASSUME_EC2)
    )["Role"]["Arn"]
    admin = {"Effect": "Allow", "Action": "*:*", "Resource": "*"}
    mixed = {"Version": "2012-10-17", "Statement": [READ_LOGS, admin, READ_LOGS | {"Sid": "Again"}]}
    only_admin = {"Version": "2012-10-17", "Id": "break-glass", "Statement": [ALLOW_ALL]}
    clean = {"Version": "2012-10-17", "Statement": [READ_LOGS]}
    for name, document in (("mixed", mixed), ("only-admin", only_admin), ("clean", clean)):
        iam.put_role_policy(RoleName="inline-admin", PolicyName=name, PolicyDocument=json.dumps(document))
    change = in_moto(
        RemoveInlinePolicyAdminStatements,
        check_id="iam-inline-policy-admin",
        resource_arn=role_arn,
        risk=Risk.HIGH,
        before=InlineAdminPolicies(
            policies=(inline_admin_policy("mixed", mixed, 1), inline_admin_policy("only-admin", only_admin, 0))
        ),
        after=InlineAdminPolicies(),
    )

    def facts() -> dict[str, Any]:
        names = iam.list_role_policies(RoleName="inline-admin")["PolicyNames"]
        return {name: iam.get_role_policy(RoleName="inline-admin", PolicyName=name)["PolicyDocument"] for name in names}

    def drift() -> None:
        edited = {"Version": "2012-10-17", "Statement": [*mixed["Statement"], {**READ_LOGS, "Sid": "Added"}]}
        iam.put_role_policy(RoleName="inline-admin", PolicyName="mixed", PolicyDocument=json.dumps(edited))

    without_admin = {"Version": "2012-10-17", "Statement": [READ_LOGS, READ_LOGS | {"Sid": "Again"}]}
    return Case(
        change,
        drift,
        facts,
        {"mixed": mixed, "only-admin": only_admin, "clean": clean},
        {"mixed": without_admin, "clean": clean},
    )


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


# --- disable-rds-public-access --------------------------------------------------------------------------------------
DB_RESOURCE_ID = "db-ABCDEFGHIJKLMNOPQRSTUVWXY2"


@static("disable-rds-public-access")
def rds_public_access_change() -> ChangeBase:
    return DisableRdsPublicAccess.propose(
        check_id="rds-instance-publicly-accessible",
        resource_arn=f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-db",
        before=DbInstancePublicAccess(resource_id=DB_RESOURCE_ID, publicly_accessible=True),
        after=DbInstancePublicAccess(resource_id=DB_RESOURCE_ID, publicly_accessible=False),
        **COMMON,
    )


def create_db_instance(name: str, *, public: bool = True, encrypted: bool = False) -> dict[str, Any]:
    """A small PostgreSQL instance in the moto account's CASE_REGION, as DescribeDBInstances lists it."""
    return dict(
        boto3.client("rds", region_name=CASE_REGION).create_db_instance(
            **db_instance_parameters(name, public=public, encrypted=encrypted)
        )["DBInstance"]
    )


@case("disable-rds-public-access")
def rds_public_access_case() -> Case:
    rds = boto3.client("rds", region_name=CASE_REGION)
    created = create_db_instance("orders-db")
    resource_id = created["DbiResourceId"]
    change = in_moto(
        DisableRdsPublicAccess,
        check_id="rds-instance-publicly-accessible",
        resource_arn=created["DBInstanceArn"],
        risk=Risk.MEDIUM,
        before=DbInstancePublicAccess(resource_id=resource_id, publicly_accessible=True),
        after=DbInstancePublicAccess(resource_id=resource_id, publicly_accessible=False),
    )

    def facts() -> tuple[Any, ...]:
        [found] = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"]
        return (found["PubliclyAccessible"], found["StorageEncrypted"], found["DBInstanceClass"])

    def drift() -> None:
        rds.modify_db_instance(DBInstanceIdentifier="orders-db", PubliclyAccessible=False, ApplyImmediately=True)

    return Case(change, drift, facts, (True, False, "db.t3.micro"), (False, False, "db.t3.micro"))


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


# --- enable-config-recorder ------------------------------------------------------------------------------------------
@static("enable-config-recorder")
def config_recorder_change() -> ChangeBase:
    # A stopped recorder of every type with a role of its own and no delivery channel: the channel is created to the
    # configured bucket and the recorder started, never changed.
    stopped = ConfigRecorder(
        name="default",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/config-recorder",
        all_supported=True,
        include_global_resource_types=False,
        recording=False,
    )
    return EnableConfigRecorder.propose(
        check_id="config-recorder-off",
        resource_arn=config_recorders_arn(REGION, ACCOUNT),
        before=ConfigRecording(recorder=stopped),
        after=ConfigRecording(
            recorder=stopped.model_copy(update={"recording": True}),
            delivery_channel=ConfigDeliveryChannel(name="default", s3_bucket="aegis-config-logs"),
        ),
        **COMMON | {"risk": Risk.LOW},
    )


def _config_facts(config: Any) -> Callable[[], tuple[Any, ...]]:
    """The region's recorders (name, all supported), their recording status and its delivery channels' buckets."""

    def facts() -> tuple[Any, ...]:
        recorders = config.describe_configuration_recorders()["ConfigurationRecorders"]
        statuses = config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
        channels = config.describe_delivery_channels()["DeliveryChannels"]
        return (
            tuple(sorted((r["name"], r["recordingGroup"]["allSupported"]) for r in recorders)),
            tuple(sorted((s["name"], s["recording"]) for s in statuses)),
            tuple(sorted((c["name"], c["s3BucketName"]) for c in channels)),
        )

    return facts


@case("enable-config-recorder")
def config_recorder_case() -> Case:
    boto3.client("s3", region_name=CASE_REGION).create_bucket(Bucket="aegis-config-logs")
    config = boto3.client("config", region_name=CASE_REGION)
    created = ConfigRecorder(
        name="default",
        role_arn=service_linked_role_arn("aws", ACCOUNT),
        all_supported=True,
        include_global_resource_types=True,  # CASE_REGION is IAM's home region
        recording=True,
    )
    change = in_moto(
        EnableConfigRecorder,
        check_id="config-recorder-off",
        resource_arn=config_recorders_arn(CASE_REGION, ACCOUNT),
        risk=Risk.LOW,
        before=ConfigRecording(),
        after=ConfigRecording(
            recorder=created, delivery_channel=ConfigDeliveryChannel(name="default", s3_bucket="aegis-config-logs")
        ),
    )

    def drift() -> None:
        config.put_configuration_recorder(
            ConfigurationRecorder={"name": "someone-elses", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config"}
        )

    after = ((("default", True),), (("default", True),), (("default", "aegis-config-logs"),))
    return Case(change, drift, _config_facts(config), ((), (), ()), after)


@case("enable-config-recorder/start-existing")
def config_recorder_start_case() -> Case:
    boto3.client("s3", region_name=CASE_REGION).create_bucket(Bucket="team-config-logs")
    config = boto3.client("config", region_name=CASE_REGION)
    stopped = ConfigRecorder(
        name="team-recorder",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/team-config",
        all_supported=True,
        include_global_resource_types=False,
        recording=False,
    )
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": stopped.name,
            "roleARN": stopped.role_arn,
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": False},
        }
    )
    channel = ConfigDeliveryChannel(name="team-channel", s3_bucket="team-config-logs")
    config.put_delivery_channel(DeliveryChannel={"name": channel.name, "s3BucketName": channel.s3_bucket})
    change = in_moto(
        EnableConfigRecorder,
        check_id="config-recorder-off",
        resource_arn=config_recorders_arn(CASE_REGION, ACCOUNT),
        risk=Risk.LOW,
        before=ConfigRecording(recorder=stopped, delivery_channel=channel),
        after=ConfigRecording(recorder=stopped.model_copy(update={"recording": True}), delivery_channel=channel),
    )

    def drift() -> None:
        config.start_configuration_recorder(ConfigurationRecorderName=stopped.name)

    def facts(recording: bool) -> tuple[Any, ...]:
        return (
            (("team-recorder", True),),
            (("team-recorder", recording),),
            (("team-channel", "team-config-logs"),),
        )

    return Case(change, drift, _config_facts(config), facts(False), facts(True))
