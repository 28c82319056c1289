"""create-multi-region-trail: adds exactly one logging multi-region trail, named so that the roles may reach it."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.create_multi_region_trail import (
    TRAIL_NAME_PREFIX,
    CreateMultiRegionTrail,
    MultiRegionTrails,
    TrailSpec,
)
from tests.support.changes import ACCOUNT, COMMON, REGION, multi_region_trail_change


def _propose(name: str, resource_name: str | None = None, **spec: bool) -> CreateMultiRegionTrail:
    trail = TrailSpec(name=name, s3_bucket="aegis-trail-logs", **spec)
    return CreateMultiRegionTrail.propose(
        check_id="cloudtrail-no-multi-region-trail",
        resource_arn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{resource_name or name}",
        before=MultiRegionTrails(trails=()),
        after=MultiRegionTrails(trails=(trail,)),
        **COMMON,
    )


def test_a_trail_the_roles_could_not_reach_is_refused() -> None:
    with pytest.raises(ValueError, match=f"named {TRAIL_NAME_PREFIX}"):
        _propose("organization-trail")


def test_the_resource_must_be_the_new_trail() -> None:
    with pytest.raises(ValueError, match="new trail's ARN"):
        _propose("aegis-trail", resource_name="aegis-other")


def test_a_trail_that_does_not_log_everywhere_is_refused() -> None:
    with pytest.raises(ValueError, match="logging multi-region trail"):
        _propose("aegis-trail", is_multi_region=False)


def test_the_approver_sees_where_the_logs_go() -> None:
    change = multi_region_trail_change()
    assert change.summary() == "Create trail aegis-trail all regions"
    assert change.describe_after() == "trail aegis-trail -> s3 aegis-trail-logs, multi-region, validated, logging"
