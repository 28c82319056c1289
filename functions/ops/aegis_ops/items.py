"""DynamoDB items as JSON: boto3's resource layer reads numbers as Decimal and sets as Python sets."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def json_ready(value: Any) -> Any:
    """`value` with every Decimal an int (or a float when it has a fraction) and every set a sorted list."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(json_ready(v) for v in value)
    return value
