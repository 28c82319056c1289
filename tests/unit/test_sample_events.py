"""events/*.json: one realistic event per entry point, accepted by the code that receives it.

These are the events `sam local invoke -e` uses (tests/integration/test_sam.py) and that a reader copies when
calling a function by hand, so each is checked against the receiving side's own parser and against the contract.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.requests import ApprovalRequest, plan_requests
from aegis.catalogue import parse_change
from aegis.checks import CHECKS
from aegis.models import ChangeResult
from tests.support.stack import EVENTS_BY_FUNCTION, EVENTS_DIR, Stack, build_stack

APPROVAL_TASK_KEYS = {"task_token", "execution_arn", "mission_id", "approver_sub", "request"}
EXECUTOR_TASK_KEYS = {"execution_arn", "mission_id", "change", "proof", "approval"}
APPROVAL_OUTPUT_KEYS = {"decision", "approver_sub", "approved_at", "handoffs"}


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stack() -> Stack:
    return build_stack()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for the pattern shapes this project uses (lists of exact values, nested objects)."""
    for key, expected in pattern.items():
        if isinstance(expected, dict):
            if not isinstance(event.get(key), dict) or not matches(expected, event[key]):
                return False
        elif event.get(key) not in expected:
            return False
    return True


def test_every_function_has_events_and_every_event_a_function(stack: Stack) -> None:
    assert set(EVENTS_BY_FUNCTION) == set(stack.resources_of_type("AWS::Serverless::Function"))
    listed = {name for names in EVENTS_BY_FUNCTION.values() for name in names}
    assert {path.name for path in EVENTS_DIR.glob("*.json")} == listed


def test_scan_events_are_what_the_two_rules_deliver(stack: Stack) -> None:
    from aegis_agent.events import CustomScanEvent, ScheduledScanEvent, parse_scan_event

    scheduled = load("scan-scheduled.json")
    assert isinstance(parse_scan_event(scheduled), ScheduledScanEvent)
    assert scheduled["resources"] == [stack.arn("ScheduledScanRule")]
    requested = load("scan-requested.json")
    assert matches(stack.properties("ScanRequestRule")["EventPattern"], requested)
    assert not matches(stack.properties("ScanRequestRule")["EventPattern"], scheduled)
    parsed = parse_scan_event(requested)
    assert isinstance(parsed, CustomScanEvent)
    assert set(requested["detail"]["checks"]) <= set(CHECKS)


def test_the_undo_event_is_what_the_undo_rule_delivers(stack: Stack) -> None:
    from aegis_agent.events import UndoRequestEvent, parse_scan_event

    requested = load("agent-undo-requested.json")
    assert matches(stack.properties("UndoRequestRule")["EventPattern"], requested)
    assert not matches(stack.properties("ScanRequestRule")["EventPattern"], requested)
    parsed = parse_scan_event(requested)
    assert isinstance(parsed, UndoRequestEvent)
    assert parsed.detail.change_id == requested["detail"]["change_id"]


def test_the_approval_task_is_what_the_state_machine_sends(stack: Stack) -> None:
    from aegis_approval.service import ApprovalTaskEvent

    event = load("approval-task.json")
    assert set(event) == APPROVAL_TASK_KEYS
    ApprovalTaskEvent.model_validate(event)
    request = ApprovalRequest.model_validate(event["request"])
    request.check_root()
    assert event["approver_sub"] in request.approvers
    (change,) = request.changes()
    assert change.change_id == event["request"]["items"][0]["change"]["change_id"]
    executions = stack.arn("MissionStateMachine").replace(":stateMachine:", ":execution:")
    assert event["execution_arn"] == f"{executions}:{event['mission_id']}"


def test_the_validator_request_is_what_the_state_machine_sends_and_a_plan_the_validator_accepts() -> None:
    from aegis_validator.rules import parse_envelope, plan_problems
    from aegis_validator.settings import ValidatorSettings

    event = load("validator-plan.json")
    approval = load("approval-task.json")
    envelope = parse_envelope(event)
    # The first task gets the execution's input as the agent started it: {mission_id, changes}.
    assert (envelope.execution_arn, envelope.mission_id) == (approval["execution_arn"], approval["mission_id"])
    assert list(envelope.changes) == [item["change"] for item in approval["request"]["items"]]
    # Accepted by the validator of a deployment that scans the change's region, with its template environment.
    deployment = build_stack(ScanRegions="eu-west-1")
    environment = {
        **deployment.resolver.resolve(deployment.template["Globals"]["Function"]["Environment"]["Variables"]),
        **deployment.properties("ValidatorFunction")["Environment"]["Variables"],
    }
    settings = ValidatorSettings.from_env({name: str(value) for name, value in environment.items()})
    assert plan_problems(envelope, settings, lambda change_id: []) == []
    # And planned into the request the approval task carries (its approvers are the deployment's own).
    (planned,) = plan_requests(
        envelope.mission_id, [parse_change(dict(c)) for c in envelope.changes], settings.approval_policy
    )
    assert planned.model_dump(mode="json") == approval["request"] | {"approvers": list(planned.approvers)}


def test_the_approval_continuation_is_what_the_approval_function_sends_itself() -> None:
    from aegis_approval.continuation import CONTINUATION_PREFIX

    event = load("approval-continuation.json")
    assert set(event) == {"continuation_id"}
    assert event["continuation_id"].startswith(CONTINUATION_PREFIX)


def test_the_executor_task_applies_exactly_the_change_that_was_approved() -> None:
    from aegis_executor.execute import parse_request

    event = load("executor-task.json")
    approval = load("approval-task.json")
    assert set(event) == EXECUTOR_TASK_KEYS
    parse_request(event)
    assert event["approval"]["decision"] == "approved"
    (answer,) = event["approval"]["approvals"]
    assert set(answer) == APPROVAL_OUTPUT_KEYS
    assert answer["approver_sub"] == approval["approver_sub"]
    [item] = approval["request"]["items"]
    assert event["proof"] == item["proof"] is None  # a single request: no proof
    assert parse_change(event["change"]).digest == parse_change(item["change"]).digest
    assert set(answer["handoffs"]) == {event["change"]["change_id"]}
    assert (event["execution_arn"], event["mission_id"]) == (approval["execution_arn"], approval["mission_id"])


def test_the_resume_event_is_what_the_agent_accepts() -> None:
    from aegis_agent.events import parse_resume_event

    event = load("resume.json")
    resumed = parse_resume_event(event)
    assert resumed.mission_id == load("approval-task.json")["mission_id"]
    # One list per approval request, as the Map over requests answers; the agent flattens them.
    assert all(isinstance(group, list) for group in event["results"])
    flat = [result for group in event["results"] for result in group]
    assert [r.change_id for r in resumed.results] == [result["change_id"] for result in flat]
    for result in flat:
        assert set(result) == {"change_id", "decision", "outcome", "reason"}
        ChangeResult.model_validate(result)


@pytest.mark.parametrize("name", ["killswitch-trigger.json", "killswitch-rearm.json"])
def test_direct_kill_switch_events_are_accepted(name: str) -> None:
    from aegis_killswitch.requests import DirectRequest

    request = DirectRequest.model_validate(load(name))
    assert request.action == name.removeprefix("killswitch-").removesuffix(".json")


def test_the_execution_ended_event_is_what_mission_ended_rule_delivers_and_the_kill_switch_accepts(
    stack: Stack,
) -> None:
    from aegis_killswitch.requests import ExecutionEnded, is_status_change

    event = load("killswitch-execution-ended.json")
    assert matches(stack.properties("MissionEndedRule")["EventPattern"], event)
    assert is_status_change(event)
    ended = ExecutionEnded.parse(event, stack.arn("MissionStateMachine"))
    assert ended.detail.executionArn == event["resources"][0]


@pytest.mark.parametrize(
    ("name", "path"), [("killswitch-url-kill.json", "/kill"), ("killswitch-url-rearm.json", "/rearm")]
)
def test_function_url_events_carry_a_bearer_token_and_a_valid_body(name: str, path: str) -> None:
    from aegis_killswitch.requests import KillBody, RearmBody

    event = load(name)
    assert event["version"] == "2.0"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == path
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["headers"]["authorization"].startswith("Bearer ")
    (KillBody if path == "/kill" else RearmBody).model_validate(json.loads(event["body"]))


def test_the_ops_event_is_a_route_of_the_ops_api_as_its_gateway_sends_it(stack: Stack) -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    event = load("ops-list-missions.json")
    parsed = APIGatewayProxyEventV2(event)
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"].get("Auth", {})
        for e in stack.properties("OpsFunction")["Events"].values()
    }
    method, path = parsed.request_context.http.method, parsed.raw_path
    assert event["routeKey"] == f"{method} {path}"
    assert (method, path) in routes
    # What the JWT authorizer adds: the token's claims and the route's scope it found among them.
    assert set(parsed.request_context.authorizer.jwt_scopes) <= set(routes[(method, path)]["AuthorizationScopes"])
    assert parsed.headers["authorization"].startswith("Bearer ")


def test_the_audit_stream_event_is_an_audit_record_insertion_the_chainer_accepts() -> None:
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

    from aegis.audit_chain import stored_checksum_matches
    from aegis_auditchain.service import inserted_records

    [record] = inserted_records(DynamoDBStreamEvent(load("audit-stream.json")))
    assert record.mission_id.startswith("m-")
    assert stored_checksum_matches(record.image)  # the writer's own checksum, as aegis.audit computes it
