"""The mission state machine: static proof of its error handling, and a run of the real definition in moto.

The static checks return violations so that each one is also run against a deliberately broken definition.
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

from aegis_agent.events import parse_resume_event
from aegis_local.aws.template import TemplateError, substitute_definition
from tests.support.asl import graph_problems
from tests.support.changes import one_of_each_kind
from tests.support.mission_machine import (
    APPROVER_A,
    APPROVER_B,
    approved_answer,
    batch_request,
    mission_definition,
    one_request_each,
    single_request,
    task_functions,
)
from tests.support.moto_account import EXECUTE_STATE_MACHINES, MotoSetup
from tests.support.stack import ROOT, STATE_MACHINE_PATH, Stack, build_stack

THROTTLING = frozenset({"Lambda.TooManyRequestsException", "Executor.Throttled"})
APPROVAL_ERRORS = frozenset(
    {
        "Approval.Denied",
        "Approval.Expired",
        "Approval.Halted",
        "Approval.Failed",
        # Step Functions' own timeouts, renamed inside the approvers' Map (see the definition's ApprovalTimedOut).
        "Approval.TimedOut",
        "Approval.HeartbeatTimedOut",
    }
)
EXECUTOR_ERRORS = frozenset(
    {
        "Executor.ApprovalInvalid",
        "Executor.ApprovalExpired",
        "Executor.Halted",
        "Executor.NoConnectedAccount",
        "Executor.TokenExchangeFailed",
        "Executor.Throttled",
        "Executor.UndoDisabled",
        "Executor.WrongAccount",
    }
)
VALIDATION_ERRORS = frozenset({"Validation.PlanRefused", "Validation.PlanMalformed"})
# Lambda's errors for an invocation that stopped without answering (its process died, ran out of memory or time).
LAMBDA_STOPPED_ERRORS = frozenset({"Runtime.ExitError", "Runtime.OutOfMemory", "Sandbox.Timedout", "Lambda.Unknown"})
KNOWN_ERRORS = (
    APPROVAL_ERRORS
    | EXECUTOR_ERRORS
    | VALIDATION_ERRORS
    | LAMBDA_STOPPED_ERRORS
    | {"States.Timeout", "States.HeartbeatTimeout", "States.ALL"}
)
RESULT_KEYS = {"change_id", "decision", "outcome", "reason"}
DECISIONS = {"approved", "denied", "expired", "halted", "failed"}
# What each named approval error means for every change of the request (docs/CONTRACTS.md).
APPROVAL_DECISION_OF = {
    "Approval.Denied": "denied",
    "Approval.Expired": "expired",
    "Approval.TimedOut": "expired",
    "Approval.Halted": "halted",
    "Approval.Failed": "failed",
    "Approval.HeartbeatTimedOut": "failed",
}
# Step Functions' own errors of the approval task, and the named error each leaves the approvers' Map as.
RENAMED_IN_ITERATION = {"States.Timeout": "Approval.TimedOut", "States.HeartbeatTimeout": "Approval.HeartbeatTimedOut"}
# What each named executor error means for its change: (decision, outcome).
EXECUTOR_RESULT_OF = (
    {"Executor.Halted": ("approved", "halted"), "Executor.ApprovalExpired": ("expired", "skipped")}
    | dict.fromkeys(EXECUTOR_ERRORS - {"Executor.Halted", "Executor.ApprovalExpired"}, ("approved", "failed"))
    | dict.fromkeys(LAMBDA_STOPPED_ERRORS | {"States.Timeout"}, ("approved", "failed"))
)
# The reason of a change whose executor stopped without answering: it may have been applied.
OUTCOME_UNKNOWN = ": the executor stopped without answering; the outcome is unknown until the resource is scanned again"
APPROVER_PAYLOAD = {
    "task_token.$": "$$.Task.Token",
    "execution_arn.$": "$.execution_arn",
    "mission_id.$": "$.mission_id",
    "approver_sub.$": "$.approver_sub",
    "request.$": "$.request",
}


@pytest.fixture(scope="module")
def stack() -> Stack:
    return build_stack()


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(STATE_MACHINE_PATH.read_text(encoding="utf-8"))


def request_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The states of one approval request (the outer Map's iteration)."""
    return definition["States"]["ApproveAndApplyEachRequest"]["ItemProcessor"]["States"]


def approver_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The states of one approver of a request (the approvers' Map iteration)."""
    return request_states(definition)["AskEveryApprover"]["ItemProcessor"]["States"]


def change_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The states of one change of an approved request (the apply Map's iteration)."""
    return request_states(definition)["ApplyEachChange"]["ItemProcessor"]["States"]


def all_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition["States"].items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from all_states(processor)


def _keys(mapping: dict[str, Any]) -> set[str]:
    return {key.removesuffix(".$") for key in mapping}


# ---------------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------------


def retry_problems(definition: dict[str, Any]) -> list[str]:
    """Retry only what cannot have had an effect: throttling, which happens before the function runs."""
    found = []
    for name, state in all_states(definition):
        for retrier in state.get("Retry", []):
            extra = set(retrier["ErrorEquals"]) - THROTTLING
            if extra:
                found.append(f"{name} retries {sorted(extra)}")
    executor_retries = {e for r in change_states(definition)["ApplyChange"].get("Retry", []) for e in r["ErrorEquals"]}
    if "Executor.Throttled" not in executor_retries:
        found.append("ApplyChange does not retry Executor.Throttled")
    return found


def _fail_states(definition: dict[str, Any]) -> set[str]:
    return {name for name, state in all_states(definition) if state["Type"] == "Fail"}


def catch_problems(definition: dict[str, Any]) -> list[str]:
    found = []
    fails = _fail_states(definition)
    for name, state in all_states(definition):
        catchers = state.get("Catch", [])
        for position, catcher in enumerate(catchers):
            errors = catcher["ErrorEquals"]
            unknown = set(errors) - KNOWN_ERRORS
            if unknown:
                found.append(f"{name} catches unnamed errors {sorted(unknown)}")
            if "States.ALL" in errors and (errors != ["States.ALL"] or position != len(catchers) - 1):
                found.append(f"{name}: States.ALL must be alone in the last catcher")
            # Only a catcher that ends the execution (or the iteration) at once may replace the state with the
            # error: nothing after it needs the change (and a malformed input may not even be an object).
            if catcher.get("ResultPath") in (None, "$") and catcher["Next"] not in fails:
                found.append(f"{name}: a catcher would replace the change with the error")
    for where, task, must_name in (
        (request_states(definition), "AskEveryApprover", set(APPROVAL_DECISION_OF)),
        (change_states(definition), "ApplyChange", set(EXECUTOR_RESULT_OF)),
    ):
        catchers = where[task].get("Catch", [])
        named = {error for c in catchers for error in c["ErrorEquals"]} - {"States.ALL"}
        if must_name - named:
            found.append(f"{task} does not catch {sorted(must_name - named)} by name")
        if not catchers or catchers[-1]["ErrorEquals"] != ["States.ALL"]:
            found.append(f"{task}: an unforeseen error would fail the whole mission")
    # Inside the approvers' Map, Step Functions' own errors leave as named errors (see RENAMED_IN_ITERATION).
    approver = approver_states(definition)
    renamed = {
        error: approver.get(c["Next"], {}).get("Error")
        for c in approver["RequestApproval"].get("Catch", [])
        for error in c["ErrorEquals"]
    }
    if renamed != RENAMED_IN_ITERATION or any(
        approver[c["Next"]]["Type"] != "Fail" for c in approver["RequestApproval"]["Catch"]
    ):
        found.append(f"RequestApproval's own timeouts leave the approvers' Map as {renamed}")
    return found


def result_problems(definition: dict[str, Any]) -> list[str]:
    """Every way out of one change's iteration yields {change_id, decision, outcome, reason} with the right decision,
    and every way out of an unapproved request yields one such result per change, with the approver's decision."""
    found = []
    states = change_states(definition)
    for name, state in states.items():
        if not state.get("End"):
            continue
        produced = state.get("Parameters") if state["Type"] == "Pass" else state.get("ResultSelector")
        if produced is None or _keys(produced) != RESULT_KEYS:
            found.append(f"{name} ends the iteration without exactly {sorted(RESULT_KEYS)}")
            continue
        if produced.get("decision") not in DECISIONS:
            found.append(f"{name} yields decision {produced.get('decision')!r}")
        if produced.get("change_id.$") != "$.change.change_id" and name != "ApplyChange":
            found.append(f"{name} does not take change_id from the change")
    for catcher in states["ApplyChange"].get("Catch", []):
        target = states.get(catcher["Next"], {}).get("Parameters", {})
        for error in catcher["ErrorEquals"]:
            expected = EXECUTOR_RESULT_OF.get(error)
            if expected and (target.get("decision"), target.get("outcome")) != expected:
                found.append(f"ApplyChange: {error} leads to {target.get('decision')}/{target.get('outcome')}")
    request = request_states(definition)
    for catcher in request["AskEveryApprover"].get("Catch", []):
        verdict = request.get(catcher["Next"], {})
        if catcher.get("ResultPath") != "$.error" or verdict.get("ResultPath") != "$.verdict":
            found.append(f"AskEveryApprover: {catcher['ErrorEquals']} does not keep the error and set a verdict")
        if verdict.get("Next") != "RecordEveryChange":
            found.append(f"AskEveryApprover: {catcher['ErrorEquals']} does not record every change of the request")
        for error in catcher["ErrorEquals"]:
            if error in APPROVAL_DECISION_OF and verdict.get("Result") != APPROVAL_DECISION_OF[error]:
                found.append(f"AskEveryApprover: {error} leads to {verdict.get('Result')!r}")
    record_all = request.get("RecordEveryChange", {})
    (record,) = record_all.get("ItemProcessor", {}).get("States", {"": {}}).values()
    if (
        record_all.get("ItemsPath") != "$.request.items"
        or record_all.get("ItemSelector")
        != {
            "change_id.$": "$$.Map.Item.Value.change.change_id",
            "decision.$": "$.verdict",
            "reason.$": "$.error.Error",
        }
        or record.get("Parameters")
        != {"change_id.$": "$.change_id", "decision.$": "$.decision", "outcome": "skipped", "reason.$": "$.reason"}
    ):
        found.append("an unapproved request does not skip every change of it with the decision and the error's name")
    return found


def approval_task_problems(definition: dict[str, Any]) -> list[str]:
    found = []
    approvers = request_states(definition)["AskEveryApprover"]
    if approvers.get("Type") != "Map" or approvers.get("ItemsPath") != "$.request.approvers":
        found.append("the request's approvers are not asked one task each")
    elif approvers.get("ItemSelector", {}).get("approver_sub.$") != "$$.Map.Item.Value":
        found.append("an approval task is not told its approver")
    task = approver_states(definition)["RequestApproval"]
    if task.get("Resource") != "arn:${Partition}:states:::lambda:invoke.waitForTaskToken":
        found.append("RequestApproval does not wait for a task token")
    parameters = task.get("Parameters", {})
    if parameters.get("FunctionName") != "${ApprovalFunctionArn}":
        found.append("RequestApproval does not invoke the approval function")
    if parameters.get("InvocationType") != "Event":
        found.append("RequestApproval waits for the approval function itself, not for its token")
    payload = parameters.get("Payload", {})
    if payload != APPROVER_PAYLOAD:
        found.append(f"RequestApproval payload is {payload}")
    for timing in ("HeartbeatSeconds", "TimeoutSeconds"):
        if timing not in task and f"{timing}Path" not in task:
            found.append(f"RequestApproval has no {timing}")
    approved = request_states(definition).get(approvers.get("Next", ""), {})
    if (
        approved.get("Parameters") != {"decision": "approved", "approvals.$": "$.approvals"}
        or approvers.get("ResultPath") != "$.approvals"
    ):
        found.append("an approved request does not carry every approver's answer")
    return found


def jsonpath_problems(definition: dict[str, Any]) -> list[str]:
    """JSONPath only: the local interpreter and the design assume it, and JSONata would change every field."""
    found = []
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        found.append("the definition is not JSONPath")
    for name, state in all_states(definition):
        if state.get("QueryLanguage", "JSONPath") != "JSONPath" or {"Arguments", "Output", "Assign"} & set(state):
            found.append(f"{name} uses JSONata or variables")
    return found


def _reachable(states: dict[str, Any], start: list[str]) -> set[str]:
    """Top-level states reachable from `start` by any transition (Next, Default, Choices, Catch)."""
    seen: set[str] = set()
    frontier = list(start)
    while frontier:
        name = frontier.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        frontier += [t for t in (state.get("Next"), state.get("Default")) if t]
        frontier += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    return seen


def validation_problems(definition: dict[str, Any]) -> list[str]:
    """The plan is validated before anything else, from the execution's own input, and the validator's planned
    requests replace it; a refusal never reaches the Map, tells the agent change by change, and ends the execution
    failed with the refusal."""
    found = []
    states = definition["States"]
    if definition["StartAt"] != "ValidatePlan":
        found.append(f"the mission starts at {definition['StartAt']}, not at the validation")
    task = states.get("ValidatePlan", {})
    if task.get("Resource") != "arn:${Partition}:states:::lambda:invoke" or task.get("Parameters") != {
        "FunctionName": "${ValidatorFunctionArn}",
        "Payload": {"execution_arn.$": "$$.Execution.Id", "plan.$": "$$.Execution.Input"},
    }:
        found.append("ValidatePlan does not hand the validator the execution's own input")
    if task.get("ResultPath") != "$" or task.get("ResultSelector") != {
        "mission_id.$": "$.Payload.mission_id",
        "requests.$": "$.Payload.requests",
    }:
        found.append("the state after validation is not exactly the mission and its planned requests")
    catchers = {error: c for c in task.get("Catch", []) for error in c["ErrorEquals"]}
    if set(catchers) != {"Validation.PlanRefused", "Validation.PlanMalformed", "States.ALL"}:
        found.append(f"ValidatePlan catches {sorted(catchers)}")
        return found
    refused_path = _reachable(states, [c["Next"] for c in task["Catch"]])
    if "ApproveAndApplyEachRequest" in refused_path:
        found.append("a refused plan can still reach the Map")
    for error in ("Validation.PlanMalformed", "States.ALL"):
        end = states.get(catchers[error]["Next"], {})
        if end.get("Type") != "Fail" or end.get("ErrorPath") != "$.Error":
            found.append(f"{error} does not end the execution failed with its own error")
    told = [
        name
        for name in _reachable(states, [catchers["Validation.PlanRefused"]["Next"]])
        if states[name].get("Parameters")
        == {
            "FunctionName": "${AgentResumeFunctionArn}",
            "Payload": {"mission_id.$": "$.mission_id", "results.$": "$.results"},
        }
    ]
    if len(told) != 1:
        found.append("a refused plan is not answered to the agent exactly once")
    else:
        resume = states[told[0]]
        if "ResultPath" not in resume or resume["ResultPath"] is not None:
            found.append(f"{told[0]}: the agent's answer would replace the refusal")
        ends = [states.get(resume.get("Next", ""), {})] + [states.get(c["Next"], {}) for c in resume.get("Catch", [])]
        if not resume.get("Catch") or any(
            end.get("Type") != "Fail" or end.get("ErrorPath") != "$.refusal.Error" for end in ends
        ):
            found.append(f"{told[0]}: a refused mission must end failed with the refusal, whatever the agent answers")
    refusals = states.get(catchers["Validation.PlanRefused"]["Next"], {})
    # The catcher adds the refusal to the state input, the execution's own input: its changes are still there.
    if catchers["Validation.PlanRefused"].get("ResultPath") != "$.refusal" or refusals.get("ItemsPath") != "$.changes":
        found.append("a refusal is not recorded for each change of the plan")
    else:
        (record,) = refusals["ItemProcessor"]["States"].values()
        if refusals["ItemSelector"] != {"change_id.$": "$$.Map.Item.Value.change_id", "error.$": "$.refusal"} or record[
            "Parameters"
        ] != {"change_id.$": "$.change_id", "decision": "failed", "outcome": "skipped", "reason.$": "$.error.Error"}:
            found.append("a refused change is not reported as failed, skipped, with the refusal's name")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Static tests
# ---------------------------------------------------------------------------------------------------------------------


def test_the_plan_is_validated_before_any_approval_and_a_refusal_ends_the_mission(definition: dict[str, Any]) -> None:
    assert validation_problems(definition) == []


def test_retries_only_throttling(definition: dict[str, Any]) -> None:
    assert retry_problems(definition) == []


def test_every_caught_error_is_named_and_leads_to_a_result(definition: dict[str, Any]) -> None:
    assert catch_problems(definition) == []
    assert result_problems(definition) == []


def test_each_approver_of_a_request_gets_a_task_that_waits_for_its_token(definition: dict[str, Any]) -> None:
    assert approval_task_problems(definition) == []


def test_every_state_is_reachable_and_every_transition_lands(definition: dict[str, Any]) -> None:
    assert graph_problems(definition) == []
    assert jsonpath_problems(definition) == []


def test_the_maps_feed_each_request_approver_and_change_with_its_mission_and_execution(
    definition: dict[str, Any],
) -> None:
    requests = definition["States"]["ApproveAndApplyEachRequest"]
    assert requests["ItemsPath"] == "$.requests"
    assert requests["ItemSelector"] == {
        "request.$": "$$.Map.Item.Value",
        "mission_id.$": "$.mission_id",
        "execution_arn.$": "$$.Execution.Id",
        "settings.$": "$.settings",
    }
    assert requests["MaxConcurrencyPath"] == "$.settings.max_concurrency"
    assert requests["ResultPath"] == "$.results"
    assert requests["Next"] == "ResumeAgent"
    assert request_states(definition)["AskEveryApprover"]["ItemSelector"] == {
        "approver_sub.$": "$$.Map.Item.Value",
        "request.$": "$.request",
        "mission_id.$": "$.mission_id",
        "execution_arn.$": "$.execution_arn",
        "settings.$": "$.settings",
    }
    changes = request_states(definition)["ApplyEachChange"]
    assert changes["ItemsPath"] == "$.request.items"
    assert changes["MaxConcurrencyPath"] == "$.settings.max_concurrency"
    assert changes["ItemSelector"] == {
        "change.$": "$$.Map.Item.Value.change",
        "proof.$": "$$.Map.Item.Value.proof",
        "approval.$": "$.approval",
        "mission_id.$": "$.mission_id",
        "execution_arn.$": "$.execution_arn",
    }
    # Each iteration's result is the list of its changes' results: no ResultPath keeps the request around it.
    assert "ResultPath" not in changes
    assert changes.get("End") is True
    assert request_states(definition)["RecordEveryChange"].get("End") is True


def test_the_executor_gets_the_change_its_proof_and_the_opaque_approvals_only(definition: dict[str, Any]) -> None:
    task = change_states(definition)["ApplyChange"]
    assert task["Resource"] == "arn:${Partition}:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == "${ExecutorFunctionArn}"
    assert task["Parameters"]["Payload"] == {
        "execution_arn.$": "$.execution_arn",
        "mission_id.$": "$.mission_id",
        "change.$": "$.change",
        "proof.$": "$.proof",
        "approval.$": "$.approval",
    }
    # The apply Map is reached only through the Pass that follows every approver's success.
    reaching = [
        name
        for name, state in request_states(definition).items()
        if "ApplyEachChange" in {state.get("Next"), *(c["Next"] for c in state.get("Catch", []))}
    ]
    assert reaching == ["Approved"]


def test_the_mission_ends_by_resuming_the_agent_with_all_results(definition: dict[str, Any]) -> None:
    resume = definition["States"]["ResumeAgent"]
    assert resume["End"] is True
    assert resume["Resource"] == "arn:${Partition}:states:::lambda:invoke"
    assert resume["Parameters"] == {
        "FunctionName": "${AgentResumeFunctionArn}",
        "Payload": {"mission_id.$": "$.mission_id", "results.$": "$.results"},
    }


def test_substitutions_are_exactly_those_the_definition_uses(stack: Stack) -> None:
    text = STATE_MACHINE_PATH.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
    substitutions = stack.resource("MissionStateMachine")["Properties"]["DefinitionSubstitutions"]
    assert used == set(substitutions)
    resolved = stack.properties("MissionStateMachine")["DefinitionSubstitutions"]
    assert resolved["ValidatorFunctionArn"] == stack.arn("ValidatorFunction")
    assert resolved["ApprovalFunctionArn"] == stack.arn("ApprovalFunction")
    assert resolved["ExecutorFunctionArn"] == stack.arn("ExecutorFunction")
    assert resolved["AgentResumeFunctionArn"] == stack.arn("AgentResumeFunction")
    json.loads(substitute_definition(text, resolved))  # still valid JSON once substituted


def test_substituting_refuses_a_missing_value() -> None:
    with pytest.raises(TemplateError, match="ExecutorFunctionArn"):
        substitute_definition(
            '{"a": "${ApprovalFunctionArn}", "b": "${ExecutorFunctionArn}"}', {"ApprovalFunctionArn": "x"}
        )


def test_approval_timing_defaults_are_consistent(stack: Stack) -> None:
    """The heartbeat must fire before the task times out, and Auth0's own expiry should come before both."""
    heartbeat = int(stack.parameters["ApprovalHeartbeatSeconds"])
    timeout = int(stack.parameters["ApprovalTimeoutSeconds"])
    assert heartbeat < timeout
    assert int(stack.parameters["CibaRequestedExpirySeconds"]) < timeout


def test_the_state_machine_resource_logs_no_execution_data_and_invokes_only_its_functions(stack: Stack) -> None:
    raw = stack.resource("MissionStateMachine")["Properties"]
    assert (ROOT / raw["DefinitionUri"]).resolve() == STATE_MACHINE_PATH.resolve()
    assert raw["Role"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}
    assert raw["Type"] == "STANDARD"
    logging = stack.properties("MissionStateMachine")["Logging"]
    assert logging["IncludeExecutionData"] is False
    assert logging["Destinations"] == [{"CloudWatchLogsLogGroup": {"LogGroupArn": stack.arn("StateMachineLogGroup")}}]
    invoked = {g.resource for g in stack.grants("StateMachineRole") if g.action == "lambda:InvokeFunction"}
    assert invoked == {"ValidatorFunction", "ApprovalFunction", "ExecutorFunction", "AgentResumeFunction"}
    assert stack.ref("MissionStateMachine") == stack.arn("MissionStateMachine")


def _add_retry(errors: list[str]) -> Callable[[dict[str, Any]], None]:
    def mutate(definition: dict[str, Any]) -> None:
        change_states(definition)["ApplyChange"]["Retry"].append({"ErrorEquals": errors, "MaxAttempts": 2})

    return mutate


def _catch_first(where: Callable[[dict[str, Any]], dict[str, Any]], task: str, errors: list[str]) -> Breaker:
    def mutate(definition: dict[str, Any]) -> None:
        where(definition)[task]["Catch"].insert(0, {"ErrorEquals": errors, "ResultPath": "$.error", "Next": "Denied"})

    return mutate


def _drop_catcher(where: Callable[[dict[str, Any]], dict[str, Any]], task: str, error: str) -> Breaker:
    def mutate(definition: dict[str, Any]) -> None:
        for catcher in where(definition)[task]["Catch"]:
            catcher["ErrorEquals"] = [e for e in catcher["ErrorEquals"] if e != error] or ["Approval.Failed"]

    return mutate


def _rename_timeout_to(error: str) -> Breaker:
    def mutate(definition: dict[str, Any]) -> None:
        approver_states(definition)["ApprovalTimedOut"]["Error"] = error

    return mutate


Breaker = Callable[[dict[str, Any]], None]
_BREAKS: dict[str, tuple[Breaker, Callable[[dict[str, Any]], list[str]]]] = {
    "the executor retries every error": (_add_retry(["States.ALL"]), retry_problems),
    "the executor retries a token exchange failure": (_add_retry(["Executor.TokenExchangeFailed"]), retry_problems),
    "throttling is no longer retried": (lambda d: change_states(d)["ApplyChange"].pop("Retry"), retry_problems),
    "an unnamed error is caught": (_catch_first(request_states, "AskEveryApprover", ["Approval.Oops"]), catch_problems),
    "States.ALL comes first": (_catch_first(change_states, "ApplyChange", ["States.ALL"]), catch_problems),
    "denial is only caught by States.ALL": (
        _drop_catcher(request_states, "AskEveryApprover", "Approval.Denied"),
        catch_problems,
    ),
    "a Step Functions timeout is no longer caught by name": (
        _drop_catcher(request_states, "AskEveryApprover", "Approval.TimedOut"),
        catch_problems,
    ),
    "an expired approval at execution is only caught by States.ALL": (
        _drop_catcher(change_states, "ApplyChange", "Executor.ApprovalExpired"),
        catch_problems,
    ),
    "halted executor is only caught by States.ALL": (
        _drop_catcher(change_states, "ApplyChange", "Executor.Halted"),
        catch_problems,
    ),
    "a timeout leaves the approvers' Map as States.Timeout": (_rename_timeout_to("States.Timeout"), catch_problems),
    "a denial is recorded as approved": (
        lambda d: request_states(d)["Denied"].update(Result="approved"),
        result_problems,
    ),
    "an expired approval at execution is recorded as a failure": (
        lambda d: change_states(d)["RecordApprovalExpired"]["Parameters"].update(decision="approved", outcome="failed"),
        result_problems,
    ),
    "a verdict records no change": (lambda d: request_states(d)["Expired"].update(Next="Approved"), result_problems),
    "an unapproved request's changes lose their reason": (
        lambda d: request_states(d)["RecordEveryChange"]["ItemSelector"].pop("reason.$"),
        result_problems,
    ),
    "a result loses its reason": (
        lambda d: change_states(d)["RecordExecutionFailed"]["Parameters"].pop("reason.$"),
        result_problems,
    ),
    "the approval task has no heartbeat": (
        lambda d: approver_states(d)["RequestApproval"].pop("HeartbeatSecondsPath"),
        approval_task_problems,
    ),
    "the approval payload loses the task token": (
        lambda d: approver_states(d)["RequestApproval"]["Parameters"]["Payload"].pop("task_token.$"),
        approval_task_problems,
    ),
    "the approval payload loses its approver": (
        lambda d: approver_states(d)["RequestApproval"]["Parameters"]["Payload"].pop("approver_sub.$"),
        approval_task_problems,
    ),
    "the approval is invoked without waiting": (
        lambda d: approver_states(d)["RequestApproval"].update(Resource="arn:${Partition}:states:::lambda:invoke"),
        approval_task_problems,
    ),
    "only one approver's answer reaches the executor": (
        lambda d: request_states(d)["Approved"]["Parameters"].update({"approvals.$": "$.approvals[0]"}),
        approval_task_problems,
    ),
    "a transition to nowhere": (
        lambda d: request_states(d)["Approved"].update(Next="ApplyNothing"),
        graph_problems,
    ),
    "JSONata sneaks in": (
        lambda d: change_states(d)["RecordExecutionHalted"].update(QueryLanguage="JSONata"),
        jsonpath_problems,
    ),
    "the mission skips the validation": (lambda d: d.update(StartAt="ReadMissionSettings"), validation_problems),
    "the validator sees the state, not the execution's input": (
        lambda d: d["States"]["ValidatePlan"]["Parameters"]["Payload"].update({"plan.$": "$"}),
        validation_problems,
    ),
    "the plan travels beside its requests": (
        lambda d: d["States"]["ValidatePlan"].update(ResultPath="$.planned"),
        validation_problems,
    ),
    "a refused plan goes on to approval": (
        lambda d: d["States"]["ValidatePlan"]["Catch"][0].update(Next="ReadMissionSettings"),
        validation_problems,
    ),
    "a malformed plan ends the mission as succeeded": (
        lambda d: d["States"]["MissionRefusedUnanswered"].update(Type="Succeed"),
        validation_problems,
    ),
    "the agent is not told of a refusal": (
        lambda d: d["States"]["RecordRefusals"].update(Next="MissionRefused"),
        validation_problems,
    ),
    "a refusal the agent fails to hear ends the mission with the agent's error": (
        lambda d: d["States"]["MissionRefused"].update(ErrorPath="$.resume_error.Error"),
        validation_problems,
    ),
    "a refused change is reported as approved": (
        lambda d: d["States"]["RecordRefusals"]["ItemProcessor"]["States"]["RecordRefused"]["Parameters"].update(
            decision="approved"
        ),
        validation_problems,
    ),
    "a catcher before more work replaces the state": (
        lambda d: d["States"]["ValidatePlan"]["Catch"][0].update(ResultPath="$"),
        catch_problems,
    ),
}


@pytest.mark.parametrize("break_it", list(_BREAKS))
def test_the_static_checks_catch(definition: dict[str, Any], break_it: str) -> None:
    mutate, check = _BREAKS[break_it]
    broken = copy.deepcopy(definition)
    mutate(broken)
    assert check(broken) != [], f"the check did not notice: {break_it}"


# ---------------------------------------------------------------------------------------------------------------------
# The real definition, run by moto's Step Functions interpreter
# ---------------------------------------------------------------------------------------------------------------------

MISSION_ID = "m-0123456789abcdef0123"
Decide = Callable[[dict[str, Any]], None]


class FakeFunctions:
    """Stands in for the four Lambda functions the state machine invokes and records what each received."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # change_id -> queue of executor answers: a dict result, or an error type to raise
        self.executor_answers: dict[str, list[dict[str, Any] | str]] = {}
        # The validator's answer: None accepts the plan, an error type refuses it.
        self.validator_error: str | None = None
        # The requests the validator plans; None: one single request per change, as planned with one approver.
        self.requests: list[dict[str, Any]] | None = None
        # The agent's resume raises this error type, if set.
        self.resume_error: str | None = None

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function_name.rsplit(":", 1)[-1]
        payload = json.loads(body) if body else {}
        with self.lock:
            self.calls.append((name, payload))
            if name == "executor":
                answers = self.executor_answers.get(payload["change"]["change_id"], [])
                answer = answers.pop(0) if answers else {"outcome": "applied", "reason": "applied and verified"}
        if name == "executor":
            if isinstance(answer, str):
                return self._raise(answer, response_headers)
            result = {"change_id": payload["change"]["change_id"], "verified_after": {}} | answer
            return json.dumps(result).encode()
        if name == "validator":
            if self.validator_error:
                return self._raise(self.validator_error, response_headers)
            plan = payload["plan"]
            requests = self.requests if self.requests is not None else one_request_each(plan["changes"])
            # The validator's own answer carries more than the state machine keeps (ResultSelector).
            answer = {"mission_id": plan["mission_id"], "verdict": "accepted", "requests": requests}
            return json.dumps(answer).encode()
        if name == "resume":
            if self.resume_error:
                return self._raise(self.resume_error, response_headers)
            return json.dumps({"mission_id": payload["mission_id"], "status": "reported"}).encode()
        return b"null"  # approval: invoked asynchronously on AWS, answers through the task token

    def received(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [payload for called, payload in self.calls if called == name]

    @staticmethod
    def _raise(error_type: str, response_headers: dict[str, str]) -> bytes:
        """What the Lambda runtime answers for a handler that raised an exception of this __name__."""
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": error_type, "errorMessage": "raised by the fake function"}).encode()


@pytest.fixture
def functions(monkeypatch: pytest.MonkeyPatch) -> FakeFunctions:
    fake = FakeFunctions()

    def invoke(
        self: LambdaSimpleBackend, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        return fake.invoke(function_name, body, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return fake


class Mission:
    def __init__(self, sfn: Any, execution_arn: str, functions: FakeFunctions) -> None:
        self.sfn = sfn
        self.execution_arn = execution_arn
        self.functions = functions

    def approval_requests(self, count: int, timeout: float = 10.0) -> dict[tuple[str, str], dict[str, Any]]:
        """The first `count` approval invocations (one per approver of a request), by (request id, approver), once
        Step Functions waits for each of their tokens.

        moto's interpreter loses an answer that arrives before it starts waiting (with HeartbeatSeconds set it then
        reports a timeout), whereas AWS keeps it; a human's answer always comes later, so the test waits too.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            requests = self.functions.received("approval")
            if len(requests) >= count and self._waiting_for_tokens() >= count:
                time.sleep(0.05)  # from TaskSubmitted to the wait itself
                return {(r["request"]["request_id"], r["approver_sub"]): r for r in requests}
            time.sleep(0.02)
        pytest.fail(f"only {len(self.functions.received('approval'))} of {count} approval requests arrived")

    def _waiting_for_tokens(self) -> int:
        events = self.sfn.get_execution_history(executionArn=self.execution_arn, maxResults=1000)["events"]
        return sum(
            1
            for event in events
            if event["type"] == "TaskSubmitted"
            and event["taskSubmittedEventDetails"]["resource"] == "invoke.waitForTaskToken"
        )

    def approve(self, invocation: dict[str, Any]) -> None:
        """Answer as the approval function does after its approver approved: opaque handoff ids, no token."""
        answer = approved_answer(invocation["approver_sub"], invocation["request"])
        self.sfn.send_task_success(taskToken=invocation["task_token"], output=json.dumps(answer))

    def fail(self, invocation: dict[str, Any], error: str) -> None:
        self.sfn.send_task_failure(taskToken=invocation["task_token"], error=error, cause="decided by the test")

    def finish(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=self.execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.02)
        pytest.fail("the mission did not finish")

    def resumed_with(self) -> list[list[dict[str, Any]]]:
        """The results the agent was resumed with, one list per request, each checked as the agent's resume entry
        parses them (flattened, in plan order)."""
        (resume,) = self.functions.received("resume")
        assert set(resume) == {"mission_id", "results"}
        assert resume["mission_id"] == MISSION_ID
        parsed = parse_resume_event(resume)
        flat = [r for group in resume["results"] for r in group]
        assert [r.model_dump(mode="json", exclude_none=True) for r in parsed.results] == flat
        return resume["results"]


@pytest.fixture
def moto_setup() -> MotoSetup:
    return MotoSetup("eu-west-1", EXECUTE_STATE_MACHINES)


@pytest.fixture
def start_mission(aws: boto3.Session, functions: FakeFunctions) -> Callable[..., Mission]:
    role = aws.client("iam").create_role(
        RoleName="mission-state-machine", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    arns = task_functions(role, aws.region_name)
    sfn = aws.client("stepfunctions")

    def start(
        changes: list[dict[str, Any]],
        requests: list[dict[str, Any]] | None = None,
        heartbeat_seconds: int = 120,
        timeout_seconds: int = 600,
        max_concurrency: int = 4,
    ) -> Mission:
        functions.requests = requests
        definition = mission_definition(
            arns, max_concurrency=max_concurrency, heartbeat_seconds=heartbeat_seconds, timeout_seconds=timeout_seconds
        )
        machine = sfn.create_state_machine(name=f"mission-{time.monotonic_ns()}", definition=definition, roleArn=role)
        execution = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"],
            name=MISSION_ID,
            input=json.dumps({"mission_id": MISSION_ID, "changes": changes}),
        )
        return Mission(sfn, execution["executionArn"], functions)

    return start


@pytest.fixture(scope="module")
def changes() -> list[dict[str, Any]]:
    return [change.model_dump(mode="json") for change in one_of_each_kind()]


def _result(change: dict[str, Any], decision: str, outcome: str, reason: str) -> dict[str, Any]:
    return {"change_id": change["change_id"], "decision": decision, "outcome": outcome, "reason": reason}


def _applied(change: dict[str, Any]) -> dict[str, Any]:
    return _result(change, "approved", "applied", "applied and verified")


def test_a_batch_and_a_two_person_change_are_approved_and_each_change_applied_on_its_own(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    batch = batch_request("r001", changes[:3])
    pair = single_request("r002", changes[3], approvers=(APPROVER_A, APPROVER_B))
    mission = start_mission(changes[:4], [batch, pair])

    invocations = mission.approval_requests(3)
    assert set(invocations) == {("r001", APPROVER_A), ("r002", APPROVER_A), ("r002", APPROVER_B)}
    for (request_id, approver), invocation in invocations.items():
        # Exactly the approval function's event (DESIGN §3): the request as planned, for one of its approvers.
        assert invocation == {
            "task_token": invocation["task_token"],
            "execution_arn": mission.execution_arn,
            "mission_id": MISSION_ID,
            "approver_sub": approver,
            "request": batch if request_id == "r001" else pair,
        }
        mission.approve(invocation)
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"]) == {"mission_id": MISSION_ID, "status": "reported"}
    executed = {p["change"]["change_id"]: p for p in functions.received("executor")}
    assert set(executed) == {c["change_id"] for c in changes[:4]}
    for item in batch["items"]:
        assert executed[item["change"]["change_id"]] == {
            "execution_arn": mission.execution_arn,
            "mission_id": MISSION_ID,
            "change": item["change"],
            "proof": item["proof"],
            "approval": {"decision": "approved", "approvals": [approved_answer(APPROVER_A, batch)]},
        }
    # Both approvers' answers reach the two-person change, in the order of the request's approvers.
    assert executed[changes[3]["change_id"]]["proof"] is None
    assert executed[changes[3]["change_id"]]["approval"] == {
        "decision": "approved",
        "approvals": [approved_answer(APPROVER_A, pair), approved_answer(APPROVER_B, pair)],
    }
    assert mission.resumed_with() == [[_applied(c) for c in changes[:3]], [_applied(changes[3])]]


def test_a_denied_batch_denies_every_change_in_it_and_applies_none(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    denied, approved = batch_request("r001", changes[:3]), batch_request("r002", changes[3:5])
    mission = start_mission(changes[:5], [denied, approved])
    invocations = mission.approval_requests(2)
    mission.fail(invocations["r001", APPROVER_A], "Approval.Denied")
    mission.approve(invocations["r002", APPROVER_A])
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    assert sorted(p["change"]["change_id"] for p in functions.received("executor")) == sorted(
        c["change_id"] for c in changes[3:5]
    )
    assert mission.resumed_with() == [
        [_result(c, "denied", "skipped", "Approval.Denied") for c in changes[:3]],
        [_applied(c) for c in changes[3:5]],
    ]


@pytest.mark.parametrize("approver_first", [True, False])
def test_one_approver_of_a_two_person_request_denying_denies_it_whatever_the_other_does(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]], approver_first: bool
) -> None:
    pair = batch_request("r001", changes[:2], approvers=(APPROVER_A, APPROVER_B))
    mission = start_mission(changes[:2], [pair])
    invocations = mission.approval_requests(2)
    if approver_first:
        mission.approve(invocations["r001", APPROVER_A])
        time.sleep(0.2)  # the approval is taken before the denial comes
    mission.fail(invocations["r001", APPROVER_B], "Approval.Denied")
    # One denial is enough: the mission does not wait for the other approver (when it has not answered yet).
    finished = mission.finish(timeout=10)

    assert finished["status"] == "SUCCEEDED"
    assert functions.received("executor") == []
    assert mission.resumed_with() == [[_result(c, "denied", "skipped", "Approval.Denied") for c in changes[:2]]]


@pytest.mark.parametrize(
    ("error", "decision"),
    [("Approval.Expired", "expired"), ("Approval.Halted", "halted"), ("Approval.Failed", "failed")],
)
def test_every_change_of_a_request_gets_the_decision_of_its_approval(
    start_mission: Callable[..., Mission],
    functions: FakeFunctions,
    changes: list[dict[str, Any]],
    error: str,
    decision: str,
) -> None:
    mission = start_mission(changes[:3], [batch_request("r001", changes[:3])])
    (invocation,) = mission.approval_requests(1).values()
    mission.fail(invocation, error)
    assert mission.finish()["status"] == "SUCCEEDED"

    assert functions.received("executor") == []
    assert mission.resumed_with() == [[_result(c, decision, "skipped", error) for c in changes[:3]]]


def test_a_request_nobody_answers_in_time_expires_every_change_in_it(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    pair = batch_request("r001", changes[:2], approvers=(APPROVER_A, APPROVER_B))
    mission = start_mission(changes[:2], [pair], heartbeat_seconds=60, timeout_seconds=1)
    mission.approval_requests(2)  # never answered
    assert mission.finish()["status"] == "SUCCEEDED"

    assert functions.received("executor") == []
    assert mission.resumed_with() == [[_result(c, "expired", "skipped", "Approval.TimedOut") for c in changes[:2]]]


def test_an_approval_that_expired_before_its_change_ran_skips_that_change_as_expired(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    batch = batch_request("r001", changes[:3])
    late = changes[2]["change_id"]
    functions.executor_answers[late] = ["Executor.ApprovalExpired"]
    mission = start_mission(changes[:3], [batch])
    (invocation,) = mission.approval_requests(1).values()
    mission.approve(invocation)
    assert mission.finish()["status"] == "SUCCEEDED"

    assert [p["change"]["change_id"] for p in functions.received("executor")].count(late) == 1  # never retried
    assert mission.resumed_with() == [
        [
            _applied(changes[0]),
            _applied(changes[1]),
            _result(changes[2], "expired", "skipped", "Executor.ApprovalExpired"),
        ]
    ]


def test_a_mission_collects_every_kind_of_decision_and_resumes_the_agent_once(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    applied, denied, expired, halted_approval, halted_execution = changes[:5]
    functions.executor_answers[halted_execution["change_id"]] = ["Executor.Halted"]
    mission = start_mission(changes[:5], max_concurrency=4)
    requests = one_request_each(changes[:5])
    by_change = {r["items"][0]["change"]["change_id"]: r["request_id"] for r in requests}
    decide: dict[str, Decide] = {
        by_change[applied["change_id"]]: mission.approve,
        by_change[denied["change_id"]]: lambda r: mission.fail(r, "Approval.Denied"),
        by_change[expired["change_id"]]: lambda r: mission.fail(r, "Approval.Expired"),
        by_change[halted_approval["change_id"]]: lambda r: mission.fail(r, "Approval.Halted"),
        by_change[halted_execution["change_id"]]: mission.approve,
    }

    first = mission.approval_requests(4)
    time.sleep(0.3)
    assert len(functions.received("approval")) == 4, "MaxConcurrency lets no fifth request wait at the same time"
    for (request_id, _), invocation in first.items():
        decide[request_id](invocation)
    everything = mission.approval_requests(5)
    (last,) = set(everything) - set(first)
    decide[last[0]](everything[last])
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    executed = functions.received("executor")
    assert sorted(p["change"]["change_id"] for p in executed) == sorted(
        [applied["change_id"], halted_execution["change_id"]]
    )
    assert mission.resumed_with() == [
        [_applied(applied)],
        [_result(denied, "denied", "skipped", "Approval.Denied")],
        [_result(expired, "expired", "skipped", "Approval.Expired")],
        [_result(halted_approval, "halted", "skipped", "Approval.Halted")],
        [_result(halted_execution, "approved", "halted", "Executor.Halted")],
    ]


def test_a_throttled_executor_is_retried_and_other_failures_are_not(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    throttled, exchange_failed, crashed = (c["change_id"] for c in changes[:3])
    functions.executor_answers[throttled] = ["Executor.Throttled"]
    functions.executor_answers[exchange_failed] = ["Executor.TokenExchangeFailed"]
    functions.executor_answers[crashed] = ["Runtime.ExitError"]
    mission = start_mission(changes[:3], [batch_request("r001", changes[:3])])
    for invocation in mission.approval_requests(1).values():
        mission.approve(invocation)
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    attempts = [p["change"]["change_id"] for p in functions.received("executor")]
    assert attempts.count(throttled) == 2
    assert attempts.count(exchange_failed) == 1
    assert attempts.count(crashed) == 1
    assert mission.resumed_with() == [
        [
            _applied(changes[0]),
            _result(changes[1], "approved", "failed", "Executor.TokenExchangeFailed"),
            _result(changes[2], "approved", "failed", "Runtime.ExitError" + OUTCOME_UNKNOWN),
        ]
    ]


def test_a_silent_approval_function_fails_only_its_request(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    mission = start_mission(changes[:2], heartbeat_seconds=1)
    invocations = mission.approval_requests(2)
    mission.approve(invocations["r002", APPROVER_A])  # r001's function never answers, never heartbeats
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    assert [p["change"]["change_id"] for p in functions.received("executor")] == [changes[1]["change_id"]]
    silent, answered = mission.resumed_with()
    (result,) = silent
    # AWS reports States.HeartbeatTimeout (renamed Approval.HeartbeatTimedOut); moto 5.2.5 reports a heartbeat
    # timeout as States.Timeout (its HeartbeatTimeoutError is a TimeoutError), renamed Approval.TimedOut. Either
    # way nothing is applied.
    assert result["reason"] in {"Approval.HeartbeatTimedOut", "Approval.TimedOut"}
    assert result == _result(changes[0], APPROVAL_DECISION_OF[result["reason"]], "skipped", result["reason"])
    assert answered == [_applied(changes[1])]


def test_the_validator_sees_the_execution_input_and_its_requests_replace_the_plan(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    requests = [batch_request("r001", changes[:2])]
    mission = start_mission(changes[:2], requests)
    (invocation,) = mission.approval_requests(1).values()
    (validated,) = functions.received("validator")
    assert validated == {
        "execution_arn": mission.execution_arn,
        "plan": {"mission_id": MISSION_ID, "changes": changes[:2]},
    }
    assert invocation["request"] == requests[0]
    mission.approve(invocation)
    assert mission.finish()["status"] == "SUCCEEDED"
    assert len(functions.received("executor")) == 2
    # The changes travel once: inside their requests, not beside them as the execution's input had them.
    history = mission.sfn.get_execution_history(executionArn=mission.execution_arn, maxResults=1000)["events"]
    settings = next(
        e["stateExitedEventDetails"]
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "ValidatePlan"
    )
    assert json.loads(settings["output"]) == {"mission_id": MISSION_ID, "requests": requests}


def test_a_refused_plan_reaches_no_approver_and_the_agent_hears_each_change_refused(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    functions.validator_error = "Validation.PlanRefused"
    mission = start_mission(changes[:3])
    finished = mission.finish()

    assert (finished["status"], finished.get("error")) == ("FAILED", "Validation.PlanRefused")
    assert functions.received("approval") == []
    assert functions.received("executor") == []
    (resume,) = functions.received("resume")
    assert resume == {
        "mission_id": MISSION_ID,
        "results": [_result(c, "failed", "skipped", "Validation.PlanRefused") for c in changes[:3]],
    }
    parse_resume_event(resume)  # the flat list is what the agent's resume entry accepts too


def test_a_refused_mission_ends_refused_even_when_the_agent_cannot_take_the_answer(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    functions.validator_error = "Validation.PlanRefused"
    functions.resume_error = "Agent.MissionNotFound"
    mission = start_mission(changes[:1])
    finished = mission.finish()

    assert (finished["status"], finished.get("error")) == ("FAILED", "Validation.PlanRefused")
    assert len(functions.received("resume")) == 1
    assert functions.received("approval") == []


@pytest.mark.parametrize("error", ["Validation.PlanMalformed", "Runtime.ExitError"])
def test_a_malformed_plan_or_a_validator_failure_ends_the_mission_and_answers_nobody(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]], error: str
) -> None:
    functions.validator_error = error
    mission = start_mission(changes[:2])
    finished = mission.finish()

    assert (finished["status"], finished.get("error")) == ("FAILED", error)
    assert functions.received("approval") == []
    assert functions.received("executor") == []
    assert functions.received("resume") == []


# In China only: moto 5.2.5 serves GovCloud's IAM endpoint (iam.us-gov.amazonaws.com) as the commercial partition,
# so a GovCloud function's role is never found. tests/unit/test_statemachine_partitions.py resolves the definition
# for every partition.
@pytest.mark.parametrize(("moto_setup", "partition"), [(MotoSetup("cn-north-1", EXECUTE_STATE_MACHINES), "aws-cn")])
def test_a_mission_in_another_partition_invokes_its_functions_through_the_partitions_integrations(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]], partition: str
) -> None:
    mission = start_mission(changes[:1])
    assert mission.execution_arn.startswith(f"arn:{partition}:states:cn-north-1:")
    (invocation,) = mission.approval_requests(1).values()
    mission.approve(invocation)
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    machine = mission.sfn.describe_state_machine(stateMachineArn=finished["stateMachineArn"])
    resources = {state["Resource"] for _, state in all_states(json.loads(machine["definition"])) if "Resource" in state}
    assert resources == {
        f"arn:{partition}:states:::lambda:invoke",
        f"arn:{partition}:states:::lambda:invoke.waitForTaskToken",
    }
    assert [name for name, _ in functions.calls] == ["validator", "approval", "executor", "resume"]
    assert [[(r["decision"], r["outcome"]) for r in group] for group in mission.resumed_with()] == [
        [("approved", "applied")]
    ]
