"""The closed set of forward remediation kinds."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from aegis.catalogue.create_multi_region_trail import CreateMultiRegionTrail
from aegis.catalogue.create_vpc_flow_logs import CreateVpcFlowLogs
from aegis.catalogue.detach_policy import DetachPolicy
from aegis.catalogue.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.enable_ebs_default_encryption import EnableEbsDefaultEncryption
from aegis.catalogue.enable_kms_key_rotation import EnableKmsKeyRotation
from aegis.catalogue.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.catalogue.strengthen_password_policy import StrengthenPasswordPolicy

FORWARD_KINDS = (
    RevokeSecurityGroupRules,
    EnableAccountPublicAccessBlock,
    EnableBucketPublicAccessBlock,
    DetachPolicy,
    StrengthenPasswordPolicy,
    EnableEbsDefaultEncryption,
    EnableKmsKeyRotation,
    CreateVpcFlowLogs,
    CreateMultiRegionTrail,
)

ForwardChange = Annotated[
    RevokeSecurityGroupRules
    | EnableAccountPublicAccessBlock
    | EnableBucketPublicAccessBlock
    | DetachPolicy
    | StrengthenPasswordPolicy
    | EnableEbsDefaultEncryption
    | EnableKmsKeyRotation
    | CreateVpcFlowLogs
    | CreateMultiRegionTrail,
    Field(discriminator="kind"),
]
