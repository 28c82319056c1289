"""Every test here drives whole missions on the local stack: all are e2e (`-m "not e2e"` leaves them out).

A module starts its own stack as a module-scoped fixture named `stack` (one LocalStack per process at a time, and
one per module keeps the modules independent of each other's state and order: e.g. `tests.support.faults.fault_stack`);
the fixtures below build on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_local.scenario.seed import SeededAccount, seed_account
from tests.support.faults import MotoCallLog, reopen_findings

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def seeded(stack: Any) -> SeededAccount:
    """The vulnerable account, seeded once per module's stack."""
    return seed_account(stack.session(), stack.identity.region)


@pytest.fixture
def vulnerable(stack: Any, seeded: SeededAccount) -> SeededAccount:
    """The seeded account with the FAULT_CHECKS findings open again, whatever the module's earlier tests fixed."""
    reopen_findings(stack, seeded)
    return seeded


@pytest.fixture
def moto_calls(stack: Any) -> Iterator[MotoCallLog]:
    """The AWS calls moto sees during the test (recording from the test's start)."""
    with MotoCallLog.of(stack) as log:
        yield log
