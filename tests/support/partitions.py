"""The partitions tests run AegisCloud in, and the static changes of tests.support.changes moved into them."""

from __future__ import annotations

import json
from typing import Any

from aegis.catalogue import ChangeBase
from aegis.partitions import partition_of
from tests.support.changes import REGION

# (partition, a region of it) for every partition AegisCloud supports.
PARTITIONS: list[tuple[str, str]] = [("aws", "eu-west-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1")]
PARTITION_IDS = [partition for partition, _ in PARTITIONS]


def moved_to[C: ChangeBase](change: C, region: str, **fields: Any) -> C:
    """`change` (a static change, about REGION of the commercial partition) about the same resources in `region`:
    its region and every ARN it names moved there, its id derived anew; `fields` replace content after the move."""
    text = json.dumps(change.model_dump(mode="json", exclude={"kind", "change_id"}))
    moved = json.loads(text.replace("arn:aws:", f"arn:{partition_of(region)}:").replace(REGION, region))
    return type(change).propose(**(moved | fields))
