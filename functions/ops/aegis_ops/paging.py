"""Pages of a DynamoDB query, for routes that list: a bounded `limit` and an opaque `next` cursor.

The cursor is the query's LastEvaluatedKey as base64url JSON. It is opaque to callers, and read back strictly: it
must decode to an object holding exactly the key attributes of the index being queried, each a short string, so a
forged cursor can move a page's start and nothing else (it cannot add a filter, switch index or reach another
partition: the key condition is the route's own).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aegis_ops.errors import BadRequest

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
# DynamoDB keys are at most 2048 bytes (hash) and 1024 (range); a cursor holds at most four of them.
MAX_CURSOR_CHARS = 8192
MAX_KEY_VALUE_CHARS = 2048


@dataclass(frozen=True)
class PageRequest:
    limit: int
    start_key: dict[str, str] | None


def page_request(
    limit: str | None, cursor: str | None, key_attributes: Sequence[str], *, default: int = DEFAULT_LIMIT
) -> PageRequest:
    """The page a route's `limit` and `next` query parameters ask for; BadRequest naming which is wrong."""
    return PageRequest(limit=parse_limit(limit, default), start_key=decode_cursor(cursor, key_attributes))


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT) -> int:
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def encode_cursor(last_evaluated_key: Mapping[str, Any] | None) -> str | None:
    """The `next` cursor of a page (None on the last page)."""
    if not last_evaluated_key:
        return None
    text = json.dumps(dict(last_evaluated_key), separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, key_attributes: Sequence[str]) -> dict[str, str] | None:
    """The ExclusiveStartKey a cursor stands for; BadRequest unless it is one this route could have issued."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_CURSOR_CHARS:
        raise BadRequest("next is not a cursor of this list")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("next is not a cursor of this list") from None
    if (
        not isinstance(decoded, dict)
        or set(decoded) != set(key_attributes)
        or not all(isinstance(v, str) and 0 < len(v) <= MAX_KEY_VALUE_CHARS for v in decoded.values())
    ):
        raise BadRequest("next is not a cursor of this list")
    return decoded


def query_page(table: Any, request: PageRequest, **query: Any) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `table.query(**query)`: its items and the cursor of the next page (None on the last)."""
    if request.start_key is not None:
        query["ExclusiveStartKey"] = request.start_key
    answer = table.query(Limit=request.limit, **query)
    return list(answer.get("Items", [])), encode_cursor(answer.get("LastEvaluatedKey"))
