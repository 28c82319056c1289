"""Create and start a multi-region CloudTrail trail into the configured bucket (CIS 3.1). Without a configured
bucket the finding is notify-only."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen
from aegis.secrets_guard import BUCKET_NAME, TRAIL_NAME

# Only trails under this prefix can be stopped or deleted by UndoRole (and created by RemediationRole): the template
# scopes the CloudTrail actions to `trail/aegis-*`, so an undo can never stop the organisation's own trails.
TRAIL_NAME_PREFIX = "aegis-"


class TrailSpec(Frozen):
    # Existing trails' names are identifiers whatever they look like (the secret guard keeps them).
    name: Annotated[str, TRAIL_NAME] = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,127}$")
    s3_bucket: Annotated[str, BUCKET_NAME] = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    is_multi_region: bool = True
    log_file_validation: bool = True
    is_logging: bool = True


class MultiRegionTrails(Frozen):
    trails: tuple[TrailSpec, ...]


class CreateMultiRegionTrail(ChangeBase):
    kind: Literal["create-multi-region-trail"] = "create-multi-region-trail"
    before: MultiRegionTrails
    after: MultiRegionTrails

    TITLE = "Record API activity in every region"
    APPLY_ACTIONS = ("cloudtrail:CreateTrail", "cloudtrail:StartLogging")
    READ_ACTIONS = ("cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus")
    UNDO_ACTIONS = ("cloudtrail:DeleteTrail", "cloudtrail:StopLogging")
    UNSCOPED_ACTIONS = ("cloudtrail:DescribeTrails",)
    REGION_SCOPE = "scanned"

    @property
    def new_trail(self) -> TrailSpec:
        return next(t for t in self.after.trails if t not in self.before.trails)

    def assert_narrows(self) -> None:
        if not set(self.before.trails) < set(self.after.trails):
            raise WideningChange("after must keep every trail and add one")
        added = [t for t in self.after.trails if t not in self.before.trails]
        if len(added) != 1 or not (added[0].is_multi_region and added[0].is_logging):
            raise WideningChange("after must add exactly one logging multi-region trail")
        if not added[0].name.startswith(TRAIL_NAME_PREFIX):
            raise ValueError(f"a trail the catalogue creates is named {TRAIL_NAME_PREFIX}*")
        if not self.resource_arn.endswith(f":trail/{added[0].name}"):
            raise ValueError("resource_arn must be the new trail's ARN")

    def summary(self) -> str:
        return f"Create trail {self.new_trail.name} all regions"

    def describe_before(self) -> str:
        return "no multi-region trail logging" if not self.before.trails else f"{len(self.before.trails)} trails"

    def describe_after(self) -> str:
        t = self.new_trail
        return f"trail {t.name} -> s3 {t.s3_bucket}, multi-region, validated, logging"
