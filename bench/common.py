"""Shared helpers for the benchmarks: where things are, their command line, and a plain table printer."""

from __future__ import annotations

import argparse
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


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line, described by the first paragraph of its module docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)


def add_sizes(
    parser: argparse.ArgumentParser,
    flag: str,
    what: str,
    full: Sequence[int],
    small: Sequence[int],
    small_help: str | None = None,
) -> None:
    """`flag`, the sizes to measure (`what`: comma-separated), and `--small`, a quick run. The sizes are
    `chosen_sizes(given, args.small, full, small)`."""
    parser.add_argument(flag, type=sizes, default=None, help=f"{what} (default {_listed(full)})")
    parser.add_argument("--small", action="store_true", help=small_help or f"a quick run: {what} {_listed(small)}")


def chosen_sizes(given: list[int] | None, small: bool, full: Sequence[int], quick: Sequence[int]) -> list[int]:
    return given or list(quick if small else full)


def _listed(values: Sequence[int]) -> str:
    return ",".join(str(value) for value in values)


def sizes(text: str) -> list[int]:
    """Comma-separated positive integers, once each, smallest first."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated integers, not {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sorted(set(values))


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
