"""Smoke runs of the cold-start and package-size benchmarks: real fresh processes, real directory sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cold_start, package_size
from bench.common import functions


def test_cold_start_imports_every_handler_in_a_fresh_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cold_start.main(["--no-missions", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    for name in functions():
        assert name in out
    # The executor and approval functions must never pull in LangGraph; the agent always does.
    import_table = out.split("## Heaviest imports")[0]
    rows = {line.split()[0]: line for line in import_table.splitlines() if line.startswith(tuple(functions()))}
    assert rows["ExecutorFunction"].split()[-1] == "no"
    assert rows["ApprovalFunction"].split()[-1] == "no"
    assert rows["AgentScanFunction"].split()[-1] == "yes"
    # The import's own peak, not the forking parent's: a handler import stays well under the test process's size.
    peaks = {name: float(row.split()[2]) for name, row in rows.items()}
    assert all(0 < peak < 400 for peak in peaks.values()), peaks


@pytest.mark.e2e
@pytest.mark.slow
def test_a_missions_first_invocations_run_in_fresh_interpreters_and_the_mission_still_completes(
    tmp_path: Path,
) -> None:
    samples = cold_start.Samples()
    cold_start.measure_round(samples, tmp_path)
    assert samples.failures == []
    # Every function a mission invokes gave one sample, from the real event: the mission completed on their answers
    # (measure_round raises when it does not), and only the agent's interpreters imported LangGraph.
    mission_functions = {
        "AgentScanFunction",
        "AgentResumeFunction",
        "ValidatorFunction",
        "ApprovalFunction",
        "ExecutorFunction",
        "KillSwitchFunction",
        "AuditChainFunction",
    }
    assert mission_functions <= set(samples.by_name)
    for name in mission_functions:
        (sample,) = samples.by_name[name]
        assert sample.langgraph == name.startswith("Agent"), name
        assert sample.cpu_ms > sample.init_cpu_ms > 0, name
    assert not samples.by_name[cold_start.FLOOR][0].langgraph
    assert samples.by_name[cold_start.FLOOR_WITH_LANGGRAPH][0].langgraph
    rows, _ = cold_start.cold_start_rows(samples)
    assert [row[0] for row in rows[:2]] == [cold_start.FLOOR, cold_start.FLOOR_WITH_LANGGRAPH]
    executor = next(row for row in rows if row[0] == "ExecutorFunction")
    assert executor[7] == "<= x1.6"
    assert executor[8] in ("met", "MISSED")


def test_cold_start_goals_are_ratios_of_the_floor_measured_in_the_same_run() -> None:
    def sample(cpu_ms: float, langgraph: bool = False) -> cold_start.Sample:
        return cold_start.Sample(init_ms=1, init_cpu_ms=cpu_ms / 2, invoke_ms=1, cpu_ms=cpu_ms, langgraph=langgraph)

    samples = cold_start.Samples()
    samples.add(cold_start.FLOOR, sample(100))
    samples.add(cold_start.FLOOR_WITH_LANGGRAPH, sample(300, langgraph=True))
    samples.add("ApprovalFunction", sample(130))
    samples.add("KillSwitchFunction", sample(131))
    samples.add("ExecutorFunction", sample(160))
    samples.add("AgentScanFunction", sample(340, langgraph=True))  # 100 + 1.2 x 200
    samples.add("AgentResumeFunction", sample(341, langgraph=True))
    samples.add("ValidatorFunction", sample(900))  # no goal
    rows, missed = cold_start.cold_start_rows(samples)
    assert missed == ["AgentResumeFunction", "KillSwitchFunction"]
    by_name = {row[0]: row for row in rows}
    assert by_name["ValidatorFunction"][6:9] == ["x9.00", "", ""]
    assert by_name["AgentScanFunction"][8] == "met"


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
