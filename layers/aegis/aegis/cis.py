"""CIS AWS Foundations Benchmark versions: which ones the catalogue knows, and how their control ids sort.

Every check carries its control's id in v3.0.0, v5.0.0 and v7.0.0 (the current benchmark), and in v6.0.0 where that
differs from v7.0.0 (`aegis.checks.base.CheckMetadata`). Reports, the scan table and the console group findings by
one version: v7 unless a deployment (`CisVersion`) or a command (`--cis`) picks another.
"""

from __future__ import annotations

import re
from typing import Any, Literal, cast

CisVersion = Literal["v3", "v5", "v6", "v7"]
CIS_VERSIONS: tuple[CisVersion, ...] = ("v7", "v6", "v5", "v3")
DEFAULT_CIS_VERSION: CisVersion = "v7"
BENCHMARK_NAMES: dict[CisVersion, str] = {
    "v3": "CIS AWS Foundations v3.0.0",
    "v5": "CIS AWS Foundations v5.0.0",
    "v6": "CIS AWS Foundations v6.0.0",
    "v7": "CIS AWS Foundations v7.0.0",
}


class InvalidCisVersion(ValueError):
    """A benchmark version the catalogue does not carry ids for."""


def cis_version(text: str | None) -> CisVersion:
    """`text` ("v7", "7", "7.0" or "v7.0.0"...) as a known version; the default when empty. InvalidCisVersion
    otherwise."""
    if not text:
        return DEFAULT_CIS_VERSION
    match = re.fullmatch(r"v?(\d+)(?:\.0){0,2}", text.strip().lower())
    version = f"v{match.group(1)}" if match else ""
    if version not in CIS_VERSIONS:
        raise InvalidCisVersion(f"unknown CIS version {text!r}; known: {', '.join(CIS_VERSIONS)}")
    return cast(CisVersion, version)


def cis_id_of(item: Any, version: CisVersion) -> str:
    """The control id in `version` of a finding, or of a report's finding (fields `cis_v3` ... `cis_v7`); "" where
    it carries none (v6 and v7 are empty in findings recorded before the checks carried them)."""
    return str(getattr(item, f"cis_{version}", "") or "")


def cis_sort_key(control: str) -> tuple[int, tuple[int, ...], str]:
    """Numerically by the first id of a control ("2.3" < "2.7, 2.8" < "2.14"); an empty or unnumbered id last."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", control.split(",", maxsplit=1)[0]))
    return (0 if numbers else 1, numbers, control)
