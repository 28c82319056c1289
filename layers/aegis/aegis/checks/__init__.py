"""The CIS checks: one module per check, its metadata beside its code.

`CHECKS` maps each check id to its module, which exposes `METADATA` (`CheckMetadata`), `evaluate(inventory)` and
`propose(finding, config)` (see `aegis.checks.base.CheckModule`).
"""

from __future__ import annotations

from types import ModuleType
from typing import cast

from aegis.checks import (
    cloudtrail_no_multi_region_trail,
    ec2_admin_port_open_ipv4,
    ec2_admin_port_open_ipv6,
    ec2_default_sg_allows_traffic,
    ec2_ebs_default_encryption_off,
    ec2_vpc_flow_logs_off,
    iam_admin_policy_attached,
    iam_password_policy_weak,
    iam_root_access_keys,
    kms_key_rotation_off,
    s3_account_public_access_block_off,
    s3_bucket_public,
)
from aegis.checks.base import CheckMetadata, CheckModule, PlanConfig

_MODULES: tuple[ModuleType, ...] = (
    ec2_admin_port_open_ipv4,
    ec2_admin_port_open_ipv6,
    ec2_default_sg_allows_traffic,
    s3_account_public_access_block_off,
    s3_bucket_public,
    iam_admin_policy_attached,
    iam_password_policy_weak,
    iam_root_access_keys,
    ec2_ebs_default_encryption_off,
    cloudtrail_no_multi_region_trail,
    ec2_vpc_flow_logs_off,
    kms_key_rotation_off,
)

CHECKS: dict[str, CheckModule] = {module.METADATA.check_id: cast(CheckModule, module) for module in _MODULES}


class UnknownCheck(ValueError):
    """A check id that is not in CHECKS."""


def get_check(check_id: str) -> CheckModule:
    try:
        return CHECKS[check_id]
    except KeyError:
        raise UnknownCheck(f"unknown check id {check_id!r}; known: {', '.join(sorted(CHECKS))}") from None


__all__ = ["CHECKS", "CheckMetadata", "CheckModule", "PlanConfig", "UnknownCheck", "get_check"]
