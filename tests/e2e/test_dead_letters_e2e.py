"""What the dead-letter queues would keep holds no secret, proved by the leak audit on a whole mission.

A mission runs on the local stack with every function the real handler (the scan through EventBridge, approvals on
the emulated phone, the executor, the resume), then the kill switch is triggered and re-armed by direct
asynchronous invokes. Every asynchronous event the two functions with a dead-letter queue received (the agent's
scan; the kill switch's execution status changes and direct invokes) is then sent to that function's queue, as
Lambda sends an event that failed every attempt: its body the event, with the RequestID, ErrorCode and
ErrorMessage attributes. The local stack's Lambda runtime neither retries nor dead-letters, so the test sends what
Lambda would, for every such event rather than for the few that would fail.

The leak audit then searches the queues for every secret of the run: the emulator's tokens and client secrets, the
STS credentials, and the approval function's task tokens. It finds none. The same audit finds the task token in an
approval event sent to a queue: the reason the approval function has none (template.yaml, its checkov skip).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aegis_local.aws.stack import LocalStack, default_template_path
from aegis_local.aws.template import load_template
from aegis_local.reporting.leak_audit import audit_sources, audit_stack, fingerprint, sqs_places
from aegis_local.scenario.demo import Console, DemoOptions, run_on_stack, stack_arguments
from aegis_local.scenario.phone import ApprovalPolicy

pytestmark = pytest.mark.e2e

CHECKS = ("ec2-ebs-default-encryption-off", "s3-account-public-access-block-off")


def dead_letter_queues() -> dict[str, str]:
    """Function logical id -> the logical id of its dead-letter queue, as template.yaml declares them."""
    resources = load_template(default_template_path())["Resources"]
    return {
        function: body["Properties"]["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]
        for function, body in resources.items()
        if body["Type"] == "AWS::Serverless::Function" and "DeadLetterQueue" in body.get("Properties", {})
    }


class Received:
    """The events (and request ids) each watched function received, its real handler running as usual."""

    def __init__(self, functions: list[str]) -> None:
        self.events: dict[str, list[tuple[str, Any]]] = {function: [] for function in functions}

    def interceptor(self, function: str) -> Callable[[Any, Any, Callable[[Any, Any], Any]], Any]:
        def intercept(event: Any, context: Any, handler: Callable[[Any, Any], Any]) -> Any:
            self.events[function].append((context.aws_request_id, copy.deepcopy(event)))
            return handler(event, context)

        return intercept


def dead_letter(sqs: Any, queue_url: str, request_id: str, event: Any) -> None:
    """What Lambda sends to a function's dead-letter queue after the last failed attempt of an asynchronous event."""
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(event),
        MessageAttributes={
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": "every attempt failed"},
        },
    )


def test_the_dead_letter_queues_would_keep_no_secret_and_the_approval_event_would(tmp_path: Path) -> None:
    queues = dead_letter_queues()
    assert set(queues) == {"AgentScanFunction", "KillSwitchFunction"}
    received = Received([*queues, "ApprovalFunction"])
    options = DemoOptions(policy=ApprovalPolicy(approve_all=True), checks=CHECKS, report_dir=tmp_path / "reports")
    with LocalStack(**stack_arguments(options)) as stack, contextlib.ExitStack() as watching:
        for function in received.events:
            watching.enter_context(stack.lambdas.intercept(function, received.interceptor(function)))
        result = run_on_stack(stack, options, Console(io.StringIO()))
        assert result.report.status == "completed"
        lambda_client = stack.client("lambda")
        for action in ("trigger", "rearm"):
            answer = lambda_client.invoke(
                FunctionName=stack.physical_id("KillSwitchFunction"),
                InvocationType="Event",
                Payload=json.dumps({"action": action, "reason": "dead-letter drill", "requested_by": "e2e"}),
            )
            assert answer["StatusCode"] == 202
            assert stack.lambdas.wait_idle(60)
        stack.drain_streams()
        assert stack.lambdas.wait_idle(60)

        sqs = stack.client("sqs")
        declared = load_template(default_template_path())["Resources"]
        for queue in queues.values():
            # The local stack created each queue as the template declares it, and it is still empty.
            attributes = sqs.get_queue_attributes(QueueUrl=stack.physical_id(queue), AttributeNames=["All"])
            wanted = declared[queue]["Properties"]
            assert attributes["Attributes"]["KmsMasterKeyId"] == wanted["KmsMasterKeyId"]
            assert attributes["Attributes"]["MessageRetentionPeriod"] == str(wanted["MessageRetentionPeriod"])
            assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
        for function, queue in queues.items():
            for request_id, event in received.events[function]:
                dead_letter(sqs, stack.physical_id(queue), request_id, event)
        task_tokens = [event["task_token"] for _, event in received.events["ApprovalFunction"] if "task_token" in event]
        secrets = {
            "Auth0 emulator: client secrets and tokens": sorted(stack.emulator.issued_secrets()),
            "STS credentials": stack.issued_aws_credentials(),
            "Step Functions task tokens": task_tokens,
        }
        queue_names = {
            function: str(stack.resources.attribute(queue, "QueueName")) for function, queue in queues.items()
        }
        audited = audit_sources(secrets, sqs_places(stack.session()))
        # The whole-stack audit reads the queues too. Task tokens are left out of it: Step Functions keeps each in
        # its execution's history (the task's scheduled parameters), by design.
        whole = audit_stack(
            stack.session(), [*secrets["Auth0 emulator: client secrets and tokens"], *secrets["STS credentials"]]
        )

        # The control: an approval event, where a queue of the approval function would keep it.
        control_url = sqs.create_queue(QueueName="approval-would-be-dlq")["QueueUrl"]
        request_id, approval_event = next(
            (request_id, event) for request_id, event in received.events["ApprovalFunction"] if "task_token" in event
        )
        dead_letter(sqs, control_url, request_id, approval_event)
        control = audit_sources(secrets, sqs_places(stack.session()))

    scans = [event for _, event in received.events["AgentScanFunction"]]
    assert [event["source"] for event in scans] == ["aegis.scan"]
    kill_switch_events = [event for _, event in received.events["KillSwitchFunction"]]
    ended = [event for event in kill_switch_events if event.get("source") == "aws.states"]
    direct = [event for event in kill_switch_events if "action" in event]
    assert {event["detail"]["status"] for event in ended} == {"SUCCEEDED"}
    assert [event["action"] for event in direct] == ["trigger", "rearm"]
    assert len(task_tokens) >= len(CHECKS)

    assert audited.hits == []
    # Each dead letter searched (other queues, if the stack has any, are searched too).
    expected = {
        f"queue {queue_names['AgentScanFunction']}": len(scans),
        f"queue {queue_names['KillSwitchFunction']}": len(kill_switch_events),
    }
    assert {place: count for place, count in audited.places.items() if place in expected} == expected
    assert audited.sources["Step Functions task tokens"] == len(set(task_tokens))
    assert audited.sources["Auth0 emulator: client secrets and tokens"] > 10
    assert audited.sources["STS credentials"] > 0
    assert whole.hits == []
    assert set(whole.places) >= set(expected)
    assert [hit.fingerprint for hit in control.hits] == [fingerprint(approval_event["task_token"])]
    assert control.hits[0].place.startswith("sqs:approval-would-be-dlq")
