"""The load benchmark: the conditional conflicts it counts (every boto3 client of the process, by operation and
table), the goal it judges (errors, x2 the single mission), and a real run of two account missions at once on the
local stack, whose figures come back consistent with each other."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bench import load
from bench.load import ConflictCounter, LoadRow, MissionTime, verdict

TABLE = "bench-load-conflicts"


@pytest.fixture
def dynamodb() -> object:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def put_once(client: object, key: str) -> None:
    client.put_item(  # type: ignore[attr-defined]
        TableName=TABLE, Item={"pk": {"S": key}}, ConditionExpression="attribute_not_exists(pk)"
    )


def test_a_failed_condition_is_counted_by_operation_and_table_from_any_client(dynamodb: object) -> None:
    counter = ConflictCounter()
    with counter.installed():
        put_once(dynamodb, "a")
        # A client of its own session, as a function builds it: still seen.
        other = boto3.Session(region_name="us-east-1").client("dynamodb")
        for client in (dynamodb, other):
            with pytest.raises(ClientError, match="ConditionalCheckFailed"):
                put_once(client, "a")
        # Another error of DynamoDB is no conflict.
        with pytest.raises(ClientError, match="ResourceNotFound"):
            other.get_item(TableName="missing", Key={"pk": {"S": "a"}})
    assert counter.snapshot() == {("PutItem", TABLE, "- (first attribute of the item)"): 2}
    # Uninstalled: nothing more is counted.
    with pytest.raises(ClientError):
        put_once(dynamodb, "a")
    assert counter.total == 2


def test_conflicts_on_one_kind_of_key_are_told_apart_by_its_prefix_never_its_value(dynamodb: object) -> None:
    counter = ConflictCounter()
    never = "attribute_exists(pk) AND pk = :other"
    with counter.installed():
        for _ in range(3):  # a hot key: the same approver's pacing item, through a low-level client
            with pytest.raises(ClientError, match="ConditionalCheckFailed"):
                dynamodb.update_item(  # type: ignore[attr-defined]
                    TableName=TABLE,
                    Key={"pk": {"S": "pace#auth0|approver"}},
                    UpdateExpression="SET v = :other",
                    ConditionExpression=never,
                    ExpressionAttributeValues={":other": {"S": "x"}},
                )
        table = boto3.Session(region_name="us-east-1").resource("dynamodb").Table(TABLE)
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):  # a resource's untyped key
            table.update_item(
                Key={"pk": "m-0123456789abcdef0123"},
                UpdateExpression="SET v = :other",
                ConditionExpression=never,
                ExpressionAttributeValues={":other": "x"},
            )
    assert counter.snapshot() == {("UpdateItem", TABLE, "pace#"): 3, ("UpdateItem", TABLE, "m-"): 1}


def test_a_transaction_cancelled_by_a_condition_counts_its_failed_items(dynamodb: object) -> None:
    counter = ConflictCounter()
    with counter.installed():
        put_once(dynamodb, "taken")
        with pytest.raises(ClientError, match="TransactionCanceled"):
            dynamodb.transact_write_items(  # type: ignore[attr-defined]
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "free"}}}},
                    {
                        "Put": {
                            "TableName": TABLE,
                            "Item": {"pk": {"S": "taken"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
    assert counter.snapshot() == {("TransactWriteItems", TABLE, "- (first attribute of the item)"): 1}


def row(missions: int, seconds: list[float], errors: list[str] | None = None) -> LoadRow:
    return LoadRow(
        missions=missions,
        seed_seconds=0.0,
        load_average=0.0,
        last_completion=max(seconds),
        per_mission=[
            MissionTime(f"{index:012d}", f"m-{index:020x}", "completed", value, 5, 5)
            for index, value in enumerate(seconds)
        ],
        invocations=1,
        most_in_flight=1,
        most_executions=1,
        executions=1,
        conflicts={},
        pushes={"auth0|a": missions},
        failed_invocations={},
        errors=errors or [],
        peak_rss_mb=1.0,
        cpu_seconds=1.0,
        run_seconds=2.0,
        mission_starts_spread=0.0,
        map_concurrency=1,
    )


def test_the_goal_is_judged_on_the_slowest_mission_against_the_single_one_and_on_errors() -> None:
    single = row(1, [10.0])
    assert verdict([single, row(5, [12.0, 19.0, 20.0, 11.0, 15.0])]) == []
    over = verdict([single, row(20, [12.0] * 19 + [20.5])])
    assert over == [
        "20 missions: the slowest took 20.5 s, x2.05 the single mission's 10.0 s (goal <= x2)",
    ]
    assert verdict([single, row(5, [11.0] * 5, errors=["Lambda ExecutorFunction: Sandbox.Timedout x1"])]) == [
        "5 missions: 1 error(s)"
    ]
    assert verdict([row(5, [11.0] * 5)]) == ["no completed single mission to compare with"]


def test_the_table_prints_each_size_and_what_misses_the_goal(capsys: pytest.CaptureFixture[str]) -> None:
    missed = load.report([row(1, [10.0]), row(5, [25.0] * 5, errors=["execution m-1 ended FAILED"])])
    out = capsys.readouterr().out
    table = out.split("## Missions started at once")[1]
    sizes = [line.split()[0] for line in table.splitlines()[3:5]]
    assert sizes == ["1", "5"]
    assert "ERROR: execution m-1 ended FAILED" in out
    assert "over the goal: 5 missions: 1 error(s)" in out
    assert len(missed) == 2


@pytest.mark.e2e
def test_two_missions_at_once_on_two_accounts_complete_with_consistent_figures() -> None:
    measured = load.measure(2, timeout_seconds=300)
    assert measured.errors == []
    assert [m.status for m in measured.per_mission] == ["completed", "completed"]
    assert len({m.account_id for m in measured.per_mission}) == 2
    # Each seeded account plans its handful of changes, and every one is applied in it.
    assert all(m.changes == m.applied > 0 for m in measured.per_mission)
    assert measured.last_completion == max(m.seconds or 0.0 for m in measured.per_mission) > 0
    assert 1 <= measured.most_in_flight <= measured.invocations
    # The organization scan's execution and one per mission; the two missions' ran together.
    assert measured.executions == 3
    assert measured.most_executions >= 2
    assert measured.map_concurrency == 2
    assert measured.peak_rss_mb > 0
    assert measured.cpu_seconds > 0
