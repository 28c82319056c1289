"""The console's Merkle root (console/src/merkle.ts), run under Node with its WebCrypto, equals the approval's and the
executor's (`aegis.approvals.merkle.merkle_root`) for every tree shape up to 33 leaves and for 100, and refuses what
Python refuses (no digest, a repeated one, a malformed one).

The module is bundled with the console's own esbuild; without Node or the console's node_modules (`make console`)
the test skips, except under CI, where that is a failure."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from aegis.approvals.merkle import MerkleError, merkle_root

ROOT = Path(__file__).resolve().parents[3]
CONSOLE = ROOT / "console"
ESBUILD = CONSOLE / "node_modules" / ".bin" / "esbuild"

Runner = Callable[[list[list[str]]], list[dict[str, str]]]

RUNNER = """
import { merkleRoot } from "./merkle.mjs";
const cases = JSON.parse(process.argv[2]);
const answers = [];
for (const digests of cases) {
  try {
    answers.push({ root: await merkleRoot(digests) });
  } catch (error) {
    answers.push({ error: error.name, message: error.message });
  }
}
console.log(JSON.stringify(answers));
"""


def digests(count: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}change-{index}".encode()).hexdigest() for index in range(count)]


@pytest.fixture(scope="module")
def run_ts(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    node = shutil.which("node")
    if node is None or not ESBUILD.is_file():
        reason = "node or the console's esbuild is missing (make console)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("merkle-ts")
    subprocess.run(
        [
            str(ESBUILD),
            str(CONSOLE / "src" / "merkle.ts"),
            "--format=esm",
            "--platform=neutral",
            "--target=es2022",
            f"--outfile={work / 'merkle.mjs'}",
            "--log-level=warning",
        ],
        check=True,
    )
    (work / "run.mjs").write_text(RUNNER, encoding="utf-8")

    def run(cases: list[list[str]]) -> list[dict[str, str]]:
        done = subprocess.run(
            [node, str(work / "run.mjs"), json.dumps(cases)], check=True, capture_output=True, text=True, timeout=60
        )
        answers: list[dict[str, str]] = json.loads(done.stdout)
        return answers

    return run


def test_the_consoles_root_is_pythons_for_every_tree_shape(run_ts: Runner) -> None:
    cases = [digests(n, salt=str(n)) for n in [*range(1, 34), 100]]
    # The console sorts as Python does: the order the page lists the changes in does not matter.
    cases.append(list(reversed(digests(7, salt="reversed"))))
    answers = run_ts(cases)
    assert [answer.get("root") for answer in answers] == [merkle_root(case) for case in cases]


def test_the_console_refuses_what_python_refuses(run_ts: Runner) -> None:
    one = digests(1)[0]
    refused = [[], [one, one], [one.upper()], [one[:-1]], ["z" * 64]]
    for case in refused:
        with pytest.raises(MerkleError):
            merkle_root(case)
    answers = run_ts(refused)
    assert [answer.get("error") for answer in answers] == ["MerkleError"] * len(refused)


def test_a_changed_digest_changes_the_root(run_ts: Runner) -> None:
    honest = digests(12, salt="batch")
    tampered = [*honest[:-1], hashlib.sha256(b"smuggled").hexdigest()]
    honest_root, tampered_root = (answer["root"] for answer in run_ts([honest, tampered]))
    assert honest_root == merkle_root(honest)
    assert tampered_root != honest_root
