"""A small run of the analyst benchmark: the real scanner and analyst against the local Bedrock emulator, one call
per batch of 25 findings, and the figures printed."""

from __future__ import annotations

import pytest

from bench import analyst


def test_the_analyst_bench_makes_one_call_per_batch_and_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert analyst.main(["--findings", "30"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("30 public buckets")]
    # account (3 words), model, findings, sent, calls, limit, ...
    calls = {row[3]: (int(row[4]), int(row[6]), int(row[7])) for row in rows[:2]}
    assert calls == {"scripted": (30, 2, 2), "adversarial": (30, 2, 2)}
    assert "Estimated Bedrock cost per mission" in out


def test_a_run_over_the_goal_is_reported() -> None:
    over = analyst.Measured(
        "a", "m", findings=30, sent=30, calls=3, input_tokens=10, output_tokens=5, seconds=0.1, fallbacks={}
    )
    assert over.call_limit == 2
    assert over.calls > over.call_limit
    assert over.cost(1.0, 2.0) == pytest.approx(20 / 1_000_000)
