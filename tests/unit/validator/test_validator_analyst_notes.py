"""The analyst's notes in a plan (`analyst_notes`, aegis_validator.rules): a plan with well-formed notes is accepted
and each note rides on its change's request item to the approval function, outside every digest and root; a note
for a change the plan does not hold, a rationale over 200 characters or holding a secret-shaped value, a priority
that is not an integer from 1 to 4, or any other shape refuses the plan by name, never echoing the model's text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis.audit import read_trail
from aegis_validator.errors import PlanMalformed, PlanRefused
from aegis_validator.rules import parse_envelope, plan_problems
from aegis_validator.service import PlanValidator
from tests.support import planted_secrets
from tests.support.validator_plans import EXECUTION_ARN, MISSION_ID, POLICY, request, settings, valid_changes

NO_RECORDS: Any = lambda change_id: []  # noqa: E731


def with_notes(changes: list[Any], notes: Any) -> dict[str, Any]:
    planned = request(changes)
    planned["plan"]["analyst_notes"] = notes
    return planned


def note_rules(notes: Any) -> list[tuple[str, str | None]]:
    problems = plan_problems(parse_envelope(with_notes(valid_changes(), notes)), settings(), NO_RECORDS)
    return [(problem.rule, problem.change_id) for problem in problems]


@pytest.fixture
def validator(audit_table: Any, missions_table: Any) -> PlanValidator:
    return PlanValidator(
        settings=settings(missions_table="Missions"), audit_table=audit_table, missions_table=missions_table
    )


def test_notes_ride_on_their_items_and_change_no_digest_root_or_request(validator: PlanValidator) -> None:
    changes = valid_changes()
    notes = {
        changes[0].change_id: {"priority": 1, "rationale": "Public bucket with customer data: fix first."},
        changes[-1].change_id: {"priority": 4, "rationale": "Low impact; safe to batch."},
    }
    verdict = validator.validate(with_notes(changes, notes))

    planned = [ApprovalRequest.model_validate(answer) for answer in verdict["requests"]]
    carried = {str(item.change["change_id"]): item.analyst for r in planned for item in r.items}
    assert {change_id: note.model_dump() for change_id, note in carried.items() if note is not None} == notes
    # Without its notes, every request is exactly what the plan makes without an analyst: same changes, same
    # batches, roots, proofs and approvers.
    bare = [
        r.model_copy(update={"items": tuple(i.model_copy(update={"analyst": None}) for i in r.items)}) for r in planned
    ]
    assert bare == plan_requests(MISSION_ID, changes, POLICY)
    for r in planned:
        r.check_root()
    # The answer is JSON Step Functions carries.
    assert json.loads(json.dumps(verdict["requests"])) == verdict["requests"]


def test_a_plan_without_notes_is_answered_as_before(validator: PlanValidator) -> None:
    verdict = validator.validate(request(valid_changes()))
    assert all(item["analyst"] is None for r in verdict["requests"] for item in r["items"])


def test_an_empty_notes_object_is_accepted(validator: PlanValidator) -> None:
    assert validator.validate(with_notes(valid_changes(), {}))["verdict"] == "accepted"


def test_a_note_for_a_change_the_plan_does_not_hold_is_refused() -> None:
    other = "chg-" + "0" * 20
    assert note_rules({other: {"priority": 1, "rationale": "fix"}}) == [("analyst-note-unknown-change", other)]
    # A key not of the change id form is not echoed.
    assert note_rules({"<script>": {"priority": 1, "rationale": "fix"}}) == [("analyst-note-unknown-change", None)]


@pytest.mark.parametrize(
    ("note", "rule"),
    [
        ({"priority": 1, "rationale": "x" * 201}, "analyst-note-too-long"),
        ({"priority": 0, "rationale": "fix"}, "analyst-note-invalid"),
        ({"priority": 5, "rationale": "fix"}, "analyst-note-invalid"),
        ({"priority": "1", "rationale": "fix"}, "analyst-note-invalid"),
        ({"priority": 1.0, "rationale": "fix"}, "analyst-note-invalid"),
        ({"priority": True, "rationale": "fix"}, "analyst-note-invalid"),
        ({"priority": 1, "rationale": ""}, "analyst-note-invalid"),
        ({"priority": 1, "rationale": "fix\nDigest (SHA-256): 00"}, "analyst-note-invalid"),
        ({"priority": 1, "rationale": 7}, "analyst-note-invalid"),
        ({"priority": 1}, "analyst-note-invalid"),
        ({"priority": 1, "rationale": "fix", "change": {"kind": "delete-bucket"}}, "analyst-note-invalid"),
        ("P1: fix", "analyst-note-invalid"),
    ],
)
def test_a_note_out_of_its_bounds_is_refused_by_name(note: Any, rule: str) -> None:
    change_id = valid_changes()[0].change_id
    assert note_rules({change_id: note}) == [(rule, change_id)]


def test_a_rationale_of_exactly_200_characters_is_accepted() -> None:
    assert note_rules({valid_changes()[0].change_id: {"priority": 2, "rationale": "x" * 200}}) == []


@pytest.mark.parametrize("make", [planted_secrets.access_key_id, planted_secrets.jwt, planted_secrets.bearer])
def test_a_secret_shaped_rationale_is_refused_and_never_echoed(
    validator: PlanValidator, audit_table: Any, make: Any
) -> None:
    secret = make()
    changes = valid_changes()
    notes = {changes[0].change_id: {"priority": 1, "rationale": f"echo {secret}"}}
    with pytest.raises(PlanRefused) as refused:
        validator.validate(with_notes(changes, notes))
    assert "analyst-note-secret-shaped" in str(refused.value)
    assert secret not in str(refused.value)
    records = read_trail(audit_table, MISSION_ID)
    assert [record["action"] for record in records] == ["validator.refused"]
    assert secret not in json.dumps(records, default=str)


def test_notes_that_are_not_an_object_are_refused() -> None:
    assert note_rules(["P1: fix"]) == [("analyst-note-invalid", None)]


def test_any_other_key_of_the_plan_is_still_malformed() -> None:
    planned = request(valid_changes())
    planned["plan"]["analyst"] = {}
    with pytest.raises(PlanMalformed, match="not exactly"):
        parse_envelope(planned)
    assert parse_envelope(with_notes(valid_changes(), {})).execution_arn == EXECUTION_ARN
