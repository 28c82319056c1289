"""Smoke runs of the cold-start and package-size benchmarks: real fresh processes, real directory sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cold_start, package_size
from bench.common import functions


def test_cold_start_measures_every_handler_in_a_fresh_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cold_start.main(["--runs", "1"]) == 0
    out = capsys.readouterr().out
    for name in functions():
        assert name in out
    # The executor and approval functions must never pull in LangGraph; the agent always does.
    cold_start_table = out.split("## Heaviest imports")[0]
    rows = {line.split()[0]: line for line in cold_start_table.splitlines() if line.startswith(tuple(functions()))}
    assert " no " in rows["ExecutorFunction"]
    assert " no " in rows["ApprovalFunction"]
    assert " yes " in rows["AgentScanFunction"]


def test_heaviest_imports_reads_only_what_the_handler_imported_itself() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        200 | json",
            "import time:        50 |        150 |   json.decoder",
            "import time:       300 |       5000 | boto3",
        ]
    )
    assert cold_start.heaviest_imports(stderr) == [("boto3", 5.0), ("json", 0.2)]


def test_package_size_adds_each_functions_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in [*functions(), "AegisLayer", "JwtLayer", "AuthLayer"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "blob").write_bytes(b"x" * 1024 * 1024 * (3 if name == "AegisLayer" else 1))
    assert package_size.main(["--build-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    agent_row = next(line for line in out.splitlines() if line.startswith("AgentScanFunction"))
    # 1 MB of code + 3 MB of AegisLayer = 4 MB, so a 246 MB margin.
    assert "4.0" in agent_row
    assert "246.0" in agent_row
