"""The deployment's parameters the validator enforces, read once from the environment the template sets
(docs/CONTRACTS.md, validator environment). An invalid setting names the variable, never its value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aegis.catalogue.base import ACCOUNT_ID_PATTERN, REGION_PATTERN
from aegis_validator.errors import InvalidSettings

# The template's MaxChangesPerMission bounds.
MAX_CHANGES_RANGE = range(1, 101)
_ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"


@dataclass(frozen=True)
class ValidatorSettings:
    audit_table: str
    # This deployment's account: every change must be about it.
    account_id: str
    # ScanRegions: the regions a regional change may be in.
    scan_regions: tuple[str, ...]
    max_changes_per_mission: int
    # The destinations a change may create; "" when the deployment configured none (those findings are then
    # notify-only, so a change creating one is refused).
    trail_bucket: str = ""
    flow_logs_log_group: str = ""
    flow_logs_role_arn: str = ""
    # Whether the deployment configures an undo connection (and so an UndoRole); without one, undo is disabled.
    undo_enabled: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidatorSettings:
        env = os.environ if environ is None else environ

        def value(name: str) -> str:
            return env.get(name, "").strip()

        def required(name: str) -> str:
            text = value(name)
            if not text:
                raise InvalidSettings(f"{name} is required")
            return text

        account_id = required("ACCOUNT_ID")
        if not re.fullmatch(ACCOUNT_ID_PATTERN, account_id):
            raise InvalidSettings("ACCOUNT_ID must be a 12-digit account id")
        regions = tuple(dict.fromkeys(part.strip() for part in required("SCAN_REGIONS").split(",") if part.strip()))
        if not regions or not all(re.fullmatch(REGION_PATTERN, region) for region in regions):
            raise InvalidSettings("SCAN_REGIONS must be a comma list of region names")
        try:
            max_changes = int(required("MAX_CHANGES_PER_MISSION"))
        except ValueError:
            raise InvalidSettings("MAX_CHANGES_PER_MISSION must be a whole number") from None
        if max_changes not in MAX_CHANGES_RANGE:
            raise InvalidSettings(
                f"MAX_CHANGES_PER_MISSION must be {MAX_CHANGES_RANGE.start} to {MAX_CHANGES_RANGE.stop - 1}"
            )
        undo = value("UNDO_ENABLED") or "false"
        if undo not in ("true", "false"):
            raise InvalidSettings("UNDO_ENABLED must be true or false")
        role_arn = value("FLOW_LOGS_ROLE_ARN")
        if role_arn and not re.fullmatch(_ROLE_ARN, role_arn):
            raise InvalidSettings("FLOW_LOGS_ROLE_ARN must be an IAM role ARN")
        return cls(
            audit_table=required("AUDIT_TABLE"),
            account_id=account_id,
            scan_regions=regions,
            max_changes_per_mission=max_changes,
            trail_bucket=value("TRAIL_BUCKET"),
            flow_logs_log_group=value("FLOW_LOGS_LOG_GROUP"),
            flow_logs_role_arn=role_arn,
            undo_enabled=undo == "true",
        )
