"""The validator's Lambda handler (app.py, loaded by path): what it answers, what it raises, what a cold start loads."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aegis.settings import clear_caches
from aegis_validator.errors import PlanRefused
from tests.unit.validator.plans import ACCOUNT, request, valid_changes

APP = Path(__file__).parents[3] / "functions" / "validator" / "app.py"
SERVICE = "aegis-validator"
ENVIRONMENT = {
    "AUDIT_TABLE": "Audit",
    "CONTROL_TABLE": "Control",
    "ACCOUNT_ID": ACCOUNT,
    "SCAN_REGIONS": "eu-west-1,eu-central-1",
    "MAX_CHANGES_PER_MISSION": "10",
    "TRAIL_BUCKET": "aegis-trail-logs",
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
def app(audit_table: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    name = "aegis_validator_app_under_test"
    sys.modules.pop(name, None)
    spec = importlib.util.spec_from_file_location(name, APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


PROBE = """
import importlib.util, json, sys
import boto3, boto3.session

sessions, resources = [], []
open_session = boto3.session.Session.__init__
make_resource = boto3.session.Session.resource

def counting_session(self, *args, **kwargs):
    sessions.append(self)
    open_session(self, *args, **kwargs)

def counting_resource(self, service_name, *args, **kwargs):
    resources.append(service_name)
    return make_resource(self, service_name, *args, **kwargs)

boto3.session.Session.__init__ = counting_session
boto3.session.Session.resource = counting_resource
spec = importlib.util.spec_from_file_location("validator_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.validator()
print(json.dumps({"sessions": len(sessions), "resources": resources, "modules": sorted(sys.modules)}))
"""


def test_a_cold_start_loads_no_credential_code_and_builds_one_dynamodb_resource() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUTH0_"))},
        **ENVIRONMENT,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(APP)], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    built = json.loads(completed.stdout.strip().splitlines()[-1])
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
