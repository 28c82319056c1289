"""Shared helpers for the benchmarks: where things are, and a plain table printer."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aegis_local.aws.template import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


def functions() -> dict[str, dict[str, Any]]:
    """Serverless functions of the template: logical id -> Properties."""
    resources = load_template(TEMPLATE)["Resources"]
    return {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_environment(props: dict[str, Any]) -> dict[str, str]:
    """The variables the template gives a function (Globals + its own), with placeholders for unresolved values:
    a cold start imports the handler, it does not call AWS."""
    template = load_template(TEMPLATE)
    merged = {
        **((template.get("Globals") or {}).get("Function", {}).get("Environment", {}).get("Variables", {})),
        **(props.get("Environment", {}).get("Variables", {})),
    }
    defaults = {name: str(p["Default"]) for name, p in template.get("Parameters", {}).items() if "Default" in p}

    def resolve(name: str, value: Any) -> str:
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and value.get("Ref") in defaults:
            return defaults[value["Ref"]]
        return f"bench-{name.lower()}"

    return {name: resolve(name, value) for name, value in merged.items()}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in header], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n## {title}")
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
