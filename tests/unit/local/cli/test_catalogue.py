"""`aegis-local catalogue` and docs/CATALOGUE.md: every check with its CIS ids and its fixes, the doc's table equal to
what the code declares."""

from __future__ import annotations

import io
from pathlib import Path

from aegis.checks import CHECKS
from aegis_local.cli.catalogue import render_markdown
from aegis_local.cli.main import build_parser

DOC = Path(__file__).resolve().parents[4] / "docs" / "CATALOGUE.md"


def run(*argv: str) -> str:
    args = build_parser().parse_args(["catalogue", *argv])
    out = io.StringIO()
    assert args.handler(args, out) == 0
    return out.getvalue()


def test_the_catalogue_covers_the_controls_the_product_promises() -> None:
    remediable = [c for c in CHECKS.values() if c.METADATA.kinds]
    assert len(CHECKS) >= 22
    assert len(remediable) >= 17
    first = run().splitlines()[0]
    assert first == f"{len(CHECKS)} controls, {len(remediable)} with a remediation (CIS AWS Foundations v7 ids)"


def test_the_text_lists_each_check_by_the_version_asked_for() -> None:
    text = run("--cis", "v5")
    for check_id, check in CHECKS.items():
        assert f"CIS {check.METADATA.cis_v5}" in text
        assert check_id in text


def test_the_doc_holds_the_table_the_code_renders() -> None:
    # Regenerate with: aegis-local catalogue --markdown
    assert render_markdown() in DOC.read_text()
    assert run("--markdown") == render_markdown()


def test_unconfirmed_ids_say_so() -> None:
    unsure = [c for c in CHECKS.values() if "v7" in c.METADATA.cis_unsure]
    table = render_markdown()
    for check in unsure:
        assert f"| {check.METADATA.cis_v7} (unconfirmed) | `{check.METADATA.check_id}` |" in table
