"""`aegis-local demo --approve all`, run as a user (and `make demo`) runs it: the console script in a fresh process,
with no AWS settings in its environment. It must end with exit 0, the report files, the functions' logs in their
own files (not on the terminal), and a leak audit that searched and found nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CONSOLE_SCRIPT = Path(sys.executable).parent / "aegis-local"


def test_the_demo_command_runs_a_whole_mission_and_exits_0(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    finished = subprocess.run(
        [str(CONSOLE_SCRIPT), "demo", "--approve", "all", "--report-dir", "tmp"],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = finished.stdout

    assert finished.returncode == 0, output + finished.stderr
    reports = tmp_path / "tmp"
    report = json.loads((reports / "report.json").read_text())
    assert (reports / "report.html").read_text().startswith("<!doctype html>")
    assert report["status"] == "completed"
    assert report["findings"]
    assert {c["outcome"] for c in report["changes"]} == {"applied"}
    audit = report["leak_audit"]
    assert audit["hits"] == []
    assert audit["values_searched"] > 10
    assert audit["places_searched"] > 50
    logs = sorted(path.name for path in (reports / "logs").glob("*.log"))
    assert "aegis-local-approval.log" in logs
    assert "aegis-local-executor.log" in logs
    # Progress on the terminal, the functions' JSON log lines in their files.
    for step in ("stack", "seed", "scan", "plan", "phone", "applied", "resume", "report", "audit", "done"):
        assert f"] {step}" in output, step
    assert '"level":"INFO"' not in output
    assert '"level":"INFO"' in (reports / "logs" / "aegis-local-approval.log").read_text()
    assert "no secret found" in output
    assert "ok (exit 0)" in output
