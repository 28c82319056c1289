"""The organization-scan state machine (statemachine/organization.asl.json): static proof of its shape, and runs of
the real definition in moto's Step Functions interpreter, its ListAccounts and Summarize tasks answered by the real
org-scan service and each account's scan by a stand-in for the agent that records the account's mission as the
agent does.

moto's Distributed Map ignores ToleratedFailure* (a failed child becomes null and the Map succeeds); the local
stack's StepFunctionsFixes (aegis_local.aws.moto_fixes) fail it past the threshold as AWS does, so these runs
install them.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

from aegis.missions_keys import mission_id_for_event
from aegis_local.aws.moto_fixes import StepFunctionsFixes
from aegis_local.aws.template import substitute_definition
from tests.support.asl import graph_problems as asl_graph_problems
from tests.support.moto_account import EXECUTE_STATE_MACHINES, MotoSetup
from tests.support.stack import ROOT, Stack, build_stack
from tests.unit.orgscan.conftest import BUCKET, MANAGEMENT, Organization

DEFINITION_PATH = ROOT / "statemachine" / "organization.asl.json"
RETRYABLE = frozenset(
    {
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    }
)
ACCOUNT_SCAN_KEYS = {"org_scan_id", "account_id", "regions", "checks", "dry_run"}
ORG_SCAN = "org-0123456789abcdef0123"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(DEFINITION_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stack() -> Stack:
    return build_stack()


def all_states(machine: dict[str, Any], scope: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in machine["States"].items():
        yield f"{scope}/{name}", state
        if "ItemProcessor" in state:
            yield from all_states(state["ItemProcessor"], f"{scope}/{name}")


# ---------------------------------------------------------------------------------------------------------------------
# Static checks (each returns its violations, so that each is also run against a deliberately broken definition)
# ---------------------------------------------------------------------------------------------------------------------


def graph_problems(definition: dict[str, Any]) -> list[str]:
    """The template's graph rules (tests.support.asl), and JSONPath as the definition's query language."""
    found = asl_graph_problems(definition)
    if definition.get("QueryLanguage") != "JSONPath":
        found.append("the definition is not JSONPath")
    return found


def retry_problems(definition: dict[str, Any]) -> list[str]:
    """Retry only Lambda's transient errors: every task here is idempotent, but a named refusal must never be
    retried (it would be refused again, or worse, succeed against a changed halt flag)."""
    found = []
    for name, state in all_states(definition):
        if state["Type"] != "Task":
            continue
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        if retried != RETRYABLE:
            found.append(f"{name} retries {sorted(retried)}")
    return found


def flow_problems(definition: dict[str, Any]) -> list[str]:
    """List, then the Map over the listed items, then the summary; a listing failure ends in OrgScan.ListFailed; a
    Map failure is summarised and then fails by name."""
    found = []
    states = definition["States"]
    listing = states.get("ListAccounts", {})
    if definition["StartAt"] != "ListAccounts":
        found.append("the scan does not start by listing its accounts")
    if listing.get("Parameters") != {
        "FunctionName": "${OrgScanFunctionArn}",
        "Payload": {"action": "list", "org_scan_id.$": "$$.Execution.Name", "request.$": "$$.Execution.Input"},
    }:
        found.append("ListAccounts does not hand the function the execution's name and input")
    catchers = listing.get("Catch", [])
    failed = states.get(catchers[-1]["Next"], {}) if catchers else {}
    if [c["ErrorEquals"] for c in catchers] != [["States.ALL"]] or (failed.get("Type"), failed.get("Error")) != (
        "Fail",
        "OrgScan.ListFailed",
    ):
        found.append("a listing failure does not end the scan as OrgScan.ListFailed")
    scan = states.get("ScanEachAccount", {})
    reader = scan.get("ItemReader", {})
    if reader.get("Resource") != "arn:${Partition}:states:::s3:getObject" or reader.get("ReaderConfig") != {
        "InputType": "JSON"
    }:
        found.append("the Map does not read the listed JSON items from S3")
    if reader.get("Parameters") != {"Bucket.$": "$.listing.bucket", "Key.$": "$.listing.key"}:
        found.append("the Map does not read the object the listing wrote")
    if scan.get("ItemProcessor", {}).get("ProcessorConfig") != {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}:
        found.append("the Map is not a Distributed Map of Standard children")
    if (
        scan.get("MaxConcurrencyPath") != "$.settings.max_concurrency"
        or scan.get("ToleratedFailurePercentagePath") != "$.settings.tolerated_failure_percentage"
    ):
        found.append("the Map's concurrency and tolerance are not the deployment's")
    if scan.get("ResultWriter") != {
        "Resource": "arn:${Partition}:states:::s3:putObject",
        "Parameters": {"Bucket": "${OrgScanBucket}", "Prefix": "org-scan-results"},
    }:
        found.append("the Map's results are not written to the org-scan bucket")
    selector = scan.get("ItemSelector", {})
    if {key.removesuffix(".$") for key in selector} != ACCOUNT_SCAN_KEYS or selector.get(
        "org_scan_id.$"
    ) != "$$.Execution.Name":
        found.append("a child does not get exactly the account-scan payload of this organization scan")
    (child,) = scan.get("ItemProcessor", {}).get("States", {"": {}}).values()
    if child.get("Parameters") != {"FunctionName": "${AgentScanFunctionArn}", "Payload.$": "$"}:
        found.append("a child does not invoke the agent's scan with its item")
    map_catchers = scan.get("Catch", [])
    if (
        not map_catchers
        or map_catchers[-1]["ErrorEquals"] != ["States.ALL"]
        or map_catchers[-1].get("ResultPath") != "$.failure"
    ):
        found.append("a Map failure is not caught with its error kept")
    else:
        after = states.get(map_catchers[-1]["Next"], {})
        if after.get("Parameters", {}).get("Payload", {}).get("action") != "summarize":
            found.append("a failed Map is not summarised")
        choice = states.get(after.get("Next", ""), {})
        ends = {
            c["StringEquals"]: (states.get(c["Next"], {}).get("Type"), states.get(c["Next"], {}).get("Error"))
            for c in choice.get("Choices", [])
        }
        default = states.get(choice.get("Default", ""), {})
        if ends.get("States.ExceedToleratedFailureThreshold") != ("Fail", "OrgScan.TooManyAccountsFailed") or (
            default.get("Type"),
            default.get("Error"),
        ) != ("Fail", "OrgScan.MapFailed"):
            found.append("a summarised Map failure does not end the scan failed by name")
    if scan.get("Next") != "Summarize" or states.get("Summarize", {}).get("Next") != "Scanned":
        found.append("a scanned organization is not summarised before it succeeds")
    return found


@pytest.mark.parametrize("check", [graph_problems, retry_problems, flow_problems])
def test_the_definition_holds(definition: dict[str, Any], check: Callable[[dict[str, Any]], list[str]]) -> None:
    assert check(definition) == []


def test_substitutions_are_exactly_those_the_definition_uses(stack: Stack) -> None:
    text = DEFINITION_PATH.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
    substitutions = stack.resource("OrgScanStateMachine")["Properties"]["DefinitionSubstitutions"]
    assert used == set(substitutions)
    resolved = stack.properties("OrgScanStateMachine")["DefinitionSubstitutions"]
    assert resolved["OrgScanFunctionArn"] == stack.arn("OrgScanFunction")
    assert resolved["AgentScanFunctionArn"] == stack.arn("AgentScanFunction")
    assert resolved["OrgScanBucket"] == stack.ref("OrgScanBucket")
    # Substituted, the definition is JSON again and its numeric settings parse as numbers.
    substituted = json.loads(substitute_definition(text, {key: str(value) for key, value in resolved.items()}))
    settings = substituted["States"]["ReadOrgScanSettings"]["Parameters"]
    assert settings["max_concurrency.$"] == "States.StringToJson('10')"
    assert settings["tolerated_failure_percentage.$"] == "States.StringToJson('10')"


_BREAKS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], list[str]]]] = {
    "a transition to nowhere": (lambda d: d["States"]["Summarize"].update(Next="Nowhere"), graph_problems),
    "an unreachable state": (lambda d: d["States"].update(Orphan={"Type": "Succeed"}), graph_problems),
    "a named refusal is retried": (
        lambda d: d["States"]["ListAccounts"]["Retry"][0]["ErrorEquals"].append("OrgScan.Halted"),
        retry_problems,
    ),
    "the listing trusts the input's id": (
        lambda d: d["States"]["ListAccounts"]["Parameters"]["Payload"].update({"org_scan_id.$": "$.org_scan_id"}),
        flow_problems,
    ),
    "a listing failure ends unnamed": (
        lambda d: d["States"]["ListFailed"].update(Error="States.TaskFailed"),
        flow_problems,
    ),
    "the Map runs inline": (
        lambda d: d["States"]["ScanEachAccount"]["ItemProcessor"]["ProcessorConfig"].update(Mode="INLINE"),
        flow_problems,
    ),
    "the Map tolerates a fixed share": (
        lambda d: d["States"]["ScanEachAccount"].pop("ToleratedFailurePercentagePath"),
        flow_problems,
    ),
    "a child gets the whole item": (
        lambda d: d["States"]["ScanEachAccount"]["ItemSelector"].update({"secret.$": "$$.Map.Item.Value"}),
        flow_problems,
    ),
    "a failed Map skips its summary": (
        lambda d: d["States"]["ScanEachAccount"]["Catch"][0].update(Next="WhyTheMapFailed"),
        flow_problems,
    ),
    "too many failures end as a success": (
        lambda d: d["States"]["TooManyAccountsFailed"].update(Type="Succeed"),
        flow_problems,
    ),
}


@pytest.mark.parametrize("break_it", list(_BREAKS))
def test_the_static_checks_catch(definition: dict[str, Any], break_it: str) -> None:
    mutate, check = _BREAKS[break_it]
    broken = copy.deepcopy(definition)
    mutate(broken)
    assert check(broken) != [], f"the check did not notice: {break_it}"


# ---------------------------------------------------------------------------------------------------------------------
# The real definition, run by moto
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def moto_setup() -> MotoSetup:
    return MotoSetup("us-east-1", EXECUTE_STATE_MACHINES)


@pytest.fixture
def fixes() -> Iterator[None]:
    StepFunctionsFixes.install()
    yield
    StepFunctionsFixes.uninstall()


class Functions:
    """The org-scan function (the real service) and the agent's scan (a stand-in that records the account's mission
    as the agent does, or raises for the accounts in `failing`)."""

    def __init__(self, service: Any, missions: Any) -> None:
        self.service = service
        self.missions = missions
        self.lock = threading.Lock()
        self.scans: list[dict[str, Any]] = []
        self.failing: set[str] = set()

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function_name.rsplit(":", 1)[-1]
        payload = json.loads(body) if body else {}
        if name == "orgscan":
            try:
                return json.dumps(self.service.handle(payload)).encode()
            except Exception as exc:
                return self._raise(type(exc).__name__, response_headers)
        with self.lock:
            self.scans.append(payload)
        if payload["account_id"] in self.failing:
            return self._raise("Agent.ScanFailed", response_headers)
        mission_id = mission_id_for_event(f"{payload['org_scan_id']}/{payload['account_id']}")
        self.missions.put_item(
            Item={
                "mission_id": mission_id,
                "listing": "mission",
                "status": "completed",
                "created_at": "2026-06-01T12:00:00+00:00",
                "account_id": payload["account_id"],
                "org_scan": payload["org_scan_id"],
            }
        )
        return json.dumps({"mission_id": mission_id, "status": "completed", "created": True}).encode()

    @staticmethod
    def _raise(error_type: str, response_headers: dict[str, str]) -> bytes:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": error_type, "errorMessage": "raised by the function"}).encode()


@pytest.fixture
def functions(make_service: Any, tables: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Functions:
    fake = Functions(make_service(), tables["missions"])

    def invoke(
        self: LambdaSimpleBackend, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        return fake.invoke(function_name, body, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return fake


@pytest.fixture
def run_scan(aws: boto3.Session, functions: Functions, fixes: None) -> Callable[..., dict[str, Any]]:
    role = aws.client("iam").create_role(
        RoleName="org-scan-state-machine", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    lambdas = aws.client("lambda")
    arns = {
        name: lambdas.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )["FunctionArn"]
        for name in ("orgscan", "scan")
    }
    sfn = aws.client("stepfunctions")

    def run(tolerated: int = 10, max_concurrency: int = 2, request: dict[str, Any] | None = None) -> dict[str, Any]:
        definition = substitute_definition(
            DEFINITION_PATH.read_text(encoding="utf-8"),
            {
                "OrgScanFunctionArn": arns["orgscan"],
                "AgentScanFunctionArn": arns["scan"],
                "OrgScanBucket": BUCKET,
                "OrgScanMaxConcurrency": str(max_concurrency),
                "OrgScanToleratedFailurePercentage": str(tolerated),
                "Partition": "aws",
            },
        )
        machine = sfn.create_state_machine(name=f"org-scan-{time.monotonic_ns()}", definition=definition, roleArn=role)
        execution = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"],
            name=ORG_SCAN,
            input=json.dumps(request or {"org_scan_id": ORG_SCAN, "regions": None, "checks": None, "dry_run": None}),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        pytest.fail("the organization scan did not finish")

    return run


def org_item(tables: dict[str, Any]) -> dict[str, Any]:
    return tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})["Item"]


def test_every_account_is_scanned_once_and_the_scan_summarised(
    run_scan: Callable[..., dict[str, Any]], functions: Functions, organization: Organization, tables: dict[str, Any]
) -> None:
    finished = run_scan(request={"org_scan_id": ORG_SCAN, "regions": ["eu-west-1"], "checks": None, "dry_run": True})

    assert finished["status"] == "SUCCEEDED", finished
    assert sorted(p["account_id"] for p in functions.scans) == organization.active
    for payload in functions.scans:
        # Exactly the agent's AccountScanRequest: nothing else of the item, the execution's organization scan.
        assert payload == {
            "org_scan_id": ORG_SCAN,
            "account_id": payload["account_id"],
            "regions": ["eu-west-1"],
            "checks": None,
            "dry_run": True,
        }
    counts = {"completed": 4, "not_started": 0}
    assert json.loads(finished["output"]) == {"org_scan_id": ORG_SCAN, "status": "scanned", "counts": counts}
    assert (org_item(tables)["status"], org_item(tables)["counts"]) == ("scanned", counts)


def test_three_accounts_of_an_ou_are_scanned_and_the_results_written_to_the_bucket(
    aws: boto3.Session,
    make_service: Any,
    functions: Functions,
    organization: Organization,
    run_scan: Callable[..., dict[str, Any]],
) -> None:
    # The root as the OU, the security account excluded: the three member accounts.
    functions.service = make_service(
        organizational_units=(organization.root,), exclude_accounts=frozenset({MANAGEMENT})
    )
    finished = run_scan()
    assert finished["status"] == "SUCCEEDED", finished
    assert sorted(p["account_id"] for p in functions.scans) == sorted(
        [organization.workload, organization.prod_account, organization.loose]
    )
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert f"org-scans/{ORG_SCAN}/items.json" in keys
    assert any(key.startswith("org-scan-results/") and key.endswith("/manifest.json") for key in keys)


def test_an_organization_without_an_account_to_scan_is_summarised_without_a_map(
    make_service: Any,
    functions: Functions,
    organization: Organization,
    run_scan: Callable[..., dict[str, Any]],
    tables: dict[str, Any],
) -> None:
    functions.service = make_service(exclude_accounts=frozenset(organization.active))
    finished = run_scan()
    assert finished["status"] == "SUCCEEDED", finished
    assert functions.scans == []
    assert json.loads(finished["output"])["counts"] == {"not_started": 0}


def test_a_listing_failure_ends_the_scan_as_list_failed_with_the_functions_error(
    make_service: Any, functions: Functions, run_scan: Callable[..., dict[str, Any]]
) -> None:
    functions.service = make_service(organization_id="o-abcdefghij")
    finished = run_scan()
    assert finished["status"] == "FAILED"
    assert finished["error"] == "OrgScan.ListFailed"
    assert "OrgScan.WrongOrganization" in finished["cause"]
    assert functions.scans == []


def test_failures_within_the_tolerance_still_succeed(
    functions: Functions, organization: Organization, run_scan: Callable[..., dict[str, Any]], tables: dict[str, Any]
) -> None:
    functions.failing = {organization.loose}
    finished = run_scan(tolerated=50)
    assert finished["status"] == "SUCCEEDED", finished
    assert org_item(tables)["counts"] == {"completed": 3, "not_started": 1}


def test_failures_past_the_tolerance_are_summarised_then_fail_the_scan_by_name(
    functions: Functions, organization: Organization, run_scan: Callable[..., dict[str, Any]], tables: dict[str, Any]
) -> None:
    functions.failing = {organization.loose, organization.workload}
    finished = run_scan(tolerated=25)
    assert finished["status"] == "FAILED", finished
    assert finished["error"] == "OrgScan.TooManyAccountsFailed"
    item = org_item(tables)
    assert (item["status"], item["error"]) == ("failed", "States.ExceedToleratedFailureThreshold")
    assert item["counts"] == {"completed": 2, "not_started": 2}
