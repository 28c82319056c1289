"""The validator's Lambda handler (app.py, loaded by path): what it answers, what it raises, what a cold start loads."""

from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any

import pytest

from aegis.settings import clear_caches
from aegis_validator.errors import PlanRefused
from tests.support.cold_start import cold_start
from tests.support.lambda_app import load_app
from tests.support.validator_plans import ACCOUNT, request, valid_changes

SERVICE = "aegis-validator"
ENVIRONMENT = {
    "AUDIT_TABLE": "Audit",
    "MISSIONS_TABLE": "Missions",
    "CONTROL_TABLE": "Control",
    "ACCOUNT_ID": ACCOUNT,
    "SCAN_REGIONS": "eu-west-1,eu-central-1",
    "MAX_CHANGES_PER_MISSION": "25",
    "APPROVER_SUBS": "auth0|approver-a,auth0|approver-b",
    "TRAIL_BUCKET": "aegis-trail-logs",
    "CONFIG_BUCKET": "aegis-config-logs",
    "FLOW_LOGS_LOG_GROUP": "/aegis/flow-logs",
    "FLOW_LOGS_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/flow-logs-delivery",
    "POWERTOOLS_SERVICE_NAME": SERVICE,
    "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


class LambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name = "aegis-validator"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:aegis-validator"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def app(audit_table: Any, missions_table: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    return load_app("validator")


def test_the_handler_answers_a_valid_plan_with_its_verdict_and_writes_no_event_to_the_log(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = valid_changes()
    verdict = app.handler(request(changes), LambdaContext())
    assert verdict["verdict"] == "accepted"
    assert verdict["changes"] == len(changes)
    logged = capsys.readouterr().out
    assert changes[0].resource_arn not in logged  # the plan is untrusted input: never logged
    assert "PlansAccepted" in logged  # the metric


def test_the_handler_raises_a_refusal_by_the_name_the_state_machine_catches(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(PlanRefused) as refused:
        app.handler(request(valid_changes() * 2), LambdaContext())
    assert type(refused.value).__name__ == "Validation.PlanRefused"
    assert "PlansRefused" in capsys.readouterr().out


def test_a_cold_start_loads_no_credential_code_and_builds_one_dynamodb_resource() -> None:
    built = cold_start("validator", ENVIRONMENT, then="module.validator()")
    assert "aegis_validator.service" in built["modules"], "the probe built the validator"
    forbidden = {
        "aegis_auth",
        "aegis_agent",
        "aegis_approval",
        "aegis_executor",
        "aegis_killswitch",
        "jose",
        "httpx",
        "cryptography",
        "langgraph",
        "langchain_core",
    }
    assert [m for m in built["modules"] if m.split(".")[0] in forbidden] == []
    assert built["sessions"] == 1  # boto3's default session
    assert built["resources"] == ["dynamodb"]
