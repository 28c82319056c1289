"""Undo on the local stack, every function the real handler of template.yaml: a mission applies a change (approved
on the emulated phone), then an `aegis.undo` event on the default bus (what the ops API's
POST /changes/{change_id}/undo puts) reaches the agent through `UndoRequestRule`; the agent plans the undo from the
executor's audited record, the validator accepts it, the approver sees it on the phone and approves, and the executor,
with the undo connection and UndoRole, restores the before-state. A second request for the same change is refused
by name: it is undone already.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from aegis.catalogue import Undo
from aegis.missions_keys import mission_id_for_event
from aegis_agent.errors import MissionNotFound
from aegis_agent.missions import MissionStore
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import Console, DemoOptions, run_on_stack, stack_arguments
from aegis_local.scenario.phone import Answer, ApprovalPolicy, EmulatedPhone, PhoneRequest

pytestmark = pytest.mark.e2e

EBS_CHECK = "ec2-ebs-default-encryption-off"
OPERATOR = "auth0|aegis-operator"
WAIT_SECONDS = 120.0


def put_undo(stack: LocalStack, change_id: str) -> str:
    """The event the ops API puts, on the default bus; returns the mission id the agent gives it."""
    answer = stack.client("events").put_events(
        Entries=[
            {
                "Source": "aegis.undo",
                "DetailType": "Undo Requested",
                "Detail": json.dumps({"change_id": change_id, "requested_by": OPERATOR}),
            }
        ]
    )
    return mission_id_for_event(answer["Entries"][0]["EventId"])


def wait_for_status(missions: MissionStore, mission_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            item = missions.get(mission_id)
        except MissionNotFound:
            item = {}
        if item.get("status") in statuses:
            return item
        time.sleep(0.2)
    raise AssertionError(f"mission {mission_id} did not reach {statuses} in {WAIT_SECONDS} s")


def approve_on_the_phones(phone: EmulatedPhone, change: Undo, count: int) -> list[PhoneRequest]:
    """Approve the `count` requests (one per approver) that ask about `change`, matched by its digest, as each person
    reads it off their phone."""
    approved: list[PhoneRequest] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and len(approved) < count:
        for request in phone.pending():
            if request.matching_change([change]) is not None and request not in approved:
                phone.answer(request, Answer.APPROVE)
                approved.append(request)
        time.sleep(0.2)
    assert len(approved) == count, f"the undo reached {len(approved)} of {count} approvers' phones"
    return approved


def test_an_applied_change_is_undone_after_approval_on_the_phone(tmp_path: Path) -> None:
    options = DemoOptions(policy=ApprovalPolicy(approve_all=True), checks=(EBS_CHECK,), report_dir=tmp_path / "reports")
    with LocalStack(**stack_arguments(options)) as stack:
        ec2 = stack.client("ec2")
        result = run_on_stack(stack, options, Console(io.StringIO()))
        [original] = [c for c in result.run.plan if c.check_id == EBS_CHECK]
        [applied] = [c for c in result.report.changes if c.change_id == original.change_id]
        assert (applied.decision, applied.outcome) == ("approved", "applied")
        assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True

        missions = MissionStore(stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable")))
        mission_id = put_undo(stack, original.change_id)
        waiting = wait_for_status(missions, mission_id, {"awaiting_approval", "failed", "completed"})
        assert (waiting["status"], waiting["trigger"], waiting["undo_of"], waiting["requested_by"]) == (
            "awaiting_approval",
            "undo",
            original.change_id,
            OPERATOR,
        )

        undo = Undo.of(original)
        # An undo is high risk: two distinct approvers (the two-person rule), each asked on their own phone.
        first, *others = stack.parameters["ApproverSubs"].split(",")
        assert others, "the demo's tenant has two approvers"
        asked = approve_on_the_phones(EmulatedPhone(stack.emulator, first, also=others), undo, 2)
        # Each phone showed the undo itself: its id, digest and binding message, the original's states swapped.
        for request in asked:
            assert (request.change_id, request.digest, request.binding_message) == (
                undo.change_id,
                undo.digest,
                undo.binding_message(),
            )
        assert len({request.auth_req_id for request in asked}) == 2

        done = wait_for_status(missions, mission_id, {"completed", "failed", "halted"})
        assert done["status"] == "completed", done
        assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
        report = missions.read_report(mission_id)
        assert report is not None
        [change] = report.changes
        assert (change.kind, change.change_id, change.decision, change.outcome) == (
            "undo",
            undo.change_id,
            "approved",
            "applied",
        )

        # Asked again: refused by name, nothing requested, the resource left as the undo made it.
        again = put_undo(stack, original.change_id)
        refused = wait_for_status(missions, again, {"awaiting_approval", "failed", "completed"})
        assert (refused["status"], refused["undo_refused"]) == ("failed", "undo-already-undone")
        stack.lambdas.wait_idle(10)
        assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
