"""AWS's answers made up in a test, for a `before-send` handler to return instead of sending the request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


class _Body:
    """The raw body botocore reads from a response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_args: Any, **_kwargs: Any) -> bytes:
        return self._body


def answer(url: str, status: int, body: bytes) -> AWSResponse:
    return AWSResponse(url, status, {}, _Body(body))
