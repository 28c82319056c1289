"""The local stack built from template.yaml: every resource exists in moto as the template describes it, Lambda
invocations reach in-process handlers with their template environment, and EventBridge delivers to them."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from aegis_local.auth0 import (
    DEFAULT_APPROVAL_CLIENT_ID,
    DEFAULT_APPROVER_SUB,
    DEFAULT_EXECUTOR_CLIENT_ID,
    DEFAULT_M2M_CLIENT_ID,
    DEFAULT_OPS_API_AUDIENCE,
    DEFAULT_PROVIDER_AUDIENCE,
    DEFAULT_UNDO_CONNECTION,
    DEFAULT_UNDO_PROVIDER_AUDIENCE,
)
from aegis_local.aws.resources import NO_LOCAL_EFFECT
from aegis_local.aws.stack import LocalStack, default_template_path
from aegis_local.aws.template import Resolver, load_template

TEMPLATE = load_template(default_template_path())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
ISO_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def logical_ids(resource_type: str) -> list[str]:
    return [name for name, body in RESOURCES.items() if body["Type"] == resource_type]


def active(logical_id: str, stack: LocalStack) -> bool:
    return logical_id in stack.resources.resources


def policy_names(policies: list[Any], stack: LocalStack) -> Iterator[str]:
    """The inline policies a role has with the stack's parameters (a policy may be kept by a condition)."""
    resolver = Resolver(TEMPLATE, stack.parameters)
    for entry in policies:
        if "Fn::If" in entry:
            condition, kept, _ = entry["Fn::If"]
            if resolver.condition(condition):
                yield kept["PolicyName"]
        else:
            yield entry["PolicyName"]


def capture(stack: LocalStack, function: str) -> tuple[list[tuple[Any, Any]], Any]:
    """Route `function` to a recorder; returns (calls, context manager)."""
    calls: list[tuple[Any, Any]] = []

    def record(event: Any, context: Any) -> dict[str, str]:
        calls.append((event, context))
        return {"ok": "yes"}

    return calls, stack.lambdas.override(function, record)


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ---------------------------------------------------------------------------------------------------------------
# Resources: what template.yaml declares is what moto holds.


def test_tables_have_the_template_keys_and_ttl(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    for logical_id in logical_ids("AWS::DynamoDB::Table"):
        properties = RESOURCES[logical_id]["Properties"]
        table = dynamodb.describe_table(TableName=stack.physical_id(logical_id))["Table"]
        assert table["KeySchema"] == properties["KeySchema"], logical_id
        assert table["BillingModeSummary"]["BillingMode"] == properties["BillingMode"], logical_id
        ttl = dynamodb.describe_time_to_live(TableName=stack.physical_id(logical_id))["TimeToLiveDescription"]
        expected = properties.get("TimeToLiveSpecification")
        if expected:
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": expected["AttributeName"]}, logical_id
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", logical_id
    assert set(stack.table_names()) == set(logical_ids("AWS::DynamoDB::Table"))


def test_keys_have_rotation_their_policies_and_aliases(stack: LocalStack) -> None:
    kms = stack.client("kms")
    for key_id in logical_ids("AWS::KMS::Key"):
        key = kms.describe_key(KeyId=stack.physical_id(key_id))["KeyMetadata"]
        assert key["Enabled"], key_id
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"], key_id
        policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
        declared = RESOURCES[key_id]["Properties"]["KeyPolicy"]["Statement"]
        assert [statement.get("Sid") for statement in policy["Statement"]] == [s.get("Sid") for s in declared]
        for stored, written in zip(policy["Statement"], declared, strict=True):
            assert stored["Action"] == written["Action"], key_id
            # Principals are resolved: the roles' ARNs on this stack.
            principal = written["Principal"].get("AWS")
            if isinstance(principal, dict) and "Fn::GetAtt" in principal:
                assert stored["Principal"]["AWS"] == stack.resources.attribute(principal["Fn::GetAtt"][0], "Arn")
    aliases = {alias["AliasName"]: alias.get("TargetKeyId") for alias in kms.list_aliases()["Aliases"]}
    for alias_id in logical_ids("AWS::KMS::Alias"):
        target = RESOURCES[alias_id]["Properties"]["TargetKeyId"]["Ref"]
        assert aliases[stack.physical_id(alias_id)] == stack.physical_id(target), alias_id


def test_tables_and_log_groups_are_encrypted_with_their_keys(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    for logical_id in logical_ids("AWS::DynamoDB::Table"):
        key = RESOURCES[logical_id]["Properties"]["SSESpecification"]["KMSMasterKeyId"]["Ref"]
        sse = dynamodb.describe_table(TableName=stack.physical_id(logical_id))["Table"]["SSEDescription"]
        assert sse["SSEType"] == "KMS", logical_id
        # moto echoes the id the template passes (!Ref: the key id); DynamoDB answers the key's ARN.
        assert sse["KMSMasterKeyArn"].rsplit("/", 1)[-1] == stack.physical_id(key), logical_id
    logs = stack.client("logs")
    groups = {group["logGroupName"]: group for group in logs.describe_log_groups()["logGroups"]}
    for logical_id in logical_ids("AWS::Logs::LogGroup"):
        key = RESOURCES[logical_id]["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
        assert groups[stack.physical_id(logical_id)]["kmsKeyId"] == stack.resources.attribute(key, "Arn")


def test_reserved_concurrency_is_recorded_as_the_template_resolves_it(stack: LocalStack) -> None:
    lambda_client = stack.client("lambda")
    reserved = {
        logical_id: lambda_client.get_function_concurrency(FunctionName=stack.physical_id(logical_id)).get(
            "ReservedConcurrentExecutions"
        )
        for logical_id in logical_ids("AWS::Serverless::Function")
    }
    assert stack.parameters["ReserveConcurrency"] == "true"
    assert {name: count for name, count in reserved.items() if count is not None} == {
        "ExecutorFunction": int(stack.parameters["MapMaxConcurrency"]),
        "KillSwitchFunction": 5,
    }


def test_roles_exist_with_their_inline_policies(stack: LocalStack) -> None:
    iam = stack.client("iam")
    for logical_id in logical_ids("AWS::IAM::Role"):
        role = iam.get_role(RoleName=stack.physical_id(logical_id))["Role"]
        assert role["Arn"] == stack.resources.attribute(logical_id, "Arn")
        expected = set(policy_names(RESOURCES[logical_id]["Properties"].get("Policies", []), stack))
        assert set(iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]) == expected, logical_id
    trust = iam.get_role(RoleName=stack.physical_id("RemediationRole"))["Role"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == stack.outputs["RemediationOidcProviderArn"]


def test_the_oidc_provider_trusts_the_token_vault_audience(stack: LocalStack) -> None:
    for logical_id in logical_ids("AWS::IAM::OIDCProvider"):
        if not active(logical_id, stack):
            continue
        provider = stack.client("iam").get_open_id_connect_provider(
            OpenIDConnectProviderArn=stack.physical_id(logical_id)
        )
        assert provider["ClientIDList"] == [
            stack.parameters["RemediationOidcAudience"],
            stack.parameters["UndoOidcAudience"],
        ]


def test_the_local_tenant_uses_two_applications_and_audiences_of_its_own(stack: LocalStack) -> None:
    """One application per trust domain, and the remediation roles trust the emulated provider's own clients and the
    approver, never a generic audience such as sts.amazonaws.com."""
    parameters = stack.parameters
    assert (parameters["ApprovalAuth0ClientId"], parameters["ExecutorAuth0ClientId"]) == (
        DEFAULT_APPROVAL_CLIENT_ID,
        DEFAULT_EXECUTOR_CLIENT_ID,
    )
    assert parameters["RemediationOidcAudience"] == DEFAULT_PROVIDER_AUDIENCE != "sts.amazonaws.com"
    assert parameters["UndoOidcAudience"] == DEFAULT_UNDO_PROVIDER_AUDIENCE
    assert parameters["UndoTokenVaultConnection"] == DEFAULT_UNDO_CONNECTION
    assert parameters["RemediationOidcSubjects"] == DEFAULT_APPROVER_SUB
    provider_host = parameters["RemediationOidcProviderUrl"].removeprefix("https://")
    audiences = {"RemediationRole": DEFAULT_PROVIDER_AUDIENCE, "UndoRole": DEFAULT_UNDO_PROVIDER_AUDIENCE}
    for role, audience in audiences.items():
        document = stack.client("iam").get_role(RoleName=stack.physical_id(role))["Role"]["AssumeRolePolicyDocument"]
        trust = document if isinstance(document, dict) else json.loads(urllib.parse.unquote(document))
        condition = trust["Statement"][0]["Condition"]["StringEquals"]
        assert condition == {f"{provider_host}:aud": audience, f"{provider_host}:sub": [DEFAULT_APPROVER_SUB]}, role


def test_functions_exist_with_their_template_configuration(stack: LocalStack) -> None:
    lambda_client = stack.client("lambda")
    for logical_id in logical_ids("AWS::Serverless::Function"):
        properties = RESOURCES[logical_id]["Properties"]
        configuration = lambda_client.get_function_configuration(FunctionName=stack.physical_id(logical_id))
        assert configuration["Handler"] == properties["Handler"]
        assert configuration["Timeout"] == properties["Timeout"]
        assert configuration["MemorySize"] == properties["MemorySize"]
        assert configuration["Role"] == stack.resources.attribute(properties["Role"]["Fn::GetAtt"][0], "Arn")
        variables = configuration["Environment"]["Variables"]
        # Globals merged in, every intrinsic resolved to a plain string.
        expected_names = set(properties["Environment"]["Variables"]) | set(
            TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
        )
        assert set(variables) == expected_names, logical_id
        assert all(isinstance(value, str) and "Ref" not in value for value in variables.values()), logical_id
        assert stack.function(logical_id).environment == variables


def test_function_environment_points_at_stack_resources(stack: LocalStack) -> None:
    approval = stack.function("ApprovalFunction").environment
    assert approval["HANDOFF_TABLE"] == stack.physical_id("HandoffTable")
    assert approval["HANDOFF_KEY_ID"] == stack.resources.attribute("HandoffKey", "Arn")
    assert approval["CONTROL_TABLE"] == stack.physical_id("ControlTable")
    assert approval["AUTH0_ISSUER"] == stack.endpoints.issuer
    assert approval["APPROVAL_FUNCTION_NAME"] == stack.physical_id("ApprovalFunction")
    killswitch = stack.function("KillSwitchFunction").environment
    assert killswitch["STATE_MACHINE_ARN"] == stack.state_machine_arn()
    assert killswitch["SCHEDULE_RULE_NAME"] == stack.physical_id("ScheduledScanRule")
    assert stack.function("AgentScanFunction").environment["STATE_MACHINE_ARN"] == stack.state_machine_arn()


@pytest.mark.parametrize(
    ("function", "application"), [("ApprovalFunction", "Approval"), ("ExecutorFunction", "Executor")]
)
def test_each_client_secret_parameter_names_a_secret_holding_its_applications_secret(
    stack: LocalStack, function: str, application: str
) -> None:
    secret_arn = stack.parameters[f"{application}Auth0ClientSecretArn"]
    stored = stack.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    assert stored == stack.emulator.client_secret(stack.parameters[f"{application}Auth0ClientId"])
    assert stack.function(function).environment["AUTH0_CLIENT_SECRET_ARN"] == secret_arn
    assert stack.function(function).environment["AUTH0_CLIENT_ID"] == stack.parameters[f"{application}Auth0ClientId"]


def test_the_kill_switch_gets_the_emulators_m2m_client_and_its_own_secret(stack: LocalStack) -> None:
    client_id = stack.parameters["KillSwitchAuth0ClientId"]
    assert client_id == DEFAULT_M2M_CLIENT_ID
    assert client_id not in (stack.parameters["ApprovalAuth0ClientId"], stack.parameters["ExecutorAuth0ClientId"])
    secret_arn = stack.parameters["KillSwitchAuth0ClientSecretArn"]
    assert secret_arn not in (
        stack.parameters["ApprovalAuth0ClientSecretArn"],
        stack.parameters["ExecutorAuth0ClientSecretArn"],
    )
    stored = stack.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    assert stored == stack.emulator.client_secret(client_id)
    killswitch = stack.function("KillSwitchFunction").environment
    assert (killswitch["AUTH0_CLIENT_ID"], killswitch["AUTH0_CLIENT_SECRET_ARN"]) == (client_id, secret_arn)
    assert killswitch["OPS_API_AUDIENCE"] == stack.parameters["OpsApiAudience"] == DEFAULT_OPS_API_AUDIENCE


def test_state_machine_definition_has_its_substitutions_resolved(stack: LocalStack) -> None:
    machine = stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn())
    definition = machine["definition"]
    assert "${" not in definition
    json.loads(definition)
    for function in ("ApprovalFunction", "ExecutorFunction", "AgentResumeFunction"):
        assert stack.resources.attribute(function, "Arn") in definition
    assert machine["roleArn"] == stack.resources.attribute("StateMachineRole", "Arn")
    assert stack.outputs["MissionStateMachineArn"] == stack.state_machine_arn()


# The function each rule invokes: the scan rules start a scan; the end of a mission purges its unconsumed handoffs.
RULE_TARGETS = {"MissionEndedRule": "KillSwitchFunction"}


def test_rules_exist_with_their_schedule_pattern_and_targets(stack: LocalStack) -> None:
    events = stack.client("events")
    for logical_id in logical_ids("AWS::Events::Rule"):
        properties = RESOURCES[logical_id]["Properties"]
        rule = events.describe_rule(Name=stack.physical_id(logical_id))
        assert rule["State"] == properties["State"]
        if "ScheduleExpression" in properties:
            assert rule["ScheduleExpression"] == stack.parameters["ScanSchedule"]
        else:
            assert json.loads(rule["EventPattern"]) == _resolved(stack, properties["EventPattern"])
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        function = RULE_TARGETS.get(logical_id, "AgentScanFunction")
        assert [target["Arn"] for target in targets] == [stack.resources.attribute(function, "Arn")]


def _resolved(stack: LocalStack, value: Any) -> Any:
    """`value` with its intrinsics evaluated against the local stack's physical ids."""
    created = stack.resources.resources
    resolver = Resolver(
        TEMPLATE,
        stack.parameters,
        refs={logical_id: resource.ref for logical_id, resource in created.items()},
        attributes={
            (logical_id, name): attribute
            for logical_id, resource in created.items()
            for name, attribute in resource.attributes.items()
        },
    )
    return resolver.resolve(value)


def test_log_groups_layers_and_permissions_exist(stack: LocalStack) -> None:
    logs = stack.client("logs")
    for logical_id in logical_ids("AWS::Logs::LogGroup"):
        name = stack.physical_id(logical_id)
        [group] = [
            g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name
        ]
        assert group["retentionInDays"] == int(stack.parameters["LogRetentionDays"])
    lambda_client = stack.client("lambda")
    for logical_id in logical_ids("AWS::Serverless::LayerVersion"):
        assert stack.physical_id(logical_id).startswith("arn:aws:lambda:")
    policy = json.loads(lambda_client.get_policy(FunctionName=stack.physical_id("AgentScanFunction"))["Policy"])
    sources = {statement["Condition"]["ArnLike"]["AWS:SourceArn"] for statement in policy["Statement"]}
    assert sources == {
        stack.resources.attribute(rule, "Arn")
        for rule in logical_ids("AWS::Events::Rule")
        if RULE_TARGETS.get(rule, "AgentScanFunction") == "AgentScanFunction"
    }


def test_every_active_template_resource_was_created(stack: LocalStack) -> None:
    conditional = {name for name, body in RESOURCES.items() if "Condition" in body}
    created = set(stack.resources.resources)
    assert set(RESOURCES) - conditional <= created
    # SAM's implicit resources: the function URL.
    assert "KillSwitchFunctionUrl" in created
    # Only what changes nothing a local run can observe (alarms, the dashboard) is recorded instead of created.
    assert stack.resources.skipped == {
        name: f"{body['Type']}: {NO_LOCAL_EFFECT[body['Type']]}"
        for name, body in RESOURCES.items()
        if body["Type"] in NO_LOCAL_EFFECT
    }


def test_the_real_handlers_of_every_function_load_in_the_stack(stack: LocalStack) -> None:
    # Each function's app.py imports under its own template environment, as its first invocation would.
    assert stack.preload_handlers() == {}
    assert {spec.logical_id for spec in stack.lambdas.specs} == set(logical_ids("AWS::Serverless::Function"))


# ---------------------------------------------------------------------------------------------------------------
# Endpoints and the process environment.


def test_endpoints_answer(stack: LocalStack) -> None:
    endpoints = stack.endpoints
    assert endpoints.moto_url.startswith("http://127.0.0.1:")
    discovery = httpx.get(f"{endpoints.issuer}.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == endpoints.issuer
    assert endpoints.guardian_url is not None
    pending = httpx.get(f"{endpoints.guardian_url}users/{stack.parameters['ApproverSubs'].split(',')[0]}/requests")
    assert pending.status_code == 200


def test_plain_boto3_clients_in_the_process_reach_moto(stack: LocalStack) -> None:
    # No endpoint_url, no credentials: AWS_ENDPOINT_URL and the fake credentials are set while the stack runs.
    tables = boto3.client("dynamodb").list_tables()["TableNames"]
    assert set(stack.table_names().values()) <= set(tables)


# ---------------------------------------------------------------------------------------------------------------
# Lambda: invocations through moto's API reach the handler, with the function's environment.


def test_invoke_through_the_lambda_api_runs_the_handler_with_its_environment(stack: LocalStack) -> None:
    seen: dict[str, Any] = {}

    def agent(event: Any, context: Any) -> dict[str, Any]:
        import os

        seen.update(
            event=event,
            function_name=context.function_name,
            arn=context.invoked_function_arn,
            remaining=context.get_remaining_time_in_millis(),
            checkpoints=os.environ.get("CHECKPOINTS_TABLE"),
            handoff=os.environ.get("HANDOFF_TABLE"),
            secret=os.environ.get("AUTH0_CLIENT_SECRET_ARN"),
        )
        return {"mission_id": "m-1"}

    with stack.lambdas.override("AgentScanFunction", agent):
        answer = stack.client("lambda").invoke(
            FunctionName=stack.physical_id("AgentScanFunction"), Payload=json.dumps({"source": "test"})
        )

    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"mission_id": "m-1"}
    assert seen["event"] == {"source": "test"}
    assert seen["function_name"] == stack.physical_id("AgentScanFunction")
    assert seen["arn"] == stack.resources.attribute("AgentScanFunction", "Arn")
    assert 899_000 < seen["remaining"] <= 900_000
    assert seen["checkpoints"] == stack.physical_id("CheckpointsTable")
    # The agent's template entry declares neither: it cannot see them, as on AWS.
    assert seen["handoff"] is None
    assert seen["secret"] is None


def test_a_handler_error_comes_back_as_lambda_reports_it(stack: LocalStack) -> None:
    class Halted(Exception):
        pass

    Halted.__name__ = "Executor.Halted"

    def executor(event: Any, context: Any) -> None:
        raise Halted("kill switch engaged")

    with stack.lambdas.override("ExecutorFunction", executor):
        answer = stack.client("lambda").invoke(FunctionName=stack.physical_id("ExecutorFunction"), Payload=b"{}")

    assert answer["FunctionError"] == "Unhandled"
    payload = json.loads(answer["Payload"].read())
    assert payload["errorType"] == "Executor.Halted"
    assert payload["errorMessage"] == "kill switch engaged"


def test_event_invocations_return_202_while_the_handler_runs(stack: LocalStack) -> None:
    release = threading.Event()
    finished = threading.Event()

    def approval(event: Any, context: Any) -> None:
        release.wait(10)
        finished.set()

    with stack.lambdas.override("ApprovalFunction", approval):
        answer = stack.client("lambda").invoke(
            FunctionName=stack.physical_id("ApprovalFunction"), InvocationType="Event", Payload=b'{"n": 1}'
        )
        assert answer["StatusCode"] == 202
        assert not finished.is_set()
        release.set()
        assert finished.wait(10)
        assert stack.lambdas.wait_idle(10)


def test_a_handlers_own_boto3_clients_reach_the_stack(stack: LocalStack) -> None:
    def killswitch(event: Any, context: Any) -> str:
        import os

        table = boto3.resource("dynamodb").Table(os.environ["CONTROL_TABLE"])
        table.put_item(Item={"name": "probe", "by": context.function_name})
        return "written"

    with stack.lambdas.override("KillSwitchFunction", killswitch):
        stack.client("lambda").invoke(FunctionName=stack.physical_id("KillSwitchFunction"), Payload=b"{}")

    item = stack.client("dynamodb").get_item(TableName=stack.physical_id("ControlTable"), Key={"name": {"S": "probe"}})[
        "Item"
    ]
    assert item["by"] == {"S": stack.physical_id("KillSwitchFunction")}


def test_s3_control_calls_reach_the_stack_without_a_local_workaround(stack: LocalStack) -> None:
    # botocore puts the account id into S3 Control's host name; the stack makes that work against moto, for
    # clients the handlers build themselves too.
    def executor(event: Any, context: Any) -> dict[str, Any]:
        s3control = boto3.Session().client("s3control")
        configuration = {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        s3control.put_public_access_block(AccountId=event["account"], PublicAccessBlockConfiguration=configuration)
        return s3control.get_public_access_block(AccountId=event["account"])["PublicAccessBlockConfiguration"]

    with stack.lambdas.override("ExecutorFunction", executor):
        result = stack.lambdas.invoke("ExecutorFunction", json.dumps({"account": stack.endpoints.account_id}))

    assert result.function_error is None, result.json()
    assert result.json()["BlockPublicPolicy"] is True
    stack.client("s3control").delete_public_access_block(AccountId=stack.endpoints.account_id)


def test_unknown_function_is_not_found(stack: LocalStack) -> None:
    with pytest.raises(stack.client("lambda").exceptions.ResourceNotFoundException):
        stack.client("lambda").invoke(FunctionName="not-in-the-template", Payload=b"{}")


# ---------------------------------------------------------------------------------------------------------------
# Function URLs: served on loopback, with Lambda's event and response formats.


def test_a_function_url_call_reaches_the_handler_as_a_function_url_event(stack: LocalStack) -> None:
    url = stack.function_urls()["KillSwitchFunction"]
    assert stack.outputs["KillSwitchUrl"] == url
    calls, _ = capture(stack, "KillSwitchFunction")

    def answer(event: Any, context: Any) -> dict[str, Any]:
        calls.append((event, context))
        return {
            "statusCode": 202,
            "headers": {"content-type": "application/json", "x-halt": "engaged"},
            "body": json.dumps({"halted": True}),
            "cookies": ["a=1", "b=2"],
        }

    with stack.lambdas.override("KillSwitchFunction", answer):
        response = httpx.post(
            f"{url}kill?dry=1&dry=2",
            json={"reason": "drill"},
            headers={"Authorization": "Bearer t", "Cookie": "session=s1; theme=dark"},
            timeout=10,
        )

    assert response.status_code == 202
    assert response.json() == {"halted": True}
    assert response.headers["x-halt"] == "engaged"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    [(event, _)] = calls
    assert event["version"] == "2.0"
    assert (event["rawPath"], event["rawQueryString"]) == ("/kill", "dry=1&dry=2")
    assert event["queryStringParameters"] == {"dry": "1,2"}
    assert event["headers"]["authorization"] == "Bearer t"
    assert event["cookies"] == ["session=s1", "theme=dark"]
    assert json.loads(event["body"]) == {"reason": "drill"}
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_function_url_results_and_errors_map_as_lambda_maps_them(stack: LocalStack) -> None:
    url = stack.function_urls()["KillSwitchFunction"]

    def broken(event: Any, context: Any) -> None:
        raise RuntimeError("secret detail that must not reach the caller")

    with stack.lambdas.override("KillSwitchFunction", lambda event, context: {"plain": "result"}):
        plain = httpx.get(url, timeout=10)
    with stack.lambdas.override("KillSwitchFunction", broken):
        failed = httpx.get(url, timeout=10)

    assert (plain.status_code, plain.headers["content-type"], plain.json()) == (
        200,
        "application/json",
        {"plain": "result"},
    )
    assert failed.status_code == 502
    assert "secret detail" not in failed.text


def test_the_real_kill_switch_url_refuses_an_anonymous_call(stack: LocalStack) -> None:
    response = httpx.post(f"{stack.function_urls()['KillSwitchFunction']}kill", json={"reason": "x"}, timeout=30)
    assert response.status_code == 401


# ---------------------------------------------------------------------------------------------------------------
# EventBridge: a scan request and the schedule reach the agent as EventBridge delivers them.


def test_fire_scan_delivers_the_eventbridge_envelope_to_the_agent(stack: LocalStack) -> None:
    calls, routed = capture(stack, "AgentScanFunction")
    with routed:
        event_id = stack.fire_scan({"regions": ["us-east-1"], "dry_run": True})
        assert wait_for(lambda: len(calls) == 1)
        assert stack.lambdas.wait_idle(10)
        # Exactly once: the schedule-only rule must not receive put events.
        assert len(calls) == 1

    event, context = calls[0]
    assert event["id"] == event_id
    assert event["source"] == "aegis.scan"
    assert event["detail-type"] == RESOURCES["ScanRequestRule"]["Properties"]["EventPattern"]["detail-type"][0]
    assert event["detail"] == {"regions": ["us-east-1"], "dry_run": True}
    assert event["account"] == stack.endpoints.account_id
    assert event["region"] == stack.endpoints.region
    assert ISO_SECOND.match(event["time"])
    assert event["resources"] == []
    assert event["version"] == "0"
    assert context.function_name == stack.physical_id("AgentScanFunction")
    [record] = stack.lambdas.records("AgentScanFunction")[-1:]
    assert record.invocation_type == "Event"


def test_events_that_do_not_match_the_pattern_are_not_delivered(stack: LocalStack) -> None:
    calls, routed = capture(stack, "AgentScanFunction")
    with routed:
        stack.client("events").put_events(
            Entries=[{"Source": "aegis.scan", "DetailType": "Something Else", "Detail": "{}"}]
        )
        stack.client("events").put_events(
            Entries=[{"Source": "not.aegis", "DetailType": "Aegis Scan Requested", "Detail": "{}"}]
        )
        stack.lambdas.wait_idle(10)
        time.sleep(0.2)
    assert calls == []


def test_a_disabled_rule_delivers_nothing_until_enabled_again(stack: LocalStack) -> None:
    events = stack.client("events")
    rule_name = stack.physical_id("ScanRequestRule")
    calls, routed = capture(stack, "AgentScanFunction")
    with routed:
        events.disable_rule(Name=rule_name)
        try:
            stack.fire_scan({"regions": ["us-east-1"]})
            stack.lambdas.wait_idle(10)
            time.sleep(0.2)
            assert calls == []
        finally:
            events.enable_rule(Name=rule_name)
        stack.fire_scan({"regions": ["us-east-1"]})
        assert wait_for(lambda: len(calls) == 1)


def test_fire_schedule_delivers_a_scheduled_event_unless_disabled(stack: LocalStack) -> None:
    events = stack.client("events")
    rule_name = stack.physical_id("ScheduledScanRule")
    calls, routed = capture(stack, "AgentScanFunction")
    with routed:
        event_id = stack.fire_schedule()
        assert wait_for(lambda: len(calls) == 1)
        events.disable_rule(Name=rule_name)
        try:
            assert stack.fire_schedule() is None
        finally:
            events.enable_rule(Name=rule_name)
        stack.lambdas.wait_idle(10)

    event, _ = calls[0]
    assert event["id"] == event_id
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    assert event["resources"] == [stack.resources.attribute("ScheduledScanRule", "Arn")]
    assert len(calls) == 1


def test_the_template_file_is_the_one_in_the_checkout() -> None:
    assert default_template_path() == Path(__file__).resolve().parents[4] / "template.yaml"
