"""Create and start the approved multi-region trail; undo stops and deletes that trail (by ARN).

The change concerns one new trail: the session policy allows status reads on that trail only, so the state this
remediation reads is the new trail's (absent before, present and logging after).
"""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail, MultiRegionTrails, TrailSpec
from aegis_executor.remediations.base import Remediation, remediation


@remediation("create-multi-region-trail")
class CreateMultiRegionTrailRemediation(Remediation[CreateMultiRegionTrail, MultiRegionTrails]):
    def read_current(self, session: Session, change: CreateMultiRegionTrail) -> MultiRegionTrails:
        cloudtrail = self.client(session, "cloudtrail", change)
        name = change.new_trail.name
        for trail in cloudtrail.describe_trails(includeShadowTrails=False)["trailList"]:
            if trail.get("TrailARN") == change.resource_arn and trail.get("Name") == name:
                status = cloudtrail.get_trail_status(Name=change.resource_arn)
                spec = TrailSpec(
                    name=name,
                    s3_bucket=trail["S3BucketName"],
                    is_multi_region=bool(trail.get("IsMultiRegionTrail")),
                    log_file_validation=bool(trail.get("LogFileValidationEnabled")),
                    is_logging=bool(status.get("IsLogging")),
                )
                return MultiRegionTrails(trails=(spec,))
        return MultiRegionTrails(trails=())

    def is_before(self, current: MultiRegionTrails, change: CreateMultiRegionTrail) -> bool:
        return current.trails == ()

    def is_after(self, current: MultiRegionTrails, change: CreateMultiRegionTrail) -> bool:
        return current.trails == (change.new_trail,)

    def apply(self, session: Session, change: CreateMultiRegionTrail) -> None:
        cloudtrail = self.client(session, "cloudtrail", change)
        trail = change.new_trail
        cloudtrail.create_trail(
            Name=trail.name,
            S3BucketName=trail.s3_bucket,
            IsMultiRegionTrail=trail.is_multi_region,
            EnableLogFileValidation=trail.log_file_validation,
            IncludeGlobalServiceEvents=True,
        )
        if trail.is_logging:
            cloudtrail.start_logging(Name=change.resource_arn)

    def undo(self, session: Session, change: CreateMultiRegionTrail) -> None:
        cloudtrail = self.client(session, "cloudtrail", change)
        cloudtrail.stop_logging(Name=change.resource_arn)
        # By name in the trail's home region (the client's region), which AWS and moto both honour; moto 5.2.5
        # silently ignores DeleteTrail by ARN.
        cloudtrail.delete_trail(Name=change.new_trail.name)
