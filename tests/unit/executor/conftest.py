from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moto_account import moto_account


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto with throwaway credentials and no endpoint override."""
    with moto_account(monkeypatch):
        yield
