"""Turn on log file validation of one trail (CIS 3.2): CloudTrail then signs an hourly digest of the log files it
delivered. Logging itself, the bucket and every other setting of the trail stay as they are."""

from __future__ import annotations

from typing import Literal

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen
from aegis.secrets_guard import display_text


class LogFileValidation(Frozen):
    # False when the trail is gone: a change about it is then neither applicable nor applied.
    exists: bool = True
    enabled: bool


class EnableTrailLogFileValidation(ChangeBase):
    kind: Literal["enable-trail-log-file-validation"] = "enable-trail-log-file-validation"
    before: LogFileValidation
    after: LogFileValidation

    TITLE = "Validate a trail's log files"
    APPLY_ACTIONS = ("cloudtrail:UpdateTrail",)
    READ_ACTIONS = ("cloudtrail:DescribeTrails",)
    UNDO_ACTIONS = ("cloudtrail:UpdateTrail",)
    UNSCOPED_ACTIONS = ("cloudtrail:DescribeTrails",)
    REGION_SCOPE = "scanned"

    @property
    def trail_name(self) -> str:
        return self.resource_arn.rsplit("/", 1)[-1]

    def assert_narrows(self) -> None:
        if not self.resource_arn.startswith(f"arn:{self.partition}:cloudtrail:") or ":trail/" not in self.resource_arn:
            raise ValueError("resource_arn must be a trail ARN")
        if not (self.before.exists and self.after.exists):
            raise WideningChange("the change is about an existing trail")
        if self.before.enabled or not self.after.enabled:
            raise WideningChange("the change must turn log file validation from off to on")

    def summary(self) -> str:
        return f"Validate log files of trail {display_text(self.trail_name)}"

    def describe_before(self) -> str:
        return "log file validation off"

    def describe_after(self) -> str:
        return "log file validation on (hourly signed digests)"
