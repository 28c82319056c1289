"""The AWS toolchain accepts member/template.yaml as it accepts template.yaml (tests/integration/test_sam.py), and
`make validate` runs it on both: cfn-lint and `sam validate --lint`. The tools live in .venv-sam (`make setup-sam`);
where they are missing the tests skip, except under CI (env CI set), where that is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest

from tests.support.stack import ROOT
from tests.unit.member.member_stack import MEMBER_TEMPLATE_PATH

SAM_VENV_BIN = ROOT / ".venv-sam" / "bin"
REGION = "us-east-1"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _tool(name: str) -> str:
    in_venv = SAM_VENV_BIN / name
    if in_venv.exists():
        return str(in_venv)
    found = shutil.which(name)
    if found:
        return found
    _unavailable(f"{name} is not installed (it lives in .venv-sam: run `make setup-sam`, or the tests via `make test`)")


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_make_validate_covers_the_member_template() -> None:
    dry_run = subprocess.run(
        ["make", "--dry-run", "validate"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert dry_run.returncode == 0, dry_run.stderr
    commands = [line.strip() for line in dry_run.stdout.splitlines()]
    assert any(c.endswith("cfn-lint member/template.yaml") for c in commands), commands
    assert any("sam validate --lint --template member/template.yaml" in c for c in commands), commands


@pytest.mark.slow
def test_cfn_lint_reports_nothing_on_the_member_template() -> None:
    result = _run([_tool("cfn-lint"), str(MEMBER_TEMPLATE_PATH)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.slow
def test_sam_validate_lint_accepts_the_member_template() -> None:
    result = _run([_tool("sam"), "validate", "--lint", "--template", str(MEMBER_TEMPLATE_PATH), "--region", REGION])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr
