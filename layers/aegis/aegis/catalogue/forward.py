"""The closed set of forward remediation kinds: `FORWARD_KINDS`, found in `aegis.catalogue.kinds`, and
`ForwardChange`, the same kinds as the static union that mypy and pydantic need (a union built at run time is
invisible to mypy). `tests/unit/test_registry_completeness.py` keeps the two equal."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from aegis.catalogue.kinds import FORWARD_KINDS
from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs
from aegis.catalogue.kinds.deny_bucket_insecure_transport import DenyBucketInsecureTransport
from aegis.catalogue.kinds.deny_nacl_admin_ingress import DenyNaclAdminIngress
from aegis.catalogue.kinds.detach_policy import DetachPolicy
from aegis.catalogue.kinds.disable_rds_public_access import DisableRdsPublicAccess
from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_config_recorder import EnableConfigRecorder
from aegis.catalogue.kinds.enable_ebs_default_encryption import EnableEbsDefaultEncryption
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation
from aegis.catalogue.kinds.enable_trail_log_file_validation import EnableTrailLogFileValidation
from aegis.catalogue.kinds.remove_bucket_acl_public_grants import RemoveBucketAclPublicGrants
from aegis.catalogue.kinds.remove_bucket_policy_public_statements import RemoveBucketPolicyPublicStatements
from aegis.catalogue.kinds.remove_inline_policy_admin_statements import RemoveInlinePolicyAdminStatements
from aegis.catalogue.kinds.replace_admin_policy_version import ReplaceAdminPolicyVersion
from aegis.catalogue.kinds.require_imdsv2 import RequireImdsv2
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.catalogue.kinds.strengthen_password_policy import StrengthenPasswordPolicy

ForwardChange = Annotated[
    RevokeSecurityGroupRules
    | EnableAccountPublicAccessBlock
    | EnableBucketPublicAccessBlock
    | RemoveBucketAclPublicGrants
    | RemoveBucketPolicyPublicStatements
    | DenyBucketInsecureTransport
    | DetachPolicy
    | ReplaceAdminPolicyVersion
    | RemoveInlinePolicyAdminStatements
    | StrengthenPasswordPolicy
    | EnableEbsDefaultEncryption
    | EnableKmsKeyRotation
    | CreateVpcFlowLogs
    | CreateMultiRegionTrail
    | EnableTrailLogFileValidation
    | EnableConfigRecorder
    | DenyNaclAdminIngress
    | RequireImdsv2
    | DisableRdsPublicAccess,
    Field(discriminator="kind"),
]

__all__ = ["FORWARD_KINDS", "ForwardChange"]
