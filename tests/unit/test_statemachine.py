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

from aegis.catalogue import parse_change
from aegis.models import ChangeResult
from aegis_local.aws.template import TemplateError, substitute_definition
from tests.support.changes import one_of_each_kind
from tests.support.mission_machine import mission_definition, task_functions
from tests.support.moto_account import EXECUTE_STATE_MACHINES, MotoSetup
from tests.support.stack import ROOT, STATE_MACHINE_PATH, Stack, build_stack

THROTTLING = frozenset({"Lambda.TooManyRequestsException", "Executor.Throttled"})
APPROVAL_ERRORS = frozenset({"Approval.Denied", "Approval.Expired", "Approval.Halted", "Approval.Failed"})
EXECUTOR_ERRORS = frozenset(
    {
        "Executor.ApprovalInvalid",
        "Executor.Halted",
        "Executor.NoConnectedAccount",
        "Executor.TokenExchangeFailed",
        "Executor.Throttled",
        "Executor.UndoDisabled",
    }
)
VALIDATION_ERRORS = frozenset({"Validation.PlanRefused", "Validation.PlanMalformed"})
KNOWN_ERRORS = (
    APPROVAL_ERRORS | EXECUTOR_ERRORS | VALIDATION_ERRORS | {"States.Timeout", "States.HeartbeatTimeout", "States.ALL"}
)
RESULT_KEYS = {"change_id", "decision", "outcome", "reason"}
DECISIONS = {"approved", "denied", "expired", "halted", "failed"}
# What each named approval error means for the change (docs/CONTRACTS.md).
APPROVAL_DECISION_OF = {
    "Approval.Denied": "denied",
    "Approval.Expired": "expired",
    "States.Timeout": "expired",
    "Approval.Halted": "halted",
    "Approval.Failed": "failed",
    "States.HeartbeatTimeout": "failed",
}
EXECUTOR_OUTCOME_OF = {"Executor.Halted": "halted"} | dict.fromkeys(EXECUTOR_ERRORS - {"Executor.Halted"}, "failed")


@pytest.fixture(scope="module")
def stack() -> Stack:
    return build_stack()


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(STATE_MACHINE_PATH.read_text(encoding="utf-8"))


def iteration_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return definition["States"]["ApproveAndApplyEachChange"]["ItemProcessor"]["States"]


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
    executor_retries = {
        e for r in iteration_states(definition)["ApplyChange"].get("Retry", []) for e in r["ErrorEquals"]
    }
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
            # Only a catcher that ends the execution at once may replace the state with the error: nothing after
            # it needs the change (and a malformed input may not even be an object to add the error to).
            if catcher.get("ResultPath") in (None, "$") and catcher["Next"] not in fails:
                found.append(f"{name}: a catcher would replace the change with the error")
    states = iteration_states(definition)
    for task, must_name in (
        ("RequestApproval", set(APPROVAL_DECISION_OF)),
        ("ApplyChange", set(EXECUTOR_OUTCOME_OF)),
    ):
        named = {error for c in states[task].get("Catch", []) for error in c["ErrorEquals"]} - {"States.ALL"}
        if must_name - named:
            found.append(f"{task} does not catch {sorted(must_name - named)} by name")
        if not any(c["ErrorEquals"] == ["States.ALL"] for c in states[task].get("Catch", [])):
            found.append(f"{task}: an unforeseen error would fail the whole mission")
    return found


def result_problems(definition: dict[str, Any]) -> list[str]:
    """Every way out of one iteration yields {change_id, decision, outcome, reason} with the right decision."""
    found = []
    states = iteration_states(definition)
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
    for task, expectation, field in (
        ("RequestApproval", APPROVAL_DECISION_OF, "decision"),
        ("ApplyChange", EXECUTOR_OUTCOME_OF, "outcome"),
    ):
        for catcher in states[task].get("Catch", []):
            target = states.get(catcher["Next"], {}).get("Parameters", {})
            for error in catcher["ErrorEquals"]:
                if error in expectation and target.get(field) != expectation[error]:
                    found.append(f"{task}: {error} leads to {field}={target.get(field)!r}, not {expectation[error]!r}")
    return found


def approval_task_problems(definition: dict[str, Any]) -> list[str]:
    found = []
    task = iteration_states(definition)["RequestApproval"]
    if task.get("Resource") != "arn:${Partition}:states:::lambda:invoke.waitForTaskToken":
        found.append("RequestApproval does not wait for a task token")
    parameters = task.get("Parameters", {})
    if parameters.get("FunctionName") != "${ApprovalFunctionArn}":
        found.append("RequestApproval does not invoke the approval function")
    payload = parameters.get("Payload", {})
    if payload != {
        "task_token.$": "$$.Task.Token",
        "execution_arn.$": "$.execution_arn",
        "mission_id.$": "$.mission_id",
        "change.$": "$.change",
    }:
        found.append(f"RequestApproval payload is {payload}")
    for timing in ("HeartbeatSeconds", "TimeoutSeconds"):
        if timing not in task and f"{timing}Path" not in task:
            found.append(f"RequestApproval has no {timing}")
    if task.get("ResultPath") in (None, "$"):
        found.append("RequestApproval's result would replace the change")
    return found


def graph_problems(definition: dict[str, Any]) -> list[str]:
    found = []

    def walk(machine: dict[str, Any], scope: str) -> None:
        states = machine["States"]
        reachable, frontier = set(), [machine["StartAt"]]
        while frontier:
            name = frontier.pop()
            if name in reachable:
                continue
            if name not in states:
                found.append(f"{scope}: transition to missing state {name}")
                continue
            reachable.add(name)
            state = states[name]
            targets = [state.get("Next"), state.get("Default")]
            targets += [c.get("Next") for c in state.get("Choices", []) + state.get("Catch", [])]
            frontier += [t for t in targets if t]
            if not state.get("End") and state["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in state:
                found.append(f"{scope}/{name} neither ends nor continues")
        for orphan in set(states) - reachable:
            found.append(f"{scope}/{orphan} is unreachable")
        for name, state in states.items():
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"], f"{scope}/{name}")

    walk(definition, "")
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
    """The plan is validated before anything else, from the execution's own input, and passes unchanged; a refusal
    never reaches the Map, tells the agent change by change, and ends the execution failed with the refusal."""
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
    if "ResultPath" not in task or task["ResultPath"] is not None:
        found.append("the validator's answer would change the plan the Map receives")
    catchers = {error: c for c in task.get("Catch", []) for error in c["ErrorEquals"]}
    if set(catchers) != {"Validation.PlanRefused", "Validation.PlanMalformed", "States.ALL"}:
        found.append(f"ValidatePlan catches {sorted(catchers)}")
        return found
    refused_path = _reachable(states, [c["Next"] for c in task["Catch"]])
    if "ApproveAndApplyEachChange" in refused_path:
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


def test_the_approval_task_waits_for_its_token_with_heartbeat_and_timeout(definition: dict[str, Any]) -> None:
    assert approval_task_problems(definition) == []


def test_every_state_is_reachable_and_every_transition_lands(definition: dict[str, Any]) -> None:
    assert graph_problems(definition) == []
    assert jsonpath_problems(definition) == []


def test_map_feeds_each_change_with_its_mission_and_execution(definition: dict[str, Any]) -> None:
    mapping = definition["States"]["ApproveAndApplyEachChange"]
    assert mapping["ItemsPath"] == "$.changes"
    selector = mapping["ItemSelector"]
    assert selector["change.$"] == "$$.Map.Item.Value"
    assert selector["mission_id.$"] == "$.mission_id"
    assert selector["execution_arn.$"] == "$$.Execution.Id"
    assert mapping["MaxConcurrencyPath"] == "$.settings.max_concurrency"
    assert mapping["ResultPath"] == "$.results"
    assert mapping["Next"] == "ResumeAgent"


def test_the_executor_gets_the_change_and_the_opaque_approval_only(definition: dict[str, Any]) -> None:
    task = iteration_states(definition)["ApplyChange"]
    assert task["Resource"] == "arn:${Partition}:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == "${ExecutorFunctionArn}"
    assert task["Parameters"]["Payload"] == {
        "execution_arn.$": "$.execution_arn",
        "mission_id.$": "$.mission_id",
        "change.$": "$.change",
        "approval.$": "$.approval",
    }
    choice = iteration_states(definition)["IsApproved"]
    assert choice["Choices"] == [{"Variable": "$.approval.decision", "StringEquals": "approved", "Next": "ApplyChange"}]
    assert choice["Default"] != "ApplyChange"


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
        iteration_states(definition)["ApplyChange"]["Retry"].append({"ErrorEquals": errors, "MaxAttempts": 2})

    return mutate


def _catch_first(task: str, errors: list[str]) -> Callable[[dict[str, Any]], None]:
    def mutate(definition: dict[str, Any]) -> None:
        iteration_states(definition)[task]["Catch"].insert(
            0, {"ErrorEquals": errors, "ResultPath": "$.error", "Next": "RecordApprovalFailed"}
        )

    return mutate


def _drop_catcher(task: str, error: str) -> Callable[[dict[str, Any]], None]:
    def mutate(definition: dict[str, Any]) -> None:
        for catcher in iteration_states(definition)[task]["Catch"]:
            catcher["ErrorEquals"] = [e for e in catcher["ErrorEquals"] if e != error] or ["States.Timeout"]

    return mutate


_BREAKS: dict[str, tuple[Callable[[dict[str, Any]], None], Callable[[dict[str, Any]], list[str]]]] = {
    "the executor retries every error": (_add_retry(["States.ALL"]), retry_problems),
    "the executor retries a token exchange failure": (_add_retry(["Executor.TokenExchangeFailed"]), retry_problems),
    "throttling is no longer retried": (lambda d: iteration_states(d)["ApplyChange"].pop("Retry"), retry_problems),
    "an unnamed error is caught": (_catch_first("RequestApproval", ["Approval.Oops"]), catch_problems),
    "States.ALL comes first": (_catch_first("ApplyChange", ["States.ALL"]), catch_problems),
    "denial is only caught by States.ALL": (_drop_catcher("RequestApproval", "Approval.Denied"), catch_problems),
    "heartbeat timeout is no longer caught by name": (
        _drop_catcher("RequestApproval", "States.HeartbeatTimeout"),
        catch_problems,
    ),
    "halted executor is only caught by States.ALL": (_drop_catcher("ApplyChange", "Executor.Halted"), catch_problems),
    "a denial is recorded as approved": (
        lambda d: iteration_states(d)["RecordDenied"]["Parameters"].update(decision="approved"),
        result_problems,
    ),
    "a result loses its reason": (
        lambda d: iteration_states(d)["RecordExpired"]["Parameters"].pop("reason.$"),
        result_problems,
    ),
    "the approval task has no heartbeat": (
        lambda d: iteration_states(d)["RequestApproval"].pop("HeartbeatSecondsPath"),
        approval_task_problems,
    ),
    "the approval payload loses the task token": (
        lambda d: iteration_states(d)["RequestApproval"]["Parameters"]["Payload"].pop("task_token.$"),
        approval_task_problems,
    ),
    "the approval is invoked without waiting": (
        lambda d: iteration_states(d)["RequestApproval"].update(Resource="arn:${Partition}:states:::lambda:invoke"),
        approval_task_problems,
    ),
    "a transition to nowhere": (
        lambda d: iteration_states(d)["IsApproved"].update(Default="RecordNothing"),
        graph_problems,
    ),
    "JSONata sneaks in": (
        lambda d: iteration_states(d)["RecordDenied"].update(QueryLanguage="JSONata"),
        jsonpath_problems,
    ),
    "the mission skips the validation": (lambda d: d.update(StartAt="ReadMissionSettings"), validation_problems),
    "the validator sees the state, not the execution's input": (
        lambda d: d["States"]["ValidatePlan"]["Parameters"]["Payload"].update({"plan.$": "$"}),
        validation_problems,
    ),
    "the validator's answer replaces the plan": (
        lambda d: d["States"]["ValidatePlan"].update(ResultPath="$"),
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


class FakeFunctions:
    """Stands in for the four Lambda functions the state machine invokes and records what each received."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # change_id -> queue of executor answers: a dict result, or an error type to raise
        self.executor_answers: dict[str, list[dict[str, Any] | str]] = {}
        # The validator's answer: None accepts the plan, an error type refuses it.
        self.validator_error: str | None = None
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
            return json.dumps({"verdict": "accepted"}).encode()
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

    def approval_requests(self, count: int, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
        """The first `count` approval requests, once Step Functions waits for each of their tokens.

        moto's interpreter loses an answer that arrives before it starts waiting (with HeartbeatSeconds set it then
        reports a timeout), whereas AWS keeps it; a human's answer always comes later, so the test waits too.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            requests = self.functions.received("approval")
            if len(requests) >= count and self._waiting_for_tokens() >= count:
                time.sleep(0.05)  # from TaskSubmitted to the wait itself
                return {r["change"]["change_id"]: r for r in requests}
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

    def approve(self, request: dict[str, Any]) -> None:
        """Answer as the approval function does after a human approved: an opaque decision, no token."""
        decision = {
            "decision": "approved",
            "approver_sub": "auth0|approver-1",
            "handoff_id": f"hnd-{request['change']['change_id']}",
            "approved_at": "2025-06-01T12:00:00Z",
        }
        self.sfn.send_task_success(taskToken=request["task_token"], output=json.dumps(decision))

    def fail(self, request: dict[str, Any], error: str) -> None:
        self.sfn.send_task_failure(taskToken=request["task_token"], error=error, cause="decided by the test")

    def finish(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=self.execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.02)
        pytest.fail("the mission did not finish")


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

    def start(changes: list[dict[str, Any]], heartbeat_seconds: int = 120, max_concurrency: int = 4) -> Mission:
        definition = mission_definition(
            arns, max_concurrency=max_concurrency, heartbeat_seconds=heartbeat_seconds, timeout_seconds=600
        )
        machine = sfn.create_state_machine(name=f"mission-{time.monotonic_ns()}", definition=definition, roleArn=role)
        mission_id = "m-0123456789abcdef0123"
        execution = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"],
            name=mission_id,
            input=json.dumps({"mission_id": mission_id, "changes": changes}),
        )
        return Mission(sfn, execution["executionArn"], functions)

    return start


@pytest.fixture(scope="module")
def changes() -> list[dict[str, Any]]:
    return [change.model_dump(mode="json") for change in one_of_each_kind()]


def test_a_mission_collects_every_kind_of_decision_and_resumes_the_agent_once(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    applied, denied, expired, halted_approval, halted_execution = (c["change_id"] for c in changes[:5])
    functions.executor_answers[halted_execution] = ["Executor.Halted"]
    mission = start_mission(changes[:5], max_concurrency=4)
    decide: dict[str, Callable[[dict[str, Any]], None]] = {
        applied: mission.approve,
        denied: lambda r: mission.fail(r, "Approval.Denied"),
        expired: lambda r: mission.fail(r, "Approval.Expired"),
        halted_approval: lambda r: mission.fail(r, "Approval.Halted"),
        halted_execution: mission.approve,
    }

    first = mission.approval_requests(4)
    time.sleep(0.3)
    assert len(functions.received("approval")) == 4, "MaxConcurrency lets no fifth approval wait at the same time"
    for change_id, request in first.items():
        decide[change_id](request)
    everything = mission.approval_requests(5)
    (last,) = set(everything) - set(first)
    decide[last](everything[last])
    for request in everything.values():
        assert set(request) == {"task_token", "execution_arn", "mission_id", "change"}
        assert request["execution_arn"] == mission.execution_arn
        assert parse_change(request["change"]).change_id == request["change"]["change_id"]
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"]) == {"mission_id": "m-0123456789abcdef0123", "status": "reported"}
    executed = functions.received("executor")
    assert sorted(p["change"]["change_id"] for p in executed) == sorted([applied, halted_execution])
    for payload in executed:
        assert set(payload) == {"execution_arn", "mission_id", "change", "approval"}
        assert payload["approval"]["handoff_id"] == f"hnd-{payload['change']['change_id']}"
    (resume,) = functions.received("resume")
    for result in resume["results"]:
        ChangeResult.model_validate(result)  # what the agent's resume entry accepts
    assert resume == {
        "mission_id": "m-0123456789abcdef0123",
        "results": [
            {"change_id": applied, "decision": "approved", "outcome": "applied", "reason": "applied and verified"},
            {"change_id": denied, "decision": "denied", "outcome": "skipped", "reason": "Approval.Denied"},
            {"change_id": expired, "decision": "expired", "outcome": "skipped", "reason": "Approval.Expired"},
            {"change_id": halted_approval, "decision": "halted", "outcome": "skipped", "reason": "Approval.Halted"},
            {"change_id": halted_execution, "decision": "approved", "outcome": "halted", "reason": "Executor.Halted"},
        ],
    }


def test_a_throttled_executor_is_retried_and_other_failures_are_not(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    throttled, exchange_failed, crashed = (c["change_id"] for c in changes[:3])
    functions.executor_answers[throttled] = ["Executor.Throttled"]
    functions.executor_answers[exchange_failed] = ["Executor.TokenExchangeFailed"]
    functions.executor_answers[crashed] = ["Runtime.ExitError"]
    mission = start_mission(changes[:3])
    for request in mission.approval_requests(3).values():
        mission.approve(request)
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    attempts = [p["change"]["change_id"] for p in functions.received("executor")]
    assert attempts.count(throttled) == 2
    assert attempts.count(exchange_failed) == 1
    assert attempts.count(crashed) == 1
    (resume,) = functions.received("resume")
    assert resume["results"] == [
        {"change_id": throttled, "decision": "approved", "outcome": "applied", "reason": "applied and verified"},
        {
            "change_id": exchange_failed,
            "decision": "approved",
            "outcome": "failed",
            "reason": "Executor.TokenExchangeFailed",
        },
        {"change_id": crashed, "decision": "approved", "outcome": "failed", "reason": "Runtime.ExitError"},
    ]


def test_a_silent_approval_function_fails_only_its_change(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    mission = start_mission(changes[:1], heartbeat_seconds=1)
    mission.approval_requests(1)  # never answered, never heartbeating
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    assert functions.received("executor") == []
    (resume,) = functions.received("resume")
    (result,) = resume["results"]
    # AWS reports States.HeartbeatTimeout; moto 5.2.5 reports a heartbeat timeout as States.Timeout (its
    # HeartbeatTimeoutError is a TimeoutError). The definition catches both by name; either way nothing is applied.
    assert result["reason"] in {"States.HeartbeatTimeout", "States.Timeout"}
    assert result == {
        "change_id": changes[0]["change_id"],
        "decision": APPROVAL_DECISION_OF[result["reason"]],
        "outcome": "skipped",
        "reason": result["reason"],
    }


def test_the_validator_sees_the_execution_input_and_a_valid_plan_reaches_the_map_unchanged(
    start_mission: Callable[..., Mission], functions: FakeFunctions, changes: list[dict[str, Any]]
) -> None:
    mission = start_mission(changes[:2])
    requests = mission.approval_requests(2)
    (validated,) = functions.received("validator")
    assert validated == {
        "execution_arn": mission.execution_arn,
        "plan": {"mission_id": "m-0123456789abcdef0123", "changes": changes[:2]},
    }
    assert [requests[c["change_id"]]["change"] for c in changes[:2]] == changes[:2]
    for request in requests.values():
        mission.approve(request)
    assert mission.finish()["status"] == "SUCCEEDED"
    assert len(functions.received("executor")) == 2


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
        "mission_id": "m-0123456789abcdef0123",
        "results": [
            {
                "change_id": c["change_id"],
                "decision": "failed",
                "outcome": "skipped",
                "reason": "Validation.PlanRefused",
            }
            for c in changes[:3]
        ],
    }
    for result in resume["results"]:
        ChangeResult.model_validate(result)  # what the agent's resume entry accepts


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
    (request,) = mission.approval_requests(1).values()
    mission.approve(request)
    finished = mission.finish()

    assert finished["status"] == "SUCCEEDED"
    machine = mission.sfn.describe_state_machine(stateMachineArn=finished["stateMachineArn"])
    resources = {state["Resource"] for _, state in all_states(json.loads(machine["definition"])) if "Resource" in state}
    assert resources == {
        f"arn:{partition}:states:::lambda:invoke",
        f"arn:{partition}:states:::lambda:invoke.waitForTaskToken",
    }
    assert [name for name, _ in functions.calls] == ["validator", "approval", "executor", "resume"]
    (resume,) = functions.received("resume")
    assert [(r["decision"], r["outcome"]) for r in resume["results"]] == [("approved", "applied")]
