"""`aegis-local demo` tells the operator what happened as it happens: every notification the stack publishes to its
topic is printed on the console and kept in `<report dir>/notifications.jsonl`, and the leak audit searches it.

- a drifted change and the completed mission, with its counts;
- the kill switch, with who triggered it and why.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from aegis_local.aws.notifications import read_notifications
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import Console, DemoOptions, DemoResult, run_on_stack, stack_arguments
from aegis_local.scenario.phone import ApprovalPolicy

pytestmark = pytest.mark.e2e

DRIFTED = "iam-password-policy-weak"
APPLIED = ("ec2-ebs-default-encryption-off", "s3-account-public-access-block-off", "kms-key-rotation-off")


def run(options: DemoOptions) -> tuple[DemoResult, str]:
    output = io.StringIO()
    with LocalStack(**stack_arguments(options)) as stack:
        result = run_on_stack(stack, options, Console(output))
    return result, output.getvalue()


def test_a_drifted_change_and_the_completed_mission_are_told_printed_kept_and_audited(tmp_path: Path) -> None:
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True, drift=frozenset({DRIFTED})),
        checks=(DRIFTED, APPLIED[0]),
        report_dir=tmp_path / "reports",
    )
    result, output = run(options)

    assert result.exit_code == 0, output
    kept = read_notifications(tmp_path / "reports" / "notifications.jsonl")
    assert kept == result.notifications
    assert [n.attributes["kind"] for n in kept] == ["drift-detected", "mission-completed"]
    drifted = next(c for c in result.report.changes if c.check_id == DRIFTED)
    assert f"change {drifted.change_id} drift detected" in kept[0].subject
    completed = json.loads(kept[1].message)
    assert completed["mission_id"] == result.run.mission_id
    assert (completed["counts"]["findings"], completed["counts"]["changes"]) == (2, 2)
    # Printed as they arrived, one short line each, and counted at the end.
    for notification in kept:
        assert f"notify   {notification.line()}" in output
    assert "2 notifications published" in output
    # Searched by the leak audit, one place per message, and clean.
    assert result.leak_audit.places["notification"] == 2
    assert result.leak_audit.hits == []


def test_the_kill_switch_is_told_with_who_triggered_it_and_why(tmp_path: Path) -> None:
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True), kill_after=1, checks=APPLIED, report_dir=tmp_path / "reports"
    )
    result, output = run(options)

    assert result.exit_code == 0, output
    assert result.run.kill_switch is not None
    kinds = [n.attributes["kind"] for n in result.notifications]
    assert kinds[0] == "killswitch-triggered"
    document = json.loads(result.notifications[0].message)
    assert document["requested_by"] == "aegis-local demo"
    assert document["reason"] == "aegis-local demo: --kill-after 1"
    assert "notify   killswitch-triggered: [aegis-local] kill switch triggered by aegis-local demo" in output
    assert result.leak_audit.hits == []
