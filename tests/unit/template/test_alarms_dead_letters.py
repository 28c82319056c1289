"""Dead-letter queues for the asynchronous invocations (issue 14; Checkov's CKV_AWS_116): a function invoked
asynchronously has a queue, encrypted and with a retention, an alarm on its depth and sqs:SendMessage on exactly
that queue, unless the event it would keep holds a secret, as the approval function's task token does. A function
invoked only synchronously says why it needs none."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.stack import STATE_MACHINE_PATH, Stack

CHECK = "CKV_AWS_116"
LAMBDA_INVOKE = re.compile(r":states:::lambda:invoke(\.waitForTaskToken)?$")
# The secrets whose holder could act with them: a dead-letter queue must never keep one.
SECRET_WORDS = ("task token",)


def tasks(state: Any) -> list[dict[str, Any]]:
    """Every Task state of an ASL document, nested Map and Parallel branches included."""
    found: list[dict[str, Any]] = []
    if isinstance(state, dict):
        if state.get("Type") == "Task":
            found.append(state)
        for value in state.values():
            found += tasks(value)
    elif isinstance(state, list):
        for value in state:
            found += tasks(value)
    return found


def state_machine_invocations(stack: Stack) -> dict[str, set[str]]:
    """Function logical id -> the invocation types the mission state machine uses for it."""
    substitutions = stack.resource("MissionStateMachine")["Properties"]["DefinitionSubstitutions"]
    functions = {
        f"${{{name}}}": value["Fn::GetAtt"][0]
        for name, value in substitutions.items()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }
    found: dict[str, set[str]] = {}
    for task in tasks(json.loads(STATE_MACHINE_PATH.read_text(encoding="utf-8"))):
        if LAMBDA_INVOKE.search(str(task.get("Resource", ""))):
            parameters = task["Parameters"]
            function = functions[parameters["FunctionName"]]
            found.setdefault(function, set()).add(parameters.get("InvocationType", "RequestResponse"))
    return found


def asynchronously_invoked(stack: Stack) -> set[str]:
    """Functions something invokes asynchronously: EventBridge rule targets, state machine tasks with
    InvocationType Event, and functions another function's role may invoke (the approval function continues in a
    fresh asynchronous invocation of itself)."""
    functions = stack.resources_of_type("AWS::Serverless::Function")
    by_arn = {stack.arn(function): function for function in functions}
    found = {
        by_arn[target["Arn"]]
        for rule in stack.resources_of_type("AWS::Events::Rule")
        for target in stack.properties(rule).get("Targets", [])
        if target["Arn"] in by_arn
    }
    found |= {function for function, kinds in state_machine_invocations(stack).items() if "Event" in kinds}
    function_roles = {stack.properties(function)["Role"] for function in functions}
    for role in stack.resources_of_type("AWS::IAM::Role"):
        if stack.arn(role) in function_roles:
            found |= {g.resource for g in stack.grants(role) if g.action == "lambda:InvokeFunction"} & set(functions)
    return found


def skip_reason(stack: Stack, function: str) -> str | None:
    skips = stack.resource(function).get("Metadata", {}).get("checkov", {}).get("skip", [])
    reasons = [str(skip.get("comment", "")) for skip in skips if skip.get("id") == CHECK]
    return " ".join(reasons) if reasons else None


def dead_letter_queue(stack: Stack, function: str) -> str | None:
    config = stack.properties(function).get("DeadLetterQueue")
    return None if config is None else stack.owner(config["TargetArn"])


def test_the_asynchronously_invoked_functions_are_found() -> None:
    # What the template says today; the check below covers whatever it says tomorrow.
    from tests.support.stack import build_stack

    assert asynchronously_invoked(build_stack()) >= {"AgentScanFunction", "KillSwitchFunction", "ApprovalFunction"}


def test_every_asynchronous_function_has_a_watched_queue_or_a_skip_naming_the_secret(stack: Stack) -> None:
    for function in sorted(asynchronously_invoked(stack)):
        queue = dead_letter_queue(stack, function)
        reason = skip_reason(stack, function)
        if queue is None:
            assert reason is not None, f"{function} is invoked asynchronously: a dead-letter queue or a {CHECK} skip"
            assert any(word in reason.lower() for word in SECRET_WORDS), (
                f"{function}'s skip must name the secret its events carry"
            )
            continue
        assert reason is None, f"{function} has a queue and skips {CHECK}"
        assert stack.resource(queue)["Type"] == "AWS::SQS::Queue"
        watching = [
            alarm
            for alarm in stack.resources_of_type("AWS::CloudWatch::Alarm")
            if stack.properties(alarm).get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and stack.properties(alarm).get("Dimensions")
            == [{"Name": "QueueName", "Value": stack.resolver.attributes[(queue, "QueueName")]}]
        ]
        assert len(watching) == 1, f"{queue} needs exactly one depth alarm"


def test_the_approval_functions_task_token_never_reaches_a_queue_or_destination(stack: Stack) -> None:
    properties = stack.properties("ApprovalFunction")
    assert "DeadLetterQueue" not in properties
    assert "DeadLetterConfig" not in properties
    assert "DestinationConfig" not in properties.get("EventInvokeConfig", {})
    assert properties["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    # Nor through a separate invoke configuration resource.
    for config in stack.resources_of_type("AWS::Lambda::EventInvokeConfig"):
        assert stack.properties(config)["FunctionName"] != stack.ref("ApprovalFunction")
    assert "task token" in (skip_reason(stack, "ApprovalFunction") or "")


def test_a_function_invoked_only_synchronously_says_why_it_has_no_queue(stack: Stack) -> None:
    synchronous = {
        function
        for function, kinds in state_machine_invocations(stack).items()
        if kinds == {"RequestResponse"} and function not in asynchronously_invoked(stack)
    }
    assert synchronous == {"ValidatorFunction", "ExecutorFunction", "AgentResumeFunction"}
    for function in synchronous:
        assert dead_letter_queue(stack, function) is None
        assert "synchronously" in (skip_reason(stack, function) or ""), function


def test_each_queue_is_encrypted_kept_long_enough_and_written_only_by_its_functions_role(stack: Stack) -> None:
    queues = stack.resources_of_type("AWS::SQS::Queue")
    senders: dict[str, set[str]] = {queue: set() for queue in queues}
    for role in stack.resources_of_type("AWS::IAM::Role"):
        for grant in stack.grants(role):
            if grant.service == "sqs" or grant.resource in queues:
                assert (grant.action, grant.resource) == ("sqs:SendMessage", grant.resource), grant
                assert not grant.condition, grant
                senders[grant.resource].add(role)
    owners = {
        queue: {
            stack.owner(stack.properties(function)["Role"])
            for function in stack.resources_of_type("AWS::Serverless::Function")
            if dead_letter_queue(stack, function) == queue
        }
        for queue in queues
    }
    for queue in queues:
        properties = stack.properties(queue)
        assert properties.get("KmsMasterKeyId") or properties.get("SqsManagedSseEnabled") is True, queue
        # Four days is SQS's default; a dead letter needs time to be looked at.
        assert int(properties["MessageRetentionPeriod"]) >= 7 * 24 * 3600, queue
        assert owners[queue], f"{queue} is no function's dead-letter queue"
        assert senders[queue] == owners[queue], f"{queue} is written by {senders[queue]}, expected {owners[queue]}"
