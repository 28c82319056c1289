"""Read-only CloudTrail inventory seen from one region: every trail that applies to it (multi-region trails of other
home regions included, as shadow trails) and, on demand, whether a trail is logging.

`DescribeTrails` already says which KMS key encrypts a trail's log files (`KmsKeyId`, absent without one): no call
per trail."""

from __future__ import annotations

from dataclasses import dataclass

from aegis.collectors.base import ServiceCollector


@dataclass(frozen=True, slots=True)
class Trail:
    name: str
    arn: str
    home_region: str
    is_multi_region: bool
    s3_bucket: str
    log_file_validation: bool
    # The ARN of the KMS key that encrypts the delivered log files; "" when they are only SSE-S3 encrypted.
    kms_key_id: str = ""


class CloudTrailCollector(ServiceCollector):
    def trails(self) -> list[Trail]:
        return self._once.get("trails", self._describe_trails)

    def _describe_trails(self) -> list[Trail]:
        # DescribeTrails answers with every trail at once (it has no pagination).
        listed = self._client.describe_trails(includeShadowTrails=True).get("trailList", [])
        return [
            Trail(
                name=trail["Name"],
                arn=trail["TrailARN"],
                home_region=trail.get("HomeRegion", ""),
                is_multi_region=bool(trail.get("IsMultiRegionTrail")),
                s3_bucket=trail.get("S3BucketName", ""),
                log_file_validation=bool(trail.get("LogFileValidationEnabled")),
                kms_key_id=trail.get("KmsKeyId") or "",
            )
            for trail in listed
        ]

    def is_logging(self, trail_arn: str) -> bool:
        # By ARN, so that a shadow trail's status is read from its home region.
        return self._once.get(
            ("logging", trail_arn), lambda: bool(self._client.get_trail_status(Name=trail_arn)["IsLogging"])
        )
