"""The validator against the Audit table as the template declares it (moto): verdicts are audited, refusals are
raised by name, and an undo is looked up through the ByChange index in records the audit writer promoted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.policy import NEEDS_SECOND_APPROVER, ApprovalPolicy, ApproverRouting
from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis.audit import AuditLog, read_trail
from aegis.catalogue import Undo
from aegis.models import Risk
from aegis_validator.errors import ERRORS, InvalidSettings, PlanMalformed, PlanRefused, ValidatorError
from aegis_validator.service import UNNAMED_REQUEST, PlanValidator
from aegis_validator.settings import ValidatorSettings
from tests.support.stack import STATE_MACHINE_PATH
from tests.support.validator_plans import (
    ACCOUNT,
    APPROVERS,
    EXECUTION_ARN,
    MISSION_ID,
    OTHER_ACCOUNT,
    POLICY,
    audit_change,
    rebuilt,
    request,
    settings,
    valid_changes,
    wire,
)


@pytest.fixture
def validator(audit_table: Any, missions_table: Any) -> PlanValidator:
    return PlanValidator(
        settings=settings(missions_table="Missions"), audit_table=audit_table, missions_table=missions_table
    )


def trail(table: Any, mission_id: str = MISSION_ID) -> list[dict[str, Any]]:
    items = sorted(read_trail(table, mission_id), key=lambda item: item["seq"])
    return [{**item, "details": json.loads(item["details"])} for item in items]


def test_a_valid_plan_is_accepted_and_its_verdict_audited_with_the_agents_plan_digest(
    validator: PlanValidator, audit_table: Any
) -> None:
    from aegis_agent.graph import plan_digest

    changes = valid_changes()
    verdict = validator.validate(request(changes))

    requests = plan_requests(MISSION_ID, changes, POLICY)
    assert verdict == {
        "mission_id": MISSION_ID,
        "verdict": "accepted",
        "changes": len(changes),
        "plan_digest": plan_digest(changes),
        "requests": [r.model_dump(mode="json") for r in requests],
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
    assert accepted["details"]["requests"] == [
        {
            "request_id": r.request_id,
            "kind": r.kind,
            "approvers": list(r.approvers),
            "root": r.root,
            "change_ids": [item.change["change_id"] for item in r.items],
        }
        for r in requests
    ]


def test_every_change_travels_once_exactly_as_submitted_inside_its_planned_request(validator: PlanValidator) -> None:
    changes = valid_changes()
    planned = validator.validate(request(changes))["requests"]

    items = [item for r in planned for item in r["items"]]
    assert sorted(json.dumps(item["change"], sort_keys=True) for item in items) == sorted(
        json.dumps(wire(change), sort_keys=True) for change in changes
    )
    for answer in planned:
        parsed = ApprovalRequest.model_validate(answer)
        parsed.check_root()  # a batch's root and proofs are its changes' own
        assert parsed.model_dump(mode="json") == answer
    # Low and medium changes share a batch (the template's defaults); the answer is JSON Step Functions carries.
    assert any(r["kind"] == "batch" for r in planned)
    assert json.loads(json.dumps(planned)) == planned


def test_a_change_no_two_approvers_can_approve_refuses_the_plan_by_name(
    validator: PlanValidator, audit_table: Any
) -> None:
    changes = valid_changes()
    high = rebuilt(changes[0], risk=Risk.HIGH)
    validator.settings = settings(approval_policy=ApprovalPolicy(approver_subs=("auth0|approver-a",)))

    with pytest.raises(PlanRefused, match=NEEDS_SECOND_APPROVER) as refused:
        validator.validate(request([high, *changes[1:]]))

    assert high.change_id in str(refused.value)
    [record] = trail(audit_table)
    assert [(p["rule"], p["change_id"]) for p in record["details"]["problems"]] == [
        (NEEDS_SECOND_APPROVER, high.change_id)
    ]
    # Routed to a single approver, even a deployment with two cannot plan it: never downgraded to one approval.
    routing = ApproverRouting.parse(
        json.dumps({"checks": {high.check_id: ["auth0|approver-b"]}}), APPROVERS, InvalidSettings
    )
    validator.settings = settings(approval_policy=ApprovalPolicy(approver_subs=APPROVERS, routing=routing))
    with pytest.raises(PlanRefused, match=NEEDS_SECOND_APPROVER):
        validator.validate(request([high]))
    # With both approvers eligible it is planned as a request of its own for both.
    validator.settings = settings()
    (planned,) = validator.validate(request([high]))["requests"]
    assert (planned["kind"], sorted(planned["approvers"])) == ("single", sorted(APPROVERS))


def test_a_routed_check_goes_to_its_approver_only(validator: PlanValidator) -> None:
    changes = valid_changes()
    routed = changes[0]
    routing = ApproverRouting.parse(
        json.dumps({"checks": {routed.check_id: ["auth0|approver-b"]}}), APPROVERS, InvalidSettings
    )
    validator.settings = settings(approval_policy=ApprovalPolicy(approver_subs=APPROVERS, routing=routing))

    planned = validator.validate(request(changes))["requests"]

    (home,) = [r for r in planned if routed.change_id in {i["change"]["change_id"] for i in r["items"]}]
    assert home["approvers"] == ["auth0|approver-b"]
    # Nothing else shares its request: the others' eligible approvers are another set.
    assert [i["change"]["change_id"] for i in home["items"]] == [routed.change_id]


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
    "MISSIONS_TABLE": "Missions",
    "ACCOUNT_ID": ACCOUNT,
    "SCAN_REGIONS": "eu-west-1, us-east-1,eu-west-1",
    "MAX_CHANGES_PER_MISSION": "10",
    "APPROVER_SUBS": "auth0|approver-a,auth0|approver-b",
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
        approval_policy=ApprovalPolicy(approver_subs=APPROVERS),
        missions_table="Missions",
    )
    routed = ValidatorSettings.from_env(
        ENVIRONMENT
        | {
            "APPROVAL_BATCH_MAX_RISK": "none",
            "APPROVAL_BATCH_MAX_CHANGES": "40",
            "APPROVAL_TWO_PERSON_RISK": "medium",
            "APPROVER_ROUTING": json.dumps({"accounts": {ACCOUNT: ["auth0|approver-b"]}}),
            "APPROVAL_REVIEW_URL_BASE": "https://console.example/",
        }
    ).approval_policy
    assert (routed.batch_max_risk, routed.batch_max_changes, routed.two_person_risk, routed.review_url_base) == (
        None,
        40,
        Risk.MEDIUM,
        "https://console.example/",
    )
    assert routed.eligible(valid_changes()[0]) == ("auth0|approver-b",)


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
        ("MISSIONS_TABLE", ""),
        ("APPROVER_SUBS", ""),
        ("APPROVAL_BATCH_MAX_RISK", "critical"),
        ("APPROVAL_BATCH_MAX_CHANGES", "101"),
        ("APPROVAL_TWO_PERSON_RISK", "always"),
        ("APPROVER_ROUTING", '{"checks": {"iam-root-mfa": ["auth0|stranger"]}}'),
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
