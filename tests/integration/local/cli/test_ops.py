"""The operator's commands against a running `aegis-local up --seed` (its own process, found through the state file
it writes): scan starts a mission, missions and show report it, audit prints its trail, kill halts and refuses the
next scan, rearm restores, leak-audit searches the stack for the client secrets it holds."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_local.cli.main import main

CONSOLE_SCRIPT = Path(sys.executable).parent / "aegis-local"


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("state")
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    environment["AEGIS_LOCAL_STATE_DIR"] = str(directory)
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "up", "--seed"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    path = directory / "aegis-local.json"
    try:
        deadline = time.monotonic() + 90
        while not path.exists():
            assert process.poll() is None, "aegis-local up ended early"
            assert time.monotonic() < deadline, "aegis-local up wrote no state file"
            time.sleep(0.2)
        yield path
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert not path.exists()  # removed when the stack stops


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def wait_for(condition: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_scan_missions_show_and_audit_a_dry_run_mission(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run(capsys, "scan", "--state", str(state_file), "--check", "kms-key-rotation-off", "--dry-run")
    assert code == 0, output
    mission_id = output.strip().rsplit(" ", 1)[-1]
    assert mission_id.startswith("m-")

    listed = wait_for(
        lambda: (found := run(capsys, "missions", "--state", str(state_file))[1]) and "completed" in found and found,
        "the mission to complete",
    )
    assert f"{mission_id}  completed" in listed
    assert "(dry run)" in listed

    code, shown = run(
        capsys, "show", mission_id, "--state", str(state_file), "--html", str(state_file.parent / "r.html")
    )
    assert code == 0, shown
    assert f"Mission {mission_id}: completed" in shown
    assert "kms-key-rotation-off" in shown
    assert (state_file.parent / "r.html").read_text().startswith("<!doctype html>")

    code, trail = run(capsys, "audit", mission_id, "--state", str(state_file))
    assert code == 0
    assert "mission.created" in trail
    assert "mission.completed" in trail

    # The chainer of the stack's own process links the trail; verify recomputes it, then names an edited record.
    code, verdict = run(capsys, "audit", "verify", mission_id, "--state", str(state_file))
    assert code == 0, verdict
    assert "intact" in verdict
    assert "up to the stored head" in verdict
    from aegis_local.cli.ops import StackState

    audit = StackState.load(str(state_file)).table("AuditTable")
    first = min(
        audit.query(KeyConditionExpression="mission_id = :m", ExpressionAttributeValues={":m": mission_id})["Items"],
        key=lambda r: r["seq"],
    )
    audit.update_item(
        Key={"mission_id": mission_id, "seq": first["seq"]},
        UpdateExpression="SET outcome = :o",
        ExpressionAttributeValues={":o": "tampered"},
    )
    code, verdict = run(capsys, "audit", "verify", mission_id, "--state", str(state_file), "--json")
    assert code == 1, verdict
    document = json.loads(verdict)
    assert document["intact"] is False
    assert document["problem"]["kind"] == "changed"
    assert document["problem"]["seq"] == first["seq"]


def test_kill_refuses_the_next_scan_and_rearm_restores(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = run(capsys, "missions", "--state", str(state_file))[1]
    code, output = run(capsys, "kill", "--state", str(state_file), "--reason", "ops test")
    assert code == 0, output
    assert "halted=True" in output
    code, output = run(capsys, "scan", "--state", str(state_file), "--dry-run")
    assert code == 0  # EventBridge accepts the event; the disabled rule delivers it to nobody
    time.sleep(2)
    assert run(capsys, "missions", "--state", str(state_file))[1] == before

    code, output = run(capsys, "rearm", "--state", str(state_file), "--reason", "ops test over")
    assert code == 0, output
    assert "halted=False" in output


def test_leak_audit_of_the_running_stack_and_usage_errors(
    state_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(capsys, "leak-audit", "--state", str(state_file))
    assert code == 0, output
    assert "3 values searched" in output  # the client secrets the stack holds: approval, executor, kill switch
    assert "no secret found" in output
    code, output = run(capsys, "leak-audit", str(tmp_path))
    assert code == 2
    assert "nothing to search for" in output
    code, output = run(capsys, "missions", "--state", str(tmp_path / "nowhere.json"))
    assert code == 1
    assert "no running stack" in output
