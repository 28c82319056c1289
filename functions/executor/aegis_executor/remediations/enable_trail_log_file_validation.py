"""Turn on log file validation of one trail (by trail ARN); undo turns it off again. Nothing else of the trail is
named in the UpdateTrail call, so nothing else changes."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.enable_trail_log_file_validation import EnableTrailLogFileValidation, LogFileValidation
from aegis_executor.remediations.base import SettingRemediation, remediation


@remediation("enable-trail-log-file-validation")
class TrailLogFileValidationRemediation(SettingRemediation[EnableTrailLogFileValidation, LogFileValidation]):
    def read_current(self, session: Session, change: EnableTrailLogFileValidation) -> LogFileValidation:
        cloudtrail = self.client(session, "cloudtrail", change)
        listed = cloudtrail.describe_trails(trailNameList=[change.resource_arn], includeShadowTrails=False)
        for trail in listed["trailList"]:
            if trail.get("TrailARN") == change.resource_arn:
                return LogFileValidation(enabled=bool(trail.get("LogFileValidationEnabled")))
        return LogFileValidation(exists=False, enabled=False)

    def write(self, session: Session, change: EnableTrailLogFileValidation, state: LogFileValidation) -> None:
        self.client(session, "cloudtrail", change).update_trail(
            Name=change.resource_arn, EnableLogFileValidation=state.enabled
        )
