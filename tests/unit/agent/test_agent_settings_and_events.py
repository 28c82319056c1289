"""Settings from the environment and the event models: strict, with errors that name fields, never values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.policy import ApprovalPolicy
from aegis.models import Risk
from aegis_agent.errors import InvalidSettings, MalformedEvent, MalformedResume
from aegis_agent.events import CustomScanEvent, ScheduledScanEvent, parse_resume_event, parse_scan_event
from aegis_agent.settings import AgentSettings
from tests.support.agent_world import env_for, scan_event, scheduled_event, settings

SECRETISH = "hunter2-do-not-echo"


def environment(**overrides: str) -> dict[str, str]:
    return env_for(settings()) | overrides


def test_settings_read_every_documented_variable() -> None:
    suppressions = [{"check_id": "s3-bucket-public", "resource_arn": "*", "reason": "CDN origins"}]
    loaded = AgentSettings.from_env(
        environment(
            SCAN_REGIONS="eu-west-1, us-east-1,eu-west-1",
            DRY_RUN="true",
            MAX_CHANGES_PER_MISSION="7",
            MAX_SHARE_PER_RESOURCE_TYPE="0.25",
            SUPPRESSIONS=json.dumps(suppressions),
            TRUST_EXEMPTION_TAGS="true",
            CHECKPOINT_TTL_DAYS="3",
        )
    )
    assert loaded.scan_regions == ("eu-west-1", "us-east-1")
    assert loaded.dry_run is True
    assert (loaded.max_changes_per_mission, loaded.max_share_per_resource_type) == (7, 0.25)
    assert [s.reason for s in loaded.suppressions] == ["CDN origins"]
    assert loaded.checkpoint_ttl_days == 3
    assert loaded.trust_exemption_tags is True
    assert loaded.policy().trust_exemption_tags is True
    assert loaded.policy(dry_run=False).dry_run is True  # the setting wins: an event cannot turn a dry run live


def test_the_approval_policy_is_the_one_the_validator_and_the_approval_function_read() -> None:
    routing = {"checks": {"s3-bucket-public": ["auth0|approver-b"]}}
    loaded = AgentSettings.from_env(
        environment(
            APPROVAL_TWO_PERSON_RISK="medium", APPROVAL_BATCH_MAX_RISK="low", APPROVER_ROUTING=json.dumps(routing)
        )
    )
    assert loaded.approval == ApprovalPolicy.from_env(
        environment(
            APPROVAL_TWO_PERSON_RISK="medium", APPROVAL_BATCH_MAX_RISK="low", APPROVER_ROUTING=json.dumps(routing)
        ),
        InvalidSettings,
    )
    assert loaded.approval is not None
    assert (loaded.approval.two_person_risk, loaded.approval.batch_max_risk) == (Risk.MEDIUM, Risk.LOW)


def test_optional_settings_have_defaults() -> None:
    env = {k: v for k, v in environment().items() if k in {"CHECKPOINTS_TABLE", "MISSIONS_TABLE", "AUDIT_TABLE"}}
    env |= {"CONTROL_TABLE": "c", "STATE_MACHINE_ARN": settings().state_machine_arn, "SCAN_REGIONS": "us-east-1"}
    # APPROVER_SUBS has no default: a deployment names its approvers (the template's ApproverSubs, a required one).
    env |= {"APPROVER_SUBS": "auth0|approver-a"}
    loaded = AgentSettings.from_env(env)
    assert loaded.approval == ApprovalPolicy(approver_subs=("auth0|approver-a",))
    assert (loaded.dry_run, loaded.max_changes_per_mission, loaded.max_share_per_resource_type) == (False, 20, 0.5)
    assert loaded.suppressions == ()
    # A tag alone exempts nothing unless the deployment says tags are trusted.
    assert (loaded.trust_exemption_tags, loaded.policy().trust_exemption_tags) == (False, False)
    # No model unless the deployment names one: plans are deterministic.
    assert loaded.analyst is None


def test_the_analyst_settings() -> None:
    loaded = AgentSettings.from_env(
        environment(
            ANALYST_MODEL_ID="us.amazon.nova-lite-v1:0",
            ANALYST_GUARDRAIL_ID="gr0abc123",
            ANALYST_GUARDRAIL_VERSION="2",
            ANALYST_TOKEN_BUDGET="50000",
            ANALYST_TIMEOUT_SECONDS="10",
        )
    )
    assert loaded.analyst is not None
    assert loaded.analyst.model_id == "us.amazon.nova-lite-v1:0"
    assert loaded.analyst.guardrail == ("gr0abc123", "2")
    assert (loaded.analyst.token_budget, loaded.analyst.timeout_seconds) == (50_000, 10)
    defaults = AgentSettings.from_env(environment(ANALYST_MODEL_ID="amazon.nova-lite-v1:0", ANALYST_GUARDRAIL_ID=""))
    assert defaults.analyst is not None
    assert (defaults.analyst.guardrail, defaults.analyst.token_budget, defaults.analyst.timeout_seconds) == (
        None,
        200_000,
        30,
    )


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"MISSIONS_TABLE": ""}, "MISSIONS_TABLE"),
        ({"SCAN_REGIONS": f"us-east-1,{SECRETISH}"}, "SCAN_REGIONS"),
        ({"DRY_RUN": SECRETISH}, "DRY_RUN"),
        ({"TRUST_EXEMPTION_TAGS": "yes"}, "TRUST_EXEMPTION_TAGS"),
        ({"MAX_CHANGES_PER_MISSION": SECRETISH}, "MAX_CHANGES_PER_MISSION"),
        ({"MAX_SHARE_PER_RESOURCE_TYPE": "1.5"}, "MAX_SHARE_PER_RESOURCE_TYPE"),
        ({"SUPPRESSIONS": json.dumps([{"check_id": "x", "resource_arn": "*", "reason": ""}])}, "SUPPRESSIONS"),
        ({"SUPPRESSIONS": SECRETISH}, "SUPPRESSIONS"),
        ({"STATE_MACHINE_ARN": SECRETISH}, "STATE_MACHINE_ARN"),
        ({"APPROVER_SUBS": ""}, "APPROVER_SUBS"),
        ({"APPROVAL_TWO_PERSON_RISK": SECRETISH}, "APPROVAL_TWO_PERSON_RISK"),
        ({"APPROVER_ROUTING": SECRETISH}, "APPROVER_ROUTING"),
        ({"ANALYST_MODEL_ID": "m", "ANALYST_GUARDRAIL_ID": SECRETISH}, "ANALYST_GUARDRAIL_ID"),
        ({"ANALYST_MODEL_ID": "m", "ANALYST_GUARDRAIL_VERSION": SECRETISH}, "ANALYST_GUARDRAIL_VERSION"),
        ({"ANALYST_MODEL_ID": "m", "ANALYST_TOKEN_BUDGET": "0"}, "ANALYST_TOKEN_BUDGET"),
        ({"ANALYST_MODEL_ID": "m", "ANALYST_TIMEOUT_SECONDS": "600"}, "ANALYST_TIMEOUT_SECONDS"),
    ],
)
def test_an_invalid_setting_is_named_and_its_value_not_echoed(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidSettings) as raised:
        AgentSettings.from_env(environment(**overrides))
    assert named in str(raised.value)
    assert SECRETISH not in str(raised.value)
    assert type(raised.value).__name__ == "Agent.InvalidSettings"


def test_scheduled_and_custom_events_parse_into_their_models() -> None:
    assert isinstance(parse_scan_event(scheduled_event()), ScheduledScanEvent)
    custom = parse_scan_event(scan_event(regions=["eu-west-1"], checks=["s3-bucket-public"], dry_run=True))
    assert isinstance(custom, CustomScanEvent)
    assert (custom.detail.regions, custom.detail.checks, custom.detail.dry_run) == (
        ["eu-west-1"],
        ["s3-bucket-public"],
        True,
    )
    assert parse_scan_event(scan_event()).detail.regions is None


def test_event_errors_name_fields_not_values() -> None:
    event: dict[str, Any] = scan_event(regions=[SECRETISH])
    with pytest.raises(MalformedEvent) as raised:
        parse_scan_event(event)
    assert "detail.regions" in str(raised.value)
    assert SECRETISH not in str(raised.value)
    with pytest.raises(MalformedResume) as resumed:
        parse_resume_event(
            {"mission_id": "m-00000000000000000000", "results": [{"change_id": 1, "decision": SECRETISH}]}
        )
    assert SECRETISH not in str(resumed.value)
