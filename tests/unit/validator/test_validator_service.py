"""The validator against the Audit table as the template declares it (moto): verdicts are audited, refusals are
raised by name, and an undo is looked up through the ByChange index in records the audit writer promoted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.audit import AuditLog, read_trail
from aegis.catalogue import Undo
from aegis_validator.errors import ERRORS, InvalidSettings, PlanMalformed, PlanRefused, ValidatorError
from aegis_validator.service import UNNAMED_REQUEST, PlanValidator
from aegis_validator.settings import ValidatorSettings
from tests.support.stack import STATE_MACHINE_PATH
from tests.support.validator_plans import (
    ACCOUNT,
    EXECUTION_ARN,
    MISSION_ID,
    OTHER_ACCOUNT,
    audit_change,
    request,
    settings,
    valid_changes,
)


@pytest.fixture
def validator(audit_table: Any) -> PlanValidator:
    return PlanValidator(settings=settings(), audit_table=audit_table)


def trail(table: Any, mission_id: str = MISSION_ID) -> list[dict[str, Any]]:
    items = sorted(read_trail(table, mission_id), key=lambda item: item["seq"])
    return [{**item, "details": json.loads(item["details"])} for item in items]


def test_a_valid_plan_is_accepted_and_its_verdict_audited_with_the_agents_plan_digest(
    validator: PlanValidator, audit_table: Any
) -> None:
    from aegis_agent.graph import plan_digest

    changes = valid_changes()
    verdict = validator.validate(request(changes))

    assert verdict == {
        "mission_id": MISSION_ID,
        "verdict": "accepted",
        "changes": len(changes),
        "plan_digest": plan_digest(changes),
    }
    [accepted] = trail(audit_table)
    assert (accepted["actor"], accepted["action"], accepted["outcome"]) == (
        "validator",
        "validator.accepted",
        "accepted",
    )
    assert accepted["details"]["plan_digest"] == plan_digest(changes)
    assert accepted["details"]["execution_arn"] == EXECUTION_ARN
    assert accepted["details"]["changes"] == [
        {"change_id": c.change_id, "digest": c.digest, "kind": c.kind} for c in changes
    ]


def test_a_refused_plan_is_audited_then_raised_by_its_state_machine_name(
    validator: PlanValidator, audit_table: Any
) -> None:
    changes = valid_changes()
    validator.settings = settings(max_changes_per_mission=2)

    with pytest.raises(PlanRefused) as refused:
        validator.validate(request(changes))

    assert type(refused.value).__name__ == "Validation.PlanRefused"
    assert "too-many-changes" in str(refused.value)
    [record] = trail(audit_table)
    assert (record["action"], record["outcome"]) == ("validator.refused", "refused")
    assert record["details"]["error"] == "Validation.PlanRefused"
    assert record["details"]["change_count"] == len(changes)
    assert [p["rule"] for p in record["details"]["problems"]] == ["too-many-changes"]


def test_a_malformed_input_is_audited_under_its_execution_and_raised_by_name(
    validator: PlanValidator, audit_table: Any
) -> None:
    forged = {"execution_arn": EXECUTION_ARN.replace(MISSION_ID, "evil-run"), "plan": {"changes": "all"}}

    with pytest.raises(PlanMalformed) as malformed:
        validator.validate(forged)

    assert type(malformed.value).__name__ == "Validation.PlanMalformed"
    [record] = trail(audit_table, "evil-run")
    assert (record["action"], record["outcome"]) == ("validator.refused", "malformed")
    assert record["details"]["error"] == "Validation.PlanMalformed"
    with pytest.raises(PlanMalformed):
        validator.validate(["not", "a", "request"])
    assert [r["details"]["execution_arn"] for r in trail(audit_table, UNNAMED_REQUEST)] == [None]


def test_a_refusal_is_raised_even_when_it_cannot_be_audited(validator: PlanValidator) -> None:
    validator.settings = settings(max_changes_per_mission=1)
    validator.audit_table.delete()
    with pytest.raises(PlanRefused, match="too-many-changes"):
        validator.validate(request(valid_changes()[:2]))


def test_an_undo_is_accepted_only_after_the_executor_audited_the_change_applied(
    validator: PlanValidator, audit_table: Any
) -> None:
    original = valid_changes()[0]
    undo = request([Undo.of(original)])
    with pytest.raises(PlanRefused, match="undo-not-applied"):
        validator.validate(undo)

    # Written as the executor writes it (aegis_executor.execute: record("executor.applied", ...)).
    audit_change(audit_table, original)
    assert validator.validate(undo)["verdict"] == "accepted"


def test_an_applied_record_of_another_account_does_not_allow_an_undo(
    validator: PlanValidator, audit_table: Any
) -> None:
    original = valid_changes()[0]
    audit_change(audit_table, original, account=OTHER_ACCOUNT)
    with pytest.raises(PlanRefused, match="undo-not-applied"):
        validator.validate(request([Undo.of(original)]))


def test_the_audit_writer_indexes_records_about_one_change_and_nothing_else(audit_table: Any) -> None:
    log = AuditLog(audit_table, "agent")
    change_id = valid_changes()[0].change_id
    about_a_change = log.append(MISSION_ID, "change.result", "applied", change_id=change_id)
    about_the_mission = log.append(MISSION_ID, "mission.created", "ok")
    not_a_change_id = log.append(MISSION_ID, "odd", "ok", change_id="<script>")
    assert about_a_change["change_id"] == change_id
    assert "change_id" not in about_the_mission
    assert "change_id" not in not_a_change_id


# --- settings and errors ---------------------------------------------------------------------------------------


ENVIRONMENT = {
    "AUDIT_TABLE": "Audit",
    "ACCOUNT_ID": ACCOUNT,
    "SCAN_REGIONS": "eu-west-1, us-east-1,eu-west-1",
    "MAX_CHANGES_PER_MISSION": "10",
    "TRAIL_BUCKET": "",
    "FLOW_LOGS_LOG_GROUP": "",
    "FLOW_LOGS_ROLE_ARN": "",
}


def test_settings_come_from_the_template_environment() -> None:
    assert ValidatorSettings.from_env(ENVIRONMENT) == ValidatorSettings(
        audit_table="Audit",
        account_id=ACCOUNT,
        scan_regions=("eu-west-1", "us-east-1"),
        max_changes_per_mission=10,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ACCOUNT_ID", ""),
        ("ACCOUNT_ID", "12345"),
        ("SCAN_REGIONS", "eu-west-1;us-east-1"),
        ("SCAN_REGIONS", ""),
        ("MAX_CHANGES_PER_MISSION", "ten"),
        ("MAX_CHANGES_PER_MISSION", "0"),
        ("MAX_CHANGES_PER_MISSION", "101"),
        ("FLOW_LOGS_ROLE_ARN", "flow-logs-role"),
        ("AUDIT_TABLE", ""),
    ],
)
def test_an_invalid_setting_is_named_and_its_value_not_echoed(name: str, value: str) -> None:
    with pytest.raises(InvalidSettings, match=name) as invalid:
        ValidatorSettings.from_env(ENVIRONMENT | {name: value})
    assert type(invalid.value).__name__ == "Validation.InvalidSettings"
    if len(value) > 3:  # a short value may occur in the message's own words
        assert value not in str(invalid.value)


@pytest.mark.parametrize("error", ERRORS, ids=[e.__name__ for e in ERRORS])
def test_each_error_reports_its_state_machine_name_and_is_still_caught_by_class(error: type[ValidatorError]) -> None:
    assert error.__name__.startswith("Validation.")
    with pytest.raises(ValidatorError) as caught:
        raise error("why")
    assert type(caught.value).__name__ == error.__name__


def test_the_state_machine_catches_the_refusals_by_name_and_anything_else_as_a_failure() -> None:
    validate = json.loads(STATE_MACHINE_PATH.read_text(encoding="utf-8"))["States"]["ValidatePlan"]
    caught = [error for catcher in validate["Catch"] for error in catcher["ErrorEquals"]]
    assert caught == [PlanRefused.__name__, PlanMalformed.__name__, "States.ALL"]
    # A broken deployment fails every mission without asking anyone anything.
    assert InvalidSettings.__name__ not in caught
    assert not {error for retrier in validate["Retry"] for error in retrier["ErrorEquals"]} & {
        e.__name__ for e in ERRORS
    }
