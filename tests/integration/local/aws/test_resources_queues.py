"""SQS queues of a template, and a function's dead-letter queue, on the local stack (the fixture template of
test_resources plus a queue and a function that dead-letters to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from aegis_local.aws.resources import StackIdentity, create_stack, resolve_parameters
from aegis_local.aws.stack import LocalStack
from aegis_local.aws.template import load_template
from tests.integration.local.aws.test_resources import ISSUER, fixture_copy

QUEUE = {
    "Type": "AWS::SQS::Queue",
    "Properties": {
        "QueueName": {"Fn::Sub": "${AWS::StackName}-dead-letters"},
        "KmsMasterKeyId": "alias/aws/sqs",
        "MessageRetentionPeriod": 1209600,
        "VisibilityTimeout": 45,
        "Tags": [{"Key": "purpose", "Value": "dead letters"}],
    },
}
FUNCTION = {
    "Type": "AWS::Serverless::Function",
    "Properties": {
        "CodeUri": "functions/echo/",
        "Handler": "app.handler",
        "DeadLetterQueue": {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]}},
    },
}


def test_a_queue_is_created_as_declared_and_a_function_may_dead_letter_to_it(tmp_path: Path) -> None:
    template = fixture_copy(tmp_path, {"DeadLetters": QUEUE, "Dead": FUNCTION})
    with LocalStack(template_path=template, stack_name="fixture", auth0=False, parameters=ISSUER) as stack:
        sqs = stack.client("sqs")
        url = stack.physical_id("DeadLetters")  # Ref of a queue is its URL
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        tags = sqs.list_queue_tags(QueueUrl=url)["Tags"]
        arn = stack.resources.attribute("DeadLetters", "Arn")
        name = stack.resources.attribute("DeadLetters", "QueueName")
        function = stack.client("lambda").get_function_configuration(FunctionName=stack.physical_id("Dead"))

    assert url.endswith("/fixture-dead-letters")
    assert (arn, name) == (attributes["QueueArn"], "fixture-dead-letters")
    assert attributes["KmsMasterKeyId"] == "alias/aws/sqs"
    assert (attributes["MessageRetentionPeriod"], attributes["VisibilityTimeout"]) == ("1209600", "45")
    assert tags == {"purpose": "dead letters"}
    # Created after its queue, whose ARN it names (moto 5.2.5 keeps no DeadLetterConfig: see the test below).
    assert function["FunctionName"] == "fixture-Dead"


def test_a_functions_dead_letter_queue_becomes_its_dead_letter_config(tmp_path: Path) -> None:
    """SAM's DeadLetterQueue {Type, TargetArn} reaches Lambda as DeadLetterConfig {TargetArn}, as the transform
    writes it: seen in the CreateFunction request itself, since moto does not keep it."""
    path = fixture_copy(tmp_path, {"DeadLetters": QUEUE, "Dead": FUNCTION})
    template = load_template(path)
    requests: dict[str, dict[str, Any]] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        requests[params["FunctionName"]] = params

    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = boto3.client(service, region_name="us-east-1")
                if service == "lambda":
                    clients[service].meta.events.register("provide-client-params.lambda.CreateFunction", remember)
            return clients[service]

        created = create_stack(
            template,
            path.parent,
            resolve_parameters(template, ISSUER),
            StackIdentity("fixture", "us-east-1", "123456789012"),
            client,
        )

    assert requests["fixture-Dead"]["DeadLetterConfig"] == {"TargetArn": created.attribute("DeadLetters", "Arn")}
    assert "DeadLetterConfig" not in requests["fixture-EchoFunction"]
