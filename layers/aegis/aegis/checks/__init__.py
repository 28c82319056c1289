"""The CIS checks: one module per check, `checks/<check id in snake case>.py`, its metadata beside its code.

`CHECKS` maps each check id to its module, which exposes `METADATA` (`CheckMetadata`), `evaluate(inventory)` and
`propose(finding, config)` (see `aegis.checks.base.CheckModule`). The package finds its checks itself: adding a
check is adding its file. `base` and modules whose name starts with `_` are shared plumbing, not checks.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import cast

from aegis.checks.base import CheckMetadata, CheckModule, PlanConfig

PLUMBING = frozenset({"base"})


def _discover() -> dict[str, CheckModule]:
    checks: dict[str, CheckModule] = {}
    for found in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if found.name.startswith("_") or found.name in PLUMBING:
            continue
        module = cast(CheckModule, importlib.import_module(f"{__name__}.{found.name}"))
        checks[module.METADATA.check_id] = module
    return checks


CHECKS: dict[str, CheckModule] = _discover()


class UnknownCheck(ValueError):
    """A check id that is not in CHECKS."""


def get_check(check_id: str) -> CheckModule:
    try:
        return CHECKS[check_id]
    except KeyError:
        raise UnknownCheck(f"unknown check id {check_id!r}; known: {', '.join(sorted(CHECKS))}") from None


__all__ = ["CHECKS", "CheckMetadata", "CheckModule", "PlanConfig", "UnknownCheck", "get_check"]
