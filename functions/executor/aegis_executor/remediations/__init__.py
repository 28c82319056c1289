"""One remediation per catalogue kind, registered by kind (Cloud Custodian style): `remediations/<kind>.py`, the
kind's name in snake case, as in `aegis.catalogue.kinds`.

Importing this package imports every such module, which registers its remediation (`@remediation("<kind>")`);
`remediation_for(change)` finds the one for a change. Modules whose name starts with `_` are shared plumbing.
"""

import importlib
import pkgutil

from aegis_executor.remediations.base import (
    CLIENT_CONFIG,
    REMEDIATIONS,
    NoRemediation,
    Remediation,
    RemediationFailed,
    Verification,
    remediation,
    remediation_for,
)

for _found in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _found.name.startswith("_") and _found.name != "base":
        importlib.import_module(f"{__name__}.{_found.name}")

__all__ = [
    "CLIENT_CONFIG",
    "REMEDIATIONS",
    "NoRemediation",
    "Remediation",
    "RemediationFailed",
    "Verification",
    "remediation",
    "remediation_for",
]
