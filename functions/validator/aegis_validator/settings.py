"""The deployment's parameters the validator enforces, read once from the environment the template sets
(docs/CONTRACTS.md, validator environment), the approval policy included (aegis.approvals.policy, shared with the
agent and the approval function). An invalid setting names the variable, never its value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aegis.approvals.policy import ApprovalPolicy
from aegis.catalogue.base import ACCOUNT_ID_PATTERN, REGION_PATTERN
from aegis.partitions import (
    PARTITION_PATTERN,
    MixedPartitions,
    UnknownRegion,
    arn_partition,
    home_region,
    partition_of,
    partition_of_regions,
)
from aegis.settings import Environment
from aegis_validator.errors import InvalidSettings

# The template's MaxChangesPerMission bounds.
MAX_CHANGES_RANGE = range(1, 101)
_ROLE_ARN = rf"^arn:{PARTITION_PATTERN}:iam::[0-9]{{12}}:role/.+$"


@dataclass(frozen=True)
class ValidatorSettings:
    audit_table: str
    # This deployment's account: every change must be about it, or about its mission's account.
    account_id: str
    # ScanRegions: the regions a regional change may be in.
    scan_regions: tuple[str, ...]
    max_changes_per_mission: int
    # Who approves what, and how the approval requests are grouped (APPROVER_SUBS, APPROVAL_*): the validator plans
    # the requests with it, and refuses a change it gives fewer approvers than the change needs.
    approval_policy: ApprovalPolicy
    # The destinations a change may create; "" when the deployment configured none (those findings are then
    # notify-only, so a change creating one is refused).
    trail_bucket: str = ""
    flow_logs_log_group: str = ""
    flow_logs_role_arn: str = ""
    config_bucket: str = ""
    # Whether the deployment configures an undo connection (and so an UndoRole); without one, undo is disabled.
    undo_enabled: bool = False
    # Where the mission's account is (the `account_id` of its item): a member account's changes are in scope of that
    # account's mission only. Required by `from_env`; empty only where no plan names another account.
    missions_table: str = ""

    @property
    def partition(self) -> str:
        """The deployment's partition: that of its ScanRegions, which `from_env` holds to one partition."""
        return partition_of(self.scan_regions[0])

    @property
    def home_region(self) -> str:
        """Where account-wide changes are addressed: IAM's home region of the partition, as the checks address
        their findings (aegis.collectors.Inventory.home_region)."""
        return home_region(self.partition)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidatorSettings:
        env = Environment(InvalidSettings, environ)
        account_id = env.required("ACCOUNT_ID")
        if not re.fullmatch(ACCOUNT_ID_PATTERN, account_id):
            raise env.invalid("ACCOUNT_ID must be a 12-digit account id")
        regions = env.items("SCAN_REGIONS")
        if not regions or not all(re.fullmatch(REGION_PATTERN, region) for region in regions):
            raise env.invalid("SCAN_REGIONS must be a comma list of region names")
        try:
            partition = partition_of_regions(regions)
        except UnknownRegion:
            raise env.invalid("SCAN_REGIONS must be regions of an AWS partition") from None
        except MixedPartitions:
            raise env.invalid("SCAN_REGIONS must be regions of one partition") from None
        max_changes = env.number("MAX_CHANGES_PER_MISSION", int)
        if max_changes not in MAX_CHANGES_RANGE:
            raise env.invalid(
                f"MAX_CHANGES_PER_MISSION must be {MAX_CHANGES_RANGE.start} to {MAX_CHANGES_RANGE.stop - 1}"
            )
        role_arn = env.optional("FLOW_LOGS_ROLE_ARN")
        if role_arn and not re.fullmatch(_ROLE_ARN, role_arn):
            raise env.invalid("FLOW_LOGS_ROLE_ARN must be an IAM role ARN")
        if role_arn and arn_partition(role_arn) != partition:
            raise env.invalid("FLOW_LOGS_ROLE_ARN must be in the partition of SCAN_REGIONS")
        return cls(
            audit_table=env.required("AUDIT_TABLE"),
            account_id=account_id,
            scan_regions=regions,
            max_changes_per_mission=max_changes,
            approval_policy=ApprovalPolicy.from_env(environ, InvalidSettings),
            trail_bucket=env.optional("TRAIL_BUCKET"),
            flow_logs_log_group=env.optional("FLOW_LOGS_LOG_GROUP"),
            flow_logs_role_arn=role_arn,
            config_bucket=env.optional("CONFIG_BUCKET"),
            undo_enabled=env.flag("UNDO_ENABLED"),
            missions_table=env.required("MISSIONS_TABLE"),
        )
