"""The alarms issue 14 names, each watching the right metric of the right resource and telling NotificationsTopic,
and the operations dashboard: valid JSON once CloudFormation substitutes it, naming only resources of the stack."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from aegis.models import Decision
from tests.support.stack import ROOT, Stack, build_stack, pristine_template

ALARM = "AWS::CloudWatch::Alarm"
# Every alarm of the stack: the ones issue 14 names, and the kill switch's partial failure.
ALARMS = {
    "ExecutorErrorsAlarm",
    "ApprovalFailuresAlarm",
    "MissionExecutionsFailedAlarm",
    "MissionExecutionsTimedOutAlarm",
    "ThrottlesAlarm",
    "HaltEngagedAlarm",
    "KillSwitchStepsFailedAlarm",
    "AgentScanDeadLetterAlarm",
    "KillSwitchDeadLetterAlarm",
    "AuditChainBehindAlarm",
}
# Alarms whose return to OK is news too: the stack re-armed, a dead-letter queue emptied, the chain caught up.
OK_NOTIFIED = {"HaltEngagedAlarm", "AgentScanDeadLetterAlarm", "KillSwitchDeadLetterAlarm", "AuditChainBehindAlarm"}
# Approval outcomes that are failures of the machinery (the approval function's ApprovalInvocations dimension):
# denied, expired and halted are decisions; approved, continued, duplicate and abandoned are normal operation.
APPROVAL_FAILURE_OUTCOMES = {Decision.FAILED.value, "misconfigured", "rejected_event"}
APPROVAL_CODE = [ROOT / "functions" / "approval" / "app.py", ROOT / "functions" / "approval" / "aegis_approval"]


def dimensions(metric: dict[str, Any]) -> dict[str, str]:
    return {dimension["Name"]: dimension["Value"] for dimension in metric.get("Dimensions", [])}


def watched(alarm: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """(namespace, metric, dimensions) of a single-metric alarm."""
    return alarm["Namespace"], alarm["MetricName"], dimensions(alarm)


def math_parts(alarm: dict[str, Any]) -> tuple[str, dict[str, tuple[str, str, dict[str, str]]]]:
    """A metric math alarm: its one returned expression and each metric it reads, by id."""
    (returned,) = [query for query in alarm["Metrics"] if query.get("ReturnData", True)]
    metrics = {
        query["Id"]: (
            query["MetricStat"]["Metric"]["Namespace"],
            query["MetricStat"]["Metric"]["MetricName"],
            dimensions(query["MetricStat"]["Metric"]),
        )
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    return returned["Expression"], metrics


def namespace(stack: Stack) -> str:
    return str(
        stack.resolver.resolve(stack.template["Globals"]["Function"]["Environment"]["Variables"])[
            "POWERTOOLS_METRICS_NAMESPACE"
        ]
    )


def service(stack: Stack, function: str) -> str:
    return stack.function_environment(function)["POWERTOOLS_SERVICE_NAME"]


def test_the_stack_has_exactly_its_alarms(stack: Stack) -> None:
    assert set(stack.resources_of_type(ALARM)) == ALARMS


def test_every_alarm_tells_the_notifications_topic(stack: Stack) -> None:
    topic = stack.ref("NotificationsTopic")
    for alarm in ALARMS:
        properties = stack.properties(alarm)
        assert properties["AlarmActions"] == [topic], alarm
        assert properties.get("OKActions", []) == ([topic] if alarm in OK_NOTIFIED else []), alarm
        assert properties.get("ActionsEnabled", True) is True, alarm
        assert properties["AlarmDescription"].strip(), f"{alarm} says what it means and what to do"


def test_missing_data_is_chosen_per_alarm(stack: Stack) -> None:
    # The halt gauge is published only when the kill switch acts: the alarm holds its state in between. Everywhere
    # else no data means nothing happened.
    for alarm in ALARMS:
        expected = "ignore" if alarm == "HaltEngagedAlarm" else "notBreaching"
        assert stack.properties(alarm)["TreatMissingData"] == expected, alarm


@pytest.mark.parametrize(
    ("alarm", "metric", "resource"),
    [
        ("ExecutorErrorsAlarm", ("AWS/Lambda", "Errors", "FunctionName"), "ExecutorFunction"),
        ("MissionExecutionsFailedAlarm", ("AWS/States", "ExecutionsFailed", "StateMachineArn"), "MissionStateMachine"),
        (
            "MissionExecutionsTimedOutAlarm",
            ("AWS/States", "ExecutionsTimedOut", "StateMachineArn"),
            "MissionStateMachine",
        ),
    ],
)
def test_the_first_error_or_failed_execution_alarms(
    stack: Stack, alarm: str, metric: tuple[str, str, str], resource: str
) -> None:
    properties = stack.properties(alarm)
    metric_namespace, name, dimension = metric
    # Ref of a function is its name, Ref of a state machine its ARN: the dimensions AWS/Lambda and AWS/States use.
    assert watched(properties) == (metric_namespace, name, {dimension: stack.ref(resource)})
    assert (properties["Statistic"], properties["ComparisonOperator"], properties["Threshold"]) == (
        "Sum",
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert properties["EvaluationPeriods"] == 1


def approval_outcomes() -> set[str]:
    """Every `outcome` the approval function can report: string values of "outcome" keys in its code, and the
    decisions its service reports by value."""
    found = {decision.value for decision in Decision}
    paths = [APPROVAL_CODE[0], *sorted(APPROVAL_CODE[1].glob("*.py"))]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "outcome" and isinstance(value, ast.Constant):
                        found.add(str(value.value))
    return found


def test_approval_failures_count_the_machinerys_failures_never_a_humans_answer(stack: Stack) -> None:
    expression, metrics = math_parts(stack.properties("ApprovalFailuresAlarm"))
    invocations = {
        metric_id: dims["outcome"]
        for metric_id, (metric_namespace, name, dims) in metrics.items()
        if (metric_namespace, name) == (namespace(stack), "ApprovalInvocations")
        and dims == {"service": service(stack, "ApprovalFunction"), "outcome": dims.get("outcome", "")}
    }
    assert set(invocations.values()) == APPROVAL_FAILURE_OUTCOMES
    assert approval_outcomes() >= APPROVAL_FAILURE_OUTCOMES, "every outcome counted is one the approval reports"
    assert not {Decision.DENIED.value, Decision.EXPIRED.value, Decision.HALTED.value} & set(invocations.values())
    crashed = [
        metric_id
        for metric_id, metric in metrics.items()
        if metric == ("AWS/Lambda", "Errors", {"FunctionName": stack.ref("ApprovalFunction")})
    ]
    assert len(crashed) == 1, "a crash of the approval function (its task then ends at the heartbeat) counts"
    assert set(metrics) == {*invocations, *crashed}
    assert set(re.findall(r"[a-z][A-Za-z0-9_]*", expression)) - {"FILL"} - {"SUM"} == set(metrics), (
        "the expression adds up every metric it reads"
    )


def test_throttles_of_every_function_of_the_stack_alarm(stack: Stack) -> None:
    properties = stack.properties("ThrottlesAlarm")
    expression, metrics = math_parts(properties)
    functions = stack.resources_of_type("AWS::Serverless::Function")
    assert sorted(metrics.values(), key=repr) == sorted(
        (("AWS/Lambda", "Throttles", {"FunctionName": stack.ref(function)}) for function in functions), key=repr
    )
    assert set(re.findall(r"[a-z][A-Za-z0-9_]*", expression)) - {"FILL"} - {"SUM"} == set(metrics)
    # A Number parameter's Ref is its text; CloudFormation converts it to the alarm's number.
    assert properties["Threshold"] == stack.parameters["ThrottleAlarmThreshold"] == "1"
    assert build_stack(ThrottleAlarmThreshold="5").properties("ThrottlesAlarm")["Threshold"] == "5"


def test_the_halt_alarm_stays_raised_from_trigger_to_rearm(stack: Stack) -> None:
    properties = stack.properties("HaltEngagedAlarm")
    # The metric the kill switch publishes after each trigger (1) and re-arm (0): tests/unit/killswitch proves it.
    assert watched(properties) == (namespace(stack), "Halted", {"service": service(stack, "KillSwitchFunction")})
    assert (properties["Statistic"], properties["ComparisonOperator"], properties["Threshold"]) == (
        "Maximum",
        "GreaterThanOrEqualToThreshold",
        1,
    )
    steps = stack.properties("KillSwitchStepsFailedAlarm")
    assert watched(steps) == (
        namespace(stack),
        "KillSwitchStepsFailed",
        {"service": service(stack, "KillSwitchFunction")},
    )
    assert (steps["Statistic"], steps["ComparisonOperator"], steps["Threshold"]) == (
        "Sum",
        "GreaterThanOrEqualToThreshold",
        1,
    )


def test_a_single_message_in_a_dead_letter_queue_alarms(stack: Stack) -> None:
    for alarm, queue in (
        ("AgentScanDeadLetterAlarm", "AgentScanDeadLetterQueue"),
        ("KillSwitchDeadLetterAlarm", "KillSwitchDeadLetterQueue"),
    ):
        properties = stack.properties(alarm)
        assert watched(properties) == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": stack.resolver.attributes[(queue, "QueueName")]},
        )
        assert (properties["Statistic"], properties["ComparisonOperator"], properties["Threshold"]) == (
            "Maximum",
            "GreaterThanThreshold",
            0,
        )


# ---------------------------------------------------------------------------------------------------------------------
# The dashboard


def dashboard(stack: Stack) -> dict[str, Any]:
    body = stack.properties("OperationsDashboard")["DashboardBody"]
    assert isinstance(body, str), "DashboardBody is a JSON string after substitution"
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def widget_metrics(widget: dict[str, Any]) -> list[list[Any]]:
    return list(widget.get("properties", {}).get("metrics", []))


def test_the_dashboard_body_names_only_resources_of_the_stack() -> None:
    body = pristine_template()["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    resources = pristine_template()["Resources"]
    for name in re.findall(r"\$\{([^}!]+)\}", body):
        target = name.split(".", 1)[0]
        assert target in resources or target.startswith("AWS::"), f"${{{name}}} names nothing of the stack"


def test_the_dashboard_shows_missions_approvals_executor_kill_switch_and_dead_letters(stack: Stack) -> None:
    widgets = dashboard(stack)["widgets"]
    shown = [tuple(metric[:4]) for widget in widgets for metric in widget_metrics(widget) if isinstance(metric[0], str)]
    searches = " ".join(
        metric[0]["expression"]
        for widget in widgets
        for metric in widget_metrics(widget)
        if isinstance(metric[0], dict)
    )
    machine = stack.ref("MissionStateMachine")
    assert ("AWS/States", "ExecutionsFailed", "StateMachineArn", machine) in shown
    assert ("AWS/States", "ExecutionsTimedOut", "StateMachineArn", machine) in shown
    assert 'MetricName="ApprovalInvocations"' in searches
    assert f'service="{service(stack, "ApprovalFunction")}"' in searches
    assert 'MetricName="ChangesExecuted"' in searches
    assert ("AWS/Lambda", "Errors", "FunctionName", stack.ref("ExecutorFunction")) in shown
    assert (namespace(stack), "Halted", "service", service(stack, "KillSwitchFunction")) in shown
    for queue in ("AgentScanDeadLetterQueue", "KillSwitchDeadLetterQueue"):
        name = stack.resolver.attributes[(queue, "QueueName")]
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name) in shown
    functions = {stack.ref(function) for function in stack.resources_of_type("AWS::Serverless::Function")}
    assert {metric[3] for metric in shown if metric[:3] == ("AWS/Lambda", "Throttles", "FunctionName")} == functions
    assert {metric[3] for metric in shown if metric[2] == "FunctionName"} <= functions
    (alarms,) = [widget for widget in widgets if widget["type"] == "alarm"]
    assert sorted(alarms["properties"]["alarms"]) == sorted(stack.arn(alarm) for alarm in ALARMS)
    for widget in widgets:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == stack.resolver.pseudo["AWS::Region"]


def test_the_dashboard_fits_the_grid(stack: Stack) -> None:
    for widget in dashboard(stack)["widgets"]:
        assert widget["x"] >= 0, widget
        assert widget["x"] + widget["width"] <= 24, widget


def test_an_audit_chain_stuck_on_a_batch_alarms(stack: Stack) -> None:
    """The chainer never skips a record (MaximumRetryAttempts -1): a batch it cannot link holds its shard, and the
    age of the oldest unlinked record is what grows."""
    properties = stack.properties("AuditChainBehindAlarm")
    assert watched(properties) == ("AWS/Lambda", "IteratorAge", {"FunctionName": stack.ref("AuditChainFunction")})
    assert (properties["Statistic"], properties["ComparisonOperator"]) == ("Maximum", "GreaterThanThreshold")
    assert properties["Threshold"] == 15 * 60 * 1000
