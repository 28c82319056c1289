"""`--drift`: someone changes a resource after its change was approved and before the executor applies it.

The demo plays that someone: a colleague with console access who edits the resource by hand. Each recipe makes the
resource differ from the approved before-state in a way the executor's re-read must notice, and where the kind
allows it leaves the resource still misconfigured (a rule re-created under a new id, a different weak password
policy, a partial public access block), so that the report shows "drift, nothing applied" next to a re-scan that
still fails. Recipes use the stack's own AWS session: they are out-of-band edits, not the product's remediation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aegis.catalogue import (
    ChangeBase,
    DetachPolicy,
    EnableAccountPublicAccessBlock,
    EnableBucketPublicAccessBlock,
    EnableEbsDefaultEncryption,
    EnableKmsKeyRotation,
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    StrengthenPasswordPolicy,
)

__all__ = ["DriftNotSupported", "drift_resource", "supports_drift"]

ClientFactory = Callable[[str], Any]


class DriftNotSupported(ValueError):
    """No out-of-band edit is known for this kind of change."""


def _security_group(change: RevokeSecurityGroupRules, client: ClientFactory) -> str:
    rule = change.revoked[0]
    ec2 = client("ec2")
    if rule.is_egress:
        ec2.revoke_security_group_egress(GroupId=change.group_id, SecurityGroupRuleIds=[rule.rule_id])
        created = ec2.authorize_security_group_egress(GroupId=change.group_id, IpPermissions=[_permission(rule)])
    else:
        ec2.revoke_security_group_ingress(GroupId=change.group_id, SecurityGroupRuleIds=[rule.rule_id])
        created = ec2.authorize_security_group_ingress(GroupId=change.group_id, IpPermissions=[_permission(rule)])
    new_ids = [found["SecurityGroupRuleId"] for found in created.get("SecurityGroupRules", [])]
    return f"re-created rule {rule.rule_id} of {change.group_id} by hand (now {', '.join(new_ids) or 'a new id'})"


def _permission(rule: SecurityGroupRule) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": rule.ip_protocol}
    if rule.from_port is not None:
        permission["FromPort"] = rule.from_port
    if rule.to_port is not None:
        permission["ToPort"] = rule.to_port
    if rule.cidr_ipv4:
        permission["IpRanges"] = [{"CidrIp": rule.cidr_ipv4}]
    if rule.cidr_ipv6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule.cidr_ipv6}]
    if rule.prefix_list_id:
        permission["PrefixListIds"] = [{"PrefixListId": rule.prefix_list_id}]
    if rule.referenced_group_id:
        permission["UserIdGroupPairs"] = [{"GroupId": rule.referenced_group_id}]
    return permission


def _password_policy(change: StrengthenPasswordPolicy, client: ClientFactory) -> str:
    length = (change.before.minimum_password_length or 6) + 1
    client("iam").update_account_password_policy(MinimumPasswordLength=length)
    return f"set the account password policy to minimum length {length} by hand (still weak)"


def _account_public_access_block(change: EnableAccountPublicAccessBlock, client: ClientFactory) -> str:
    client("s3control").put_public_access_block(
        AccountId=change.account_id,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    return f"turned on only BlockPublicAcls for account {change.account_id} by hand"


def _bucket_public_access_block(change: EnableBucketPublicAccessBlock, client: ClientFactory) -> str:
    client("s3").put_public_access_block(
        Bucket=change.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    return f"turned on only BlockPublicAcls for bucket {change.bucket} by hand"


def _kms_rotation(change: EnableKmsKeyRotation, client: ClientFactory) -> str:
    client("kms").enable_key_rotation(KeyId=change.key_id)
    return f"enabled rotation of key {change.key_id} by hand"


def _ebs_default_encryption(change: EnableEbsDefaultEncryption, client: ClientFactory) -> str:
    client("ec2").enable_ebs_encryption_by_default()
    return f"enabled EBS default encryption in {change.region} by hand"


def _detach_policy(change: DetachPolicy, client: ClientFactory) -> str:
    entity, name = sorted(change.detached)[0]
    iam = client("iam")
    detach = {"role": iam.detach_role_policy, "user": iam.detach_user_policy, "group": iam.detach_group_policy}
    parameter = {"role": "RoleName", "user": "UserName", "group": "GroupName"}[entity]
    detach[entity](**{parameter: name, "PolicyArn": change.policy_arn})
    return f"detached {change.policy_arn.rsplit('/', 1)[-1]} from {entity} {name} by hand"


_RECIPES: dict[type[ChangeBase], Callable[[Any, ClientFactory], str]] = {
    RevokeSecurityGroupRules: _security_group,
    StrengthenPasswordPolicy: _password_policy,
    EnableAccountPublicAccessBlock: _account_public_access_block,
    EnableBucketPublicAccessBlock: _bucket_public_access_block,
    EnableKmsKeyRotation: _kms_rotation,
    EnableEbsDefaultEncryption: _ebs_default_encryption,
    DetachPolicy: _detach_policy,
}


def supports_drift(change: ChangeBase) -> bool:
    return type(change) in _RECIPES


def drift_resource(change: ChangeBase, client: ClientFactory) -> str:
    """Edit the change's resource out of band; return what was done, in words."""
    recipe = _RECIPES.get(type(change))
    if recipe is None:
        raise DriftNotSupported(f"--drift knows no out-of-band edit for changes of kind {change.kind}")
    return recipe(change, client)
