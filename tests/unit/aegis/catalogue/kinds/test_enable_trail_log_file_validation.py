"""enable-trail-log-file-validation: turns validation on for one existing trail, and nothing else."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.enable_trail_log_file_validation import EnableTrailLogFileValidation, LogFileValidation
from tests.support.changes import ACCOUNT, COMMON, REGION, trail_log_file_validation_change

TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/org-trail"


@pytest.mark.parametrize(
    ("resource_arn", "before", "after", "message"),
    [
        (
            f"arn:aws:s3:::{ACCOUNT}-trail",
            LogFileValidation(enabled=False),
            LogFileValidation(enabled=True),
            "trail ARN",
        ),
        (TRAIL_ARN, LogFileValidation(enabled=True), LogFileValidation(enabled=False), "from off to on"),
        (TRAIL_ARN, LogFileValidation(exists=False, enabled=False), LogFileValidation(enabled=True), "existing trail"),
    ],
)
def test_anything_but_turning_validation_on_for_a_trail_is_refused(
    resource_arn: str, before: LogFileValidation, after: LogFileValidation, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EnableTrailLogFileValidation.propose(
            check_id="cloudtrail-log-file-validation-off",
            resource_arn=resource_arn,
            before=before,
            after=after,
            **COMMON,
        )


def test_the_change_may_update_that_trail_only() -> None:
    change = trail_log_file_validation_change()
    assert change.summary() == "Validate log files of trail org-trail"
    scoped, describe = change.session_policy_statements("apply")
    assert (scoped["Action"], scoped["Resource"]) == (["cloudtrail:UpdateTrail"], [TRAIL_ARN])
    assert describe["Action"] == ["cloudtrail:DescribeTrails"]
    assert describe["Condition"] == {"StringEquals": {"aws:RequestedRegion": REGION}}
