"""Faults injected at a function's AWS calls (aegis_local.aws.lambdas.faults), on the router's real runtime: a test
function writing DynamoDB items to moto's server (as the local stack runs it), its process "dying" before or after a
call, or moto's answer replaced by an error."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from aegis_local.aws.lambdas import DIE, AwsError, AwsFault, FaultHooks, FunctionEnvironment, LambdaRouter
from aegis_local.aws.lambdas.faults import FaultInjector, _service_names, error_answer
from tests.unit.local.aws.lambda_router import HERE, function_spec

FUNCTIONS = HERE / "lambda_functions"
PUT = "dynamodb:PutItem"
# moto accepts any credentials; these are what the functions and the test sign with.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server, as the local stack runs it (in-process moto would also serve a request a fault answered)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class Table:
    """The functions' table on moto's server, read by the test with a client of its own."""

    name: str
    moto_url: str

    def client(self) -> Any:
        return boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=self.moto_url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self) -> set[str]:
        return {item["id"]["S"] for item in self.client().scan(TableName=self.name)["Items"]}


@pytest.fixture
def table(moto_url: str) -> Table:
    created = Table(f"fault-items-{uuid.uuid4().hex[:8]}", moto_url)
    created.client().create_table(
        TableName=created.name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return created


@pytest.fixture
def router(table: Table) -> Iterator[LambdaRouter]:
    FaultHooks.install()
    FunctionEnvironment.install()
    routed = LambdaRouter(
        [function_spec("Writer", FUNCTIONS / "aws_caller"), function_spec("OtherWriter", FUNCTIONS / "aws_caller")],
        runtime_environment={
            **CREDENTIALS,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": table.moto_url,
        },
    )
    try:
        yield routed
    finally:
        routed.wait_idle(5)
        routed.close()
        FunctionEnvironment.uninstall()
        FaultHooks.uninstall()


def invoke(
    router: LambdaRouter, table: Table, function: str, *keys: str, cleanup: bool = False
) -> tuple[str | None, Any]:
    result = router.invoke(function, json.dumps({"table": table.name, "keys": list(keys), "cleanup": cleanup}))
    return result.function_error, result.json()


def test_a_death_after_a_call_leaves_the_call_applied_and_fails_as_a_process_exit(
    router: LambdaRouter, table: Table
) -> None:
    # A warm container whose client was made before the fault was armed: the fault still reaches that client.
    assert invoke(router, table, "Writer", "warm-up") == (None, {"written": ["warm-up"], "invocations": 1})

    with router.faults.inject(AwsFault(function="Writer", operation=PUT, when="after", effect=DIE)) as fired:
        error, payload = invoke(router, table, "Writer", "first", "second")

    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error" in payload["errorMessage"]
    # AWS applied the call the function died after; the function never went on to the next one.
    assert table.keys() == {"warm-up", "first"}
    (record,) = [r for r in router.records("Writer") if r.error_type is not None]
    assert record.error_type == "Runtime.ExitError"
    assert [(f.function_name, f.request_id, f.operation, f.when, f.effect) for f in fired] == [
        ("test-Writer", payload["requestId"], PUT, "after", "died")
    ]
    # The dead container is gone: the next invocation is a cold start, with no fault left to fire.
    assert invoke(router, table, "Writer", "third") == (None, {"written": ["third"], "invocations": 1})


def test_a_death_before_a_call_means_the_call_never_reached_aws(router: LambdaRouter, table: Table) -> None:
    with router.faults.inject(AwsFault(function="Writer", operation=PUT, when="before", effect=DIE)) as fired:
        error, payload = invoke(router, table, "Writer", "first")

    assert (error, payload["errorType"]) == ("Unhandled", "Runtime.ExitError")
    assert table.keys() == set()
    assert len(fired) == 1


def test_finally_blocks_still_run_after_a_thread_death(router: LambdaRouter, table: Table) -> None:
    """The documented limit of a thread "death": unlike a killed process, the handler's `finally` still runs."""
    fault = AwsFault(
        function="Writer", operation=PUT, when="before", matches=lambda params: params["Item"]["id"] == "a"
    )
    with router.faults.inject(fault):
        error, _ = invoke(router, table, "Writer", "a", cleanup=True)

    assert error == "Unhandled"
    assert table.keys() == {"cleanup"}


def test_a_fault_fires_only_on_the_calls_its_predicate_matches_and_only_times_times(
    router: LambdaRouter, table: Table
) -> None:
    fault = AwsFault(
        function="Writer", operation=PUT, when="after", times=1, matches=lambda params: params["Item"]["id"] == "b"
    )
    with router.faults.inject(fault) as fired:
        assert invoke(router, table, "Writer", "a")[0] is None
        assert invoke(router, table, "Writer", "b", "c")[1]["errorType"] == "Runtime.ExitError"
        # Its one firing is used: the same call now goes through.
        assert invoke(router, table, "Writer", "b", "c")[0] is None

    assert table.keys() == {"a", "b", "c"}
    assert len(fired) == 1


def test_a_fault_hits_only_the_function_it_names_and_never_the_test_itself(router: LambdaRouter, table: Table) -> None:
    with router.faults.inject(AwsFault(function="Writer", operation=PUT, when="before")) as fired:
        # The same code as another function, and the test's own client: neither runs in Writer's scope.
        assert invoke(router, table, "OtherWriter", "other") == (None, {"written": ["other"], "invocations": 1})
        table.client().put_item(TableName=table.name, Item={"id": {"S": "test"}})

    assert fired == []
    # Disarmed at the end of the block.
    assert invoke(router, table, "Writer", "after-block")[0] is None
    assert table.keys() == {"other", "test", "after-block"}


def test_an_error_answer_is_what_the_function_code_receives_in_place_of_aws(router: LambdaRouter, table: Table) -> None:
    effect = AwsError("ConditionalCheckFailedException", "The conditional request failed")
    with router.faults.inject(AwsFault(function="Writer", operation=PUT, effect=effect)) as fired:
        error, payload = invoke(router, table, "Writer", "refused")

    assert error is None
    assert payload["error"]["Code"] == "ConditionalCheckFailedException"
    assert payload["error"]["Message"] == "The conditional request failed"
    assert payload["written"] == []
    assert table.keys() == set()
    assert [(f.when, f.effect) for f in fired] == [("before", "ConditionalCheckFailedException")]


def test_throttling_answers_are_retried_by_botocore_as_aws_throttling_is(router: LambdaRouter, table: Table) -> None:
    fault = AwsFault(
        function="Writer", operation=PUT, effect=AwsError("ProvisionedThroughputExceededException"), times=2
    )
    with router.faults.inject(fault) as fired:
        assert invoke(router, table, "Writer", "eventually") == (None, {"written": ["eventually"], "invocations": 1})

    # Each attempt of botocore's retry loop is one answer: two throttled, the third reached moto.
    assert len(fired) == 2
    assert table.keys() == {"eventually"}


def test_error_answers_are_serialized_as_moto_serializes_them_for_each_protocol() -> None:
    session = boto3.Session(region_name="us-east-1")._session
    ec2 = session.get_service_model("ec2").operation_model("EnableEbsEncryptionByDefault")
    answer = error_answer(ec2, AwsError("UnauthorizedOperation", "no"))
    assert answer.status_code == 400
    assert b"<Code>UnauthorizedOperation</Code>" in answer.content
    dynamodb = session.get_service_model("dynamodb").operation_model("PutItem")
    answer = error_answer(dynamodb, AwsError("ProvisionedThroughputExceededException"))
    assert answer.status_code == 400
    assert json.loads(answer.content)["__type"].endswith("#ProvisionedThroughputExceededException")


def test_a_fault_names_its_service_as_iam_or_botocore_spell_it() -> None:
    session = boto3.Session(region_name="us-east-1")._session
    send = session.get_service_model("stepfunctions").operation_model("SendTaskSuccess")
    assert {"states", "sfn", "stepfunctions"} <= _service_names(send)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"operation": "PutItem"}, "service:Operation"),
        ({"operation": "dynamodb:"}, "service:Operation"),
        ({"operation": PUT, "times": 0}, "at least 1"),
        ({"operation": PUT, "when": "after", "effect": AwsError("ThrottlingException")}, "only be injected 'before'"),
        ({"operation": PUT, "when": "during"}, "'before' or 'after'"),
    ],
)
def test_a_fault_that_cannot_happen_is_refused_when_it_is_written(arguments: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AwsFault(function="Writer", **arguments)


def test_faults_need_the_hooks_a_running_stack_installs() -> None:
    injector = FaultInjector(lambda name: name)
    with pytest.raises(RuntimeError, match="no fault hooks installed"), injector.inject(AwsFault("Writer", PUT)):
        pass
