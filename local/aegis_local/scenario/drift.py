"""`--drift`: someone changes a resource after its change was approved and before the executor applies it.

The demo plays that someone: a colleague with console access who edits the resource by hand. Each recipe makes the
resource differ from the approved before-state in a way the executor's re-read must notice, and where the kind
allows it leaves the resource still misconfigured (a rule re-created under a new id, a different weak password
policy, a partial public access block), so that the report shows "drift, nothing applied" next to a re-scan that
still fails. Recipes use the stack's own AWS session: they are out-of-band edits, not the product's remediation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.deny_bucket_insecure_transport import DenyBucketInsecureTransport
from aegis.catalogue.kinds.deny_nacl_admin_ingress import DenyNaclAdminIngress
from aegis.catalogue.kinds.detach_policy import ENTITY_NAME_PARAMETER, DetachPolicy
from aegis.catalogue.kinds.disable_rds_public_access import DisableRdsPublicAccess
from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_ebs_default_encryption import EnableEbsDefaultEncryption
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation
from aegis.catalogue.kinds.enable_trail_log_file_validation import EnableTrailLogFileValidation
from aegis.catalogue.kinds.remove_inline_policy_admin_statements import RemoveInlinePolicyAdminStatements
from aegis.catalogue.kinds.replace_admin_policy_version import ReplaceAdminPolicyVersion
from aegis.catalogue.kinds.require_imdsv2 import RequireImdsv2
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.catalogue.kinds.strengthen_password_policy import StrengthenPasswordPolicy
from aegis.catalogue.policy_documents import parse_policy_document, statements_of
from aegis.catalogue.states import PublicAccessBlock

__all__ = ["DriftNotSupported", "drift_resource", "supports_drift"]

ClientFactory = Callable[[str], Any]
Recipe = Callable[[Any, ClientFactory], str]
# Each recipe registers itself for its kind (`@_recipe(Kind)`); a kind without one is not supported by --drift.
_RECIPES: dict[type[ChangeBase], Recipe] = {}
# Only BlockPublicAcls on: a block that exists, so differs from the approved before-state, and still lets a public
# policy through.
_PARTIAL_BLOCK = PublicAccessBlock(block_public_acls=True).to_aws()


class DriftNotSupported(ValueError):
    """No out-of-band edit is known for this kind of change."""


def _recipe[R: Recipe](kind: type[ChangeBase]) -> Callable[[R], R]:
    def register(recipe: R) -> R:
        _RECIPES[kind] = recipe
        return recipe

    return register


@_recipe(RevokeSecurityGroupRules)
def _security_group(change: RevokeSecurityGroupRules, client: ClientFactory) -> str:
    rule = change.revoked[0]
    ec2 = client("ec2")
    if rule.is_egress:
        ec2.revoke_security_group_egress(GroupId=change.group_id, SecurityGroupRuleIds=[rule.rule_id])
        created = ec2.authorize_security_group_egress(GroupId=change.group_id, IpPermissions=[rule.ip_permission()])
    else:
        ec2.revoke_security_group_ingress(GroupId=change.group_id, SecurityGroupRuleIds=[rule.rule_id])
        created = ec2.authorize_security_group_ingress(GroupId=change.group_id, IpPermissions=[rule.ip_permission()])
    new_ids = [found["SecurityGroupRuleId"] for found in created.get("SecurityGroupRules", [])]
    return f"re-created rule {rule.rule_id} of {change.group_id} by hand (now {', '.join(new_ids) or 'a new id'})"


@_recipe(StrengthenPasswordPolicy)
def _password_policy(change: StrengthenPasswordPolicy, client: ClientFactory) -> str:
    length = (change.before.minimum_password_length or 6) + 1
    client("iam").update_account_password_policy(MinimumPasswordLength=length)
    return f"set the account password policy to minimum length {length} by hand (still weak)"


@_recipe(EnableAccountPublicAccessBlock)
def _account_public_access_block(change: EnableAccountPublicAccessBlock, client: ClientFactory) -> str:
    client("s3control").put_public_access_block(
        AccountId=change.account_id, PublicAccessBlockConfiguration=_PARTIAL_BLOCK
    )
    return f"turned on only BlockPublicAcls for account {change.account_id} by hand"


@_recipe(EnableBucketPublicAccessBlock)
def _bucket_public_access_block(change: EnableBucketPublicAccessBlock, client: ClientFactory) -> str:
    client("s3").put_public_access_block(Bucket=change.bucket, PublicAccessBlockConfiguration=_PARTIAL_BLOCK)
    return f"turned on only BlockPublicAcls for bucket {change.bucket} by hand"


@_recipe(DenyBucketInsecureTransport)
def _bucket_insecure_transport(change: DenyBucketInsecureTransport, client: ClientFactory) -> str:
    # A statement letting the account read objects, added to the policy (or as a new one): not the approved
    # policy, and plain HTTP is still not denied.
    s3 = client("s3")
    try:
        document = json.loads(s3.get_bucket_policy(Bucket=change.bucket)["Policy"])
    except s3.exceptions.ClientError:
        document = {"Version": "2012-10-17", "Statement": []}
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    added = {
        "Sid": "AddedByHand",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{change.partition}:iam::{change.account_id}:root"},
        "Action": "s3:GetObject",
        "Resource": f"{change.resource_arn}/*",
    }
    s3.put_bucket_policy(Bucket=change.bucket, Policy=json.dumps({**document, "Statement": [*statements, added]}))
    return f"added a statement to the policy of bucket {change.bucket} by hand (plain HTTP still allowed)"


@_recipe(EnableKmsKeyRotation)
def _kms_rotation(change: EnableKmsKeyRotation, client: ClientFactory) -> str:
    client("kms").enable_key_rotation(KeyId=change.key_id)
    return f"enabled rotation of key {change.key_id} by hand"


@_recipe(EnableEbsDefaultEncryption)
def _ebs_default_encryption(change: EnableEbsDefaultEncryption, client: ClientFactory) -> str:
    client("ec2").enable_ebs_encryption_by_default()
    return f"enabled EBS default encryption in {change.region} by hand"


@_recipe(EnableTrailLogFileValidation)
def _trail_log_file_validation(change: EnableTrailLogFileValidation, client: ClientFactory) -> str:
    client("cloudtrail").update_trail(Name=change.resource_arn, EnableLogFileValidation=True)
    return f"enabled log file validation of trail {change.trail_name} by hand"


# Added by hand to a policy: allows little, and leaves every admin statement in place.
_ADDED_BY_HAND = {"Sid": "AddedByHand", "Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}


@_recipe(ReplaceAdminPolicyVersion)
def _replace_admin_policy_version(change: ReplaceAdminPolicyVersion, client: ClientFactory) -> str:
    iam = client("iam")
    approved = iam.get_policy_version(PolicyArn=change.policy_arn, VersionId=change.before.version_id)
    document = parse_policy_document(approved["PolicyVersion"]["Document"])
    edited = {**document, "Statement": [*statements_of(document), _ADDED_BY_HAND]}
    created = iam.create_policy_version(
        PolicyArn=change.policy_arn, PolicyDocument=json.dumps(edited), SetAsDefault=True
    )
    name = change.policy_arn.rsplit("/", 1)[-1]
    return f"made {created['PolicyVersion']['VersionId']} of {name} its default by hand (still allows * on *)"


@_recipe(RemoveInlinePolicyAdminStatements)
def _remove_inline_policy_admin_statements(change: RemoveInlinePolicyAdminStatements, client: ClientFactory) -> str:
    iam, policy = client("iam"), change.cleaned[0]
    entity = {ENTITY_NAME_PARAMETER[change.entity_type]: change.entity_name}
    answer = getattr(iam, f"get_{change.entity_type}_policy")(**entity, PolicyName=policy.name)
    document = parse_policy_document(answer["PolicyDocument"])
    edited = {**document, "Statement": [*statements_of(document), _ADDED_BY_HAND]}
    getattr(iam, f"put_{change.entity_type}_policy")(
        **entity, PolicyName=policy.name, PolicyDocument=json.dumps(edited)
    )
    return f"added a statement to inline policy {policy.name} of {change.entity_type} {change.entity_name} by hand"


@_recipe(DetachPolicy)
def _detach_policy(change: DetachPolicy, client: ClientFactory) -> str:
    entity, name = sorted(change.detached)[0]
    iam = client("iam")
    detach = {"role": iam.detach_role_policy, "user": iam.detach_user_policy, "group": iam.detach_group_policy}
    detach[entity](**{ENTITY_NAME_PARAMETER[entity]: name, "PolicyArn": change.policy_arn})
    return f"detached {change.policy_arn.rsplit('/', 1)[-1]} from {entity} {name} by hand"


@_recipe(DisableRdsPublicAccess)
def _rds_public_access(change: DisableRdsPublicAccess, client: ClientFactory) -> str:
    # What else a colleague could do (queue a modification for the maintenance window, re-create the instance
    # under its name) the emulator does not model: it applies every modification at once and reuses one
    # DbiResourceId. So the edit is the fix itself.
    client("rds").modify_db_instance(
        DBInstanceIdentifier=change.db_instance_id, PubliclyAccessible=False, ApplyImmediately=True
    )
    return f"made DB instance {change.db_instance_id} private by hand"


@_recipe(RequireImdsv2)
def _require_imdsv2(change: RequireImdsv2, client: ClientFactory) -> str:
    # Another hop limit (containers on the instance reach the metadata service, or no longer do): not the approved
    # state, and IMDSv1 still answers.
    hops = change.before.hop_limit % 64 + 1
    client("ec2").modify_instance_metadata_options(
        InstanceId=change.instance_id,
        HttpTokens="optional",
        HttpEndpoint=change.before.http_endpoint,
        HttpPutResponseHopLimit=hops,
    )
    return f"set the metadata hop limit of {change.instance_id} to {hops} by hand (IMDSv1 still answers)"


@_recipe(DenyNaclAdminIngress)
def _nacl_admin_ingress(change: DenyNaclAdminIngress, client: ClientFactory) -> str:
    # The entry rewritten in place to allow every TCP port from the same source (or all protocols, if it already
    # was that): not the approved entry, still open to SSH and RDP.
    entry = change.before.entries[0]
    edited = entry.model_copy(update={"protocol": "6", "from_port": 0, "to_port": 65535})
    if edited == entry:
        edited = entry.model_copy(update={"protocol": "-1", "from_port": None, "to_port": None})
    client("ec2").replace_network_acl_entry(**edited.replace_request(change.network_acl_id))
    return f"rewrote entry #{entry.rule_number} of {change.network_acl_id} as '{edited.describe()}' by hand"


def supports_drift(change: ChangeBase) -> bool:
    return type(change) in _RECIPES


def drift_resource(change: ChangeBase, client: ClientFactory) -> str:
    """Edit the change's resource out of band; return what was done, in words."""
    recipe = _RECIPES.get(type(change))
    if recipe is None:
        raise DriftNotSupported(f"--drift knows no out-of-band edit for changes of kind {change.kind}")
    return recipe(change, client)
