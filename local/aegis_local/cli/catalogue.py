"""`aegis-local catalogue`: every check of the catalogue, its CIS ids and the fixes it can propose.

It answers what an operator asks before deploying: which controls are covered, under which id of the benchmark
version they follow, which fix each check takes by default (the safest) and which others `RemediationChoices` may pin,
and what a human should do where no fix is proposed. `docs/CATALOGUE.md` holds the same table (`--markdown`), and a
test keeps the two equal.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from aegis.checks import CHECKS
from aegis.cis import CIS_VERSIONS, DEFAULT_CIS_VERSION, CisVersion, cis_sort_key

COMMAND = "catalogue"
EXIT_OK = 0


def _cis(check_id: str, version: CisVersion) -> str:
    meta = CHECKS[check_id].METADATA
    return meta.cis_id(version) + (" (unconfirmed)" if version in meta.cis_unsure else "")


def ordered(version: CisVersion) -> list[str]:
    return sorted(CHECKS, key=lambda c: (cis_sort_key(CHECKS[c].METADATA.cis_id(version)), c))


def render_markdown(version: CisVersion = DEFAULT_CIS_VERSION) -> str:
    """The catalogue as a Markdown table, by the CIS ids of `version`."""
    others = [v for v in CIS_VERSIONS if v != version]
    header = ["CIS " + version, "check", "severity", *(f"CIS {v}" for v in others), "fixes (first: default)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for check_id in ordered(version):
        meta = CHECKS[check_id].METADATA
        cells = [
            _cis(check_id, version),
            f"`{check_id}`",
            meta.severity.value,
            *(_cis(check_id, v) for v in others),
            ", ".join(f"`{kind}`" for kind in meta.kinds) or "notify-only",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_text(version: CisVersion = DEFAULT_CIS_VERSION) -> str:
    remediable = sum(1 for check in CHECKS.values() if check.METADATA.kinds)
    lines = [f"{len(CHECKS)} controls, {remediable} with a remediation (CIS AWS Foundations {version} ids)", ""]
    for check_id in ordered(version):
        meta = CHECKS[check_id].METADATA
        lines.append(f"CIS {_cis(check_id, version):<24} {check_id:<40} {meta.severity.value}")
        lines.append(f"  {meta.title}")
        lines.append(f"  fixes: {', '.join(meta.kinds) or 'notify-only'}")
        if meta.manual_fix:
            lines.append(f"  by hand: {meta.manual_fix}")
    return "\n".join(lines) + "\n"


def command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    out.write(render_markdown(args.cis) if args.markdown else render_text(args.cis))
    return EXIT_OK


EXAMPLES = """\
examples:
  aegis-local catalogue                    every check, by its CIS AWS Foundations v7.0.0 id
  aegis-local catalogue --cis v5           by the v5.0.0 ids
  aegis-local catalogue --markdown         the table of docs/CATALOGUE.md"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        COMMAND,
        help="list the checks: CIS ids, severity, the fixes each can propose",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cis", choices=CIS_VERSIONS, default=DEFAULT_CIS_VERSION, help="the CIS version to order by")
    parser.add_argument("--markdown", action="store_true", help="the table of docs/CATALOGUE.md")
    parser.set_defaults(handler=command)
    return parser
