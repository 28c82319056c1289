"""How the local stack turns any SAM template into moto resources: SAM expansions, intrinsics, conditions,
parameter constraints, refusals, and a clean process afterwards. Uses a small fixture template (stack_fixture/)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
import yaml

from aegis_local.aws.resources import ParameterError, UnsupportedResourceType, resolve_parameters
from aegis_local.aws.stack import LocalStack
from aegis_local.aws.template import TemplateError, load_template

FIXTURE = Path(__file__).parent / "stack_fixture" / "template.yaml"
ISSUER = {"Issuer": "https://tenant.example.com/"}


def fixture_copy(tmp_path: Path, change: dict[str, object]) -> Path:
    """The fixture template with `change` merged into its Resources, next to the same function code."""
    text = FIXTURE.read_text()
    target = tmp_path / "template.yaml"
    (tmp_path / "functions").symlink_to(FIXTURE.parent / "functions")
    addition = yaml.safe_dump({"Resources": change}).split("\n", 1)[1]
    target.write_text(text.replace("Resources:\n", "Resources:\n" + addition, 1))
    return target


def test_sam_expansions_globals_conditions_and_outputs() -> None:
    with LocalStack(template_path=FIXTURE, stack_name="fixture", auth0=False, parameters=ISSUER) as stack:
        created = stack.resources.resources
        # SAM's implicit resources: the execution role, one rule per event, the state machine's role.
        assert {"EchoFunctionRole", "EchoFunctionNightly", "EchoFunctionRequested", "EchoMachineRole"} <= set(created)
        assert "Bucket" not in created  # its condition is false
        # An IAM-authorized function URL: the stack checks no signatures, so it refuses rather than pretends.
        assert httpx.get(stack.function_urls()["EchoFunction"], timeout=10).status_code == 403
        rules = stack.rules()
        assert rules["EchoFunctionNightly"]["ScheduleExpression"] == "rate(1 day)"
        assert json.loads(rules["EchoFunctionRequested"]["EventPattern"]) == {"source": ["fixture.test"]}

        configuration = stack.client("lambda").get_function_configuration(
            FunctionName=stack.physical_id("EchoFunction")
        )
        assert configuration["MemorySize"] == 256  # Fn::If on a false condition
        assert configuration["Timeout"] == 10  # from Globals
        assert configuration["Role"] == stack.resources.attribute("EchoFunctionRole", "Arn")
        assert configuration["Environment"]["Variables"] == {
            "STAGE": "dev",
            "TABLE": stack.physical_id("ItemsTable"),
            "REGIONS": "us-east-1,eu-west-1",
        }
        assert stack.outputs == {
            "FirstRegion": "us-east-1",
            "IssuerHost": "tenant.example.com/",
            "MachineArn": stack.state_machine_arn(),
        }
        secret = stack.client("secretsmanager").get_secret_value(SecretId="fixture/generated")["SecretString"]
        generated = json.loads(secret)
        assert generated["user"] == "aegis"
        assert len(generated["password"]) == 24

        # The state machine's substitution names the function; its execution runs the real fixture handler.
        sfn = stack.client("stepfunctions")
        execution = sfn.start_execution(stateMachineArn=stack.state_machine_arn(), name="echo-1", input="{}")
        deadline = time.monotonic() + 15
        while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {
            "event": {"greeting": "hello"},
            "table": stack.physical_id("ItemsTable"),
            "stage": "dev",
            "regions": "us-east-1,eu-west-1",
            "function_name": stack.physical_id("EchoFunction"),
        }


def test_a_condition_that_holds_creates_the_resource_and_its_output() -> None:
    parameters = {**ISSUER, "WithBucket": "yes", "Stage": "prod"}
    with LocalStack(template_path=FIXTURE, stack_name="fixture", auth0=False, parameters=parameters) as stack:
        buckets = [bucket["Name"] for bucket in stack.client("s3").list_buckets()["Buckets"]]
        assert stack.outputs["BucketName"] in buckets
        assert stack.function("EchoFunction").memory_mb == 1024


def test_the_process_environment_is_restored_after_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://previous.example")
    monkeypatch.delenv("MOTO_PORT", raising=False)
    monkeypatch.delenv("STAGE", raising=False)
    before = dict(os.environ)
    with LocalStack(template_path=FIXTURE, stack_name="fixture", auth0=False, parameters=ISSUER) as stack:
        assert os.environ["AWS_ENDPOINT_URL"] == stack.endpoints.moto_url
        assert os.environ["MOTO_PORT"] == stack.endpoints.moto_url.rsplit(":", 1)[1]
        # Same value in every function that declares it: shared with threads the handlers start.
        assert os.environ["STAGE"] == "dev"
    assert dict(os.environ) == before


def test_a_parameter_that_breaks_its_constraint_stops_the_start_cleanly() -> None:
    before = dict(os.environ)
    stack = LocalStack(template_path=FIXTURE, auth0=False, parameters={**ISSUER, "Stage": "staging"})
    with pytest.raises(ParameterError, match="Stage"):
        stack.start()
    assert dict(os.environ) == before
    # Nothing is left running: another stack starts in this process.
    with LocalStack(template_path=FIXTURE, auth0=False, parameters=ISSUER):
        pass


def test_one_stack_per_process() -> None:
    with (
        LocalStack(template_path=FIXTURE, auth0=False, parameters=ISSUER),
        pytest.raises(RuntimeError, match="already running"),
    ):
        LocalStack(template_path=FIXTURE, auth0=False, parameters=ISSUER).start()


def test_an_unknown_resource_type_is_refused_by_name(tmp_path: Path) -> None:
    template = fixture_copy(tmp_path, {"Stream": {"Type": "AWS::Kinesis::Stream"}})
    with pytest.raises(UnsupportedResourceType, match=r"AWS::Kinesis::Stream"):
        LocalStack(template_path=template, auth0=False, parameters=ISSUER).start()


def test_a_dependency_cycle_is_refused(tmp_path: Path) -> None:
    template = fixture_copy(
        tmp_path,
        {
            "LogA": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "${LogB}-a"}}},
            "LogB": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "${LogA}-b"}}},
        },
    )
    with pytest.raises(TemplateError, match="circular dependency"):
        LocalStack(template_path=template, auth0=False, parameters=ISSUER).start()


def test_only_loopback_http_is_accepted_for_an_https_parameter() -> None:
    template = load_template(FIXTURE)
    local = resolve_parameters(template, {"Issuer": "http://127.0.0.1:8123/"}, loopback_http={"Issuer"})
    assert local["Issuer"] == "http://127.0.0.1:8123/"
    assert local["Regions"] == ["us-east-1", "eu-west-1"]
    with pytest.raises(ParameterError):
        resolve_parameters(template, {"Issuer": "http://tenant.example.com/"}, loopback_http={"Issuer"})
    with pytest.raises(ParameterError):
        resolve_parameters(template, {"Issuer": "http://127.0.0.1:8123/"})
    with pytest.raises(ParameterError, match="Nope"):
        resolve_parameters(template, {**ISSUER, "Nope": "x"})
