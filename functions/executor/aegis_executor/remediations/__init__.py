"""One remediation per catalogue kind, registered by kind (Cloud Custodian style).

Importing this package registers every remediation; `remediation_for(change)` finds the one for a change.
"""

from aegis_executor.remediations import (
    cloudtrail_trail,
    detach_policy,
    ebs_default_encryption,
    kms_key_rotation,
    password_policy,
    public_access_block,
    security_group_rules,
    vpc_flow_logs,
)
from aegis_executor.remediations.base import (
    REMEDIATIONS,
    NoRemediation,
    Remediation,
    RemediationFailed,
    Verification,
    remediation,
    remediation_for,
)

__all__ = [
    "REMEDIATIONS",
    "NoRemediation",
    "Remediation",
    "RemediationFailed",
    "Verification",
    "cloudtrail_trail",
    "detach_policy",
    "ebs_default_encryption",
    "kms_key_rotation",
    "password_policy",
    "public_access_block",
    "remediation",
    "remediation_for",
    "security_group_rules",
    "vpc_flow_logs",
]
