"""The organization scan's resources in the local stack built from template.yaml: its bucket (with the week's
expiry), the Missions table's ByOrgScan index, the org-scan function and the state machine of
statemachine/organization.asl.json with its substitutions; and a run of that state machine against the real
org-scan function of a deployment without an organization (its default), which ends the scan as
OrgScan.ListFailed before any account is scanned."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from aegis_local.aws.stack import LocalStack, default_template_path
from aegis_local.aws.template import load_template

TEMPLATE = load_template(default_template_path())


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def test_the_org_scan_bucket_expires_its_objects_after_a_week(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    bucket = stack.physical_id("OrgScanBucket")
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["ID"] == "expire-after-a-week"
    assert rule["Status"] == "Enabled"
    assert rule["Expiration"] == {"Days": 7}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert [statement["Sid"] for statement in policy["Statement"]] == ["TlsOnly"]
    assert stack.outputs["OrgScanBucketName"] == bucket


def test_the_missions_table_has_the_by_org_scan_index(stack: LocalStack) -> None:
    table = stack.client("dynamodb").describe_table(TableName=stack.physical_id("MissionsTable"))["Table"]
    indexes = {index["IndexName"]: index["KeySchema"] for index in table["GlobalSecondaryIndexes"]}
    assert indexes["ByOrgScan"] == [
        {"AttributeName": "org_scan", "KeyType": "HASH"},
        {"AttributeName": "account_id", "KeyType": "RANGE"},
    ]


def test_the_org_scan_state_machine_has_its_substitutions_resolved(stack: LocalStack) -> None:
    arn = stack.state_machine_arn("OrgScanStateMachine")
    machine = stack.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert "${" not in machine["definition"]
    definition = json.loads(machine["definition"])
    lambdas = stack.client("lambda")
    function_arn = lambdas.get_function(FunctionName=stack.physical_id("OrgScanFunction"))["Configuration"][
        "FunctionArn"
    ]
    agent_arn = lambdas.get_function(FunctionName=stack.physical_id("AgentScanFunction"))["Configuration"][
        "FunctionArn"
    ]
    assert definition["States"]["ListAccounts"]["Parameters"]["FunctionName"] == function_arn
    scan = definition["States"]["ScanEachAccount"]
    assert scan["ItemProcessor"]["States"]["ScanAccount"]["Parameters"]["FunctionName"] == agent_arn
    assert scan["ResultWriter"]["Parameters"]["Bucket"] == stack.physical_id("OrgScanBucket")
    assert definition["States"]["ReadOrgScanSettings"]["Parameters"] == {
        "max_concurrency.$": "States.StringToJson('10')",
        "tolerated_failure_percentage.$": "States.StringToJson('10')",
    }
    assert machine["name"].endswith("-org-scan")
    assert machine["roleArn"] == stack.resources.attribute("OrgScanStateMachineRole", "Arn")
    assert stack.outputs["OrgScanStateMachineArn"] == arn
    # The agent and the kill switch are told the same state machine.
    assert stack.function("AgentScanFunction").environment["ORG_SCAN_STATE_MACHINE_ARN"] == arn


def test_the_org_scan_function_points_at_the_stacks_resources(stack: LocalStack) -> None:
    environment = stack.function("OrgScanFunction").environment
    assert environment["ORG_SCAN_BUCKET"] == stack.physical_id("OrgScanBucket")
    assert environment["MISSIONS_TABLE"] == stack.physical_id("MissionsTable")
    assert environment["AUDIT_TABLE"] == stack.physical_id("AuditTable")
    assert environment["CONTROL_TABLE"] == stack.physical_id("ControlTable")
    assert environment["ORGANIZATION_ID"] == ""


def test_without_an_organization_the_scan_ends_list_failed_before_any_account(stack: LocalStack) -> None:
    sfn = stack.client("stepfunctions")
    org_scan_id = "org-00000000000000000001"
    execution = sfn.start_execution(
        stateMachineArn=stack.state_machine_arn("OrgScanStateMachine"),
        name=org_scan_id,
        input=json.dumps({"org_scan_id": org_scan_id, "regions": None, "checks": None, "dry_run": None}),
    )
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["status"] == "FAILED"
    assert described["error"] == "OrgScan.ListFailed"
    assert "OrgScan.NotConfigured" in described["cause"]
    missions = stack.client("dynamodb")
    item = missions.get_item(
        TableName=stack.physical_id("MissionsTable"), Key={"mission_id": {"S": f"org#{org_scan_id}"}}
    )
    assert "Item" not in item
