"""template.yaml for notifications: NotifierRole reaches the audit stream and the topic and nothing else, the topic is
encrypted with a key of its own that only the notifier (through SNS) and CloudWatch alarms may use, the function
reads the stream the way aegis_notifier expects, and the subscriptions and the waiting threshold are parameters.

Every check of tests/unit/template/iam_matrix.py used here also runs on a copy of the template broken in the one way
it exists to catch."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from aegis_approval.settings import WAITING_NOTIFY_MINUTES_DEFAULT, WAITING_NOTIFY_MINUTES_RANGE, ApprovalSettings
from aegis_local.aws.template import TemplateError
from aegis_notifier.settings import NotifierSettings
from tests.support.stack import Stack, build_stack, pristine_template
from tests.unit.template.iam_matrix import (
    notifications_key_problems,
    notifier_reach,
    role_statement,
    role_statements,
    writes_beyond_domain,
)

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def stack() -> Stack:
    return build_stack()


def test_the_notifier_reads_the_audit_stream_and_publishes_to_its_topic_only(stack: Stack) -> None:
    assert notifier_reach(stack) == []
    assert writes_beyond_domain(stack, "NotifierRole") == []
    assert notifications_key_problems(stack) == []


def _statement(role: str, sid: str, **fields: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        role_statements(template, role).append({"Sid": sid, "Effect": "Allow", **fields})

    return mutate


def _key_statement(key: str, **statement: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        template["Resources"][key]["Properties"]["KeyPolicy"]["Statement"].append({"Effect": "Allow", **statement})

    return mutate


def _key_condition(sid: str, condition: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        statements = template["Resources"]["NotificationsKey"]["Properties"]["KeyPolicy"]["Statement"]
        statement = next(s for s in statements if s["Sid"] == sid)
        if condition is None:
            statement.pop("Condition")
        else:
            statement["Condition"] = condition

    return mutate


def _publish_anywhere(template: dict[str, Any]) -> None:
    role_statement(template, "NotifierRole", "PublishNotifications")["Resource"] = "*"


def _no_stream(template: dict[str, Any]) -> None:
    statements = role_statements(template, "NotifierRole")
    statements[:] = [s for s in statements if s.get("Sid") != "ReadAuditStream"]


def _key_without_via_service(template: dict[str, Any]) -> None:
    role_statement(template, "NotifierRole", "AuditStreamKeyThroughDynamoDB").pop("Condition")


def _topic_unencrypted(template: dict[str, Any]) -> None:
    template["Resources"]["NotificationsTopic"]["Properties"].pop("KmsMasterKeyId")


def _rotation_off(template: dict[str, Any]) -> None:
    template["Resources"]["NotificationsKey"]["Properties"]["EnableKeyRotation"] = False


ARN = {"Fn::GetAtt": ["NotifierRole", "Arn"]}
BREAKS: dict[str, tuple[Mutation, Callable[[Stack], list[str]], str]] = {
    "the notifier writes the audit trail": (
        _statement("NotifierRole", "Sneaky", Action="dynamodb:PutItem", Resource={"Fn::GetAtt": ["AuditTable", "Arn"]}),
        notifier_reach,
        "dynamodb:PutItem on AuditTable",
    ),
    "the notifier reads a secret": (
        _statement(
            "NotifierRole",
            "Sneaky",
            Action="secretsmanager:GetSecretValue",
            Resource={"Ref": "ApprovalAuth0ClientSecretArn"},
        ),
        notifier_reach,
        "the notifier may not reach a secret",
    ),
    "the notifier publishes to any topic": (_publish_anywhere, notifier_reach, "sns:Publish on *"),
    "the notifier cannot read the stream": (_no_stream, notifier_reach, "lacks dynamodb:GetRecords"),
    "the notifier uses the table key itself": (_key_without_via_service, notifier_reach, "through DynamoDB only"),
    "the hand-off key names the notifier": (
        _key_statement("HandoffKey", Sid="Sneaky", Principal={"AWS": ARN}, Action="kms:Decrypt", Resource="*"),
        notifier_reach,
        "HandoffKey statement Sneaky names the notifier",
    ),
    "another role publishes notifications": (
        _statement("AgentRole", "Sneaky", Action="sns:Publish", Resource={"Ref": "NotificationsTopic"}),
        notifier_reach,
        "AgentRole/Sneaky: sns:Publish",
    ),
    "the account uses the notifications key": (
        _key_statement(
            "NotificationsKey",
            Sid="Sneaky",
            Principal={"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
            Action="kms:Decrypt",
            Resource="*",
        ),
        notifications_key_problems,
        "the account may use the key (kms:Decrypt)",
    ),
    "the notifier uses the key outside SNS": (
        _key_condition("NotifierPublishesThroughSNSOnly", None),
        notifications_key_problems,
        "NotifierRole without",
    ),
    "CloudWatch of any account uses the key": (
        _key_condition("CloudWatchAlarmsPublish", None),
        notifications_key_problems,
        "service:cloudwatch.amazonaws.com without",
    ),
    "another service uses the key": (
        _key_statement(
            "NotificationsKey",
            Sid="Sneaky",
            Principal={"Service": "s3.amazonaws.com"},
            Action="kms:Decrypt",
            Resource="*",
        ),
        notifications_key_problems,
        "service:s3.amazonaws.com may use the key",
    ),
    "the topic is not encrypted": (_topic_unencrypted, notifications_key_problems, "not encrypted"),
    "the key is not rotated": (_rotation_off, notifications_key_problems, "rotation is off"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_check_catches_its_break(name: str) -> None:
    mutate, check, expected = BREAKS[name]
    template = pristine_template()
    mutate(template)
    found = check(build_stack(template))
    assert any(expected in problem for problem in found), found


def test_the_function_reads_the_audit_stream_in_order_and_answers_with_its_failed_records(stack: Stack) -> None:
    properties = stack.properties("NotifierFunction")
    (event,) = properties["Events"].values()
    assert event["Type"] == "DynamoDB"
    mapping = event["Properties"]
    assert mapping["Stream"] == stack.resolver.attributes[("AuditTable", "StreamArn")]
    assert stack.properties("AuditTable")["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] >= 1
    assert [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]] == [{"eventName": ["INSERT"]}]
    assert properties["Role"] == stack.resolver.attributes[("NotifierRole", "Arn")]
    assert properties["LoggingConfig"] == {"LogGroup": stack.ref("NotifierLogGroup")}
    assert properties["Layers"] == [stack.ref("AegisLayer")]


def test_the_functions_environment_is_what_its_settings_read(stack: Stack) -> None:
    settings = NotifierSettings.from_env(stack.function_environment("NotifierFunction"))
    assert settings.topic_arn == stack.ref("NotificationsTopic")
    assert settings.deployment_name == stack.resolver.pseudo["AWS::StackName"]


def test_the_waiting_threshold_is_a_parameter_the_approval_function_reads(stack: Stack) -> None:
    parameter = stack.template["Parameters"]["ApprovalWaitingNotifyMinutes"]
    assert parameter["Default"] == WAITING_NOTIFY_MINUTES_DEFAULT
    assert range(parameter["MinValue"], parameter["MaxValue"] + 1) == WAITING_NOTIFY_MINUTES_RANGE
    environment = stack.function_environment("ApprovalFunction")
    assert environment["APPROVAL_WAITING_NOTIFY_MINUTES"] == str(WAITING_NOTIFY_MINUTES_DEFAULT)
    with_forty = build_stack(ApprovalWaitingNotifyMinutes="40").function_environment("ApprovalFunction")
    assert (
        ApprovalSettings.from_env({**with_forty, "APPROVAL_FUNCTION_NAME": "aegis-approval"}).waiting_notify_minutes
        == 40
    )


def test_subscriptions_exist_only_for_the_endpoints_given(stack: Stack) -> None:
    subscriptions = stack.resources_of_type("AWS::SNS::Subscription")
    assert {name: body["Condition"] for name, body in subscriptions.items()} == {
        "NotificationEmailSubscription": "HasNotificationEmail",
        "NotificationHttpsSubscription": "HasNotificationHttpsEndpoint",
    }
    assert not stack.resolver.condition("HasNotificationEmail")
    assert not stack.resolver.condition("HasNotificationHttpsEndpoint")
    given = build_stack(NotificationEmail="ops@example.com", NotificationHttpsEndpoint="https://hooks.example.com/a")
    assert given.resolver.condition("HasNotificationEmail")
    assert given.resolver.condition("HasNotificationHttpsEndpoint")
    email = given.properties("NotificationEmailSubscription")
    https = given.properties("NotificationHttpsSubscription")
    assert (email["Protocol"], email["Endpoint"], email["TopicArn"]) == (
        "email",
        "ops@example.com",
        given.ref("NotificationsTopic"),
    )
    assert (https["Protocol"], https["Endpoint"]) == ("https", "https://hooks.example.com/a")


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("NotificationHttpsEndpoint", "http://hooks.example.com/a"),
        ("NotificationHttpsEndpoint", "https://hooks.example.com/a b"),
        ("NotificationEmail", "not an address"),
        ("ApprovalWaitingNotifyMinutes", "0"),
    ],
)
def test_a_subscription_endpoint_or_threshold_of_the_wrong_shape_is_refused(parameter: str, value: str) -> None:
    with pytest.raises(TemplateError):
        build_stack(**{parameter: value})
