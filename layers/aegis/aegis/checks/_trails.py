"""What the checks of one trail's setting share: each trail is judged once, in its home region (a multi-region trail
is listed in every region but belongs to one), from the trails the collector already listed."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import JsonValue

from aegis.checks.base import CheckMetadata
from aegis.collectors import Inventory
from aegis.collectors.cloudtrail import Trail
from aegis.models import Finding


def trail_findings(
    metadata: CheckMetadata,
    inventory: Inventory,
    *,
    compliant: Callable[[Trail], bool],
    evidence: Mapping[str, JsonValue],
) -> list[Finding]:
    """One finding per trail of this region that is not `compliant`, with `evidence` and whether it is multi-region."""
    trails = [t for t in inventory.cloudtrail.trails() if t.home_region == inventory.region]
    inventory.count(metadata.resource_type, len(trails))
    return [
        metadata.finding(
            resource_arn=trail.arn,
            account_id=inventory.account_id,
            region=inventory.region,
            evidence={"is_multi_region": trail.is_multi_region, **evidence},
        )
        for trail in sorted(trails, key=lambda t: t.arn)
        if not compliant(trail)
    ]
