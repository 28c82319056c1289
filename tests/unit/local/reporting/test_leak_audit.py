from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from aegis_local.reporting.leak_audit import audit, audit_stack, file_places, fingerprint


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        table = session.resource("dynamodb").create_table(
            TableName="Missions",
            KeySchema=[{"AttributeName": "mission_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "mission_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        table.put_item(Item={"mission_id": "m-1", "status": "completed", "blob": b"\x00binary"})
        yield session


def test_a_clean_stack_has_no_hits(session: boto3.Session, tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"mission_id": "m-1"}))
    result = audit_stack(session, {secrets.token_urlsafe(32)}, files=[tmp_path])
    assert result.clean
    assert result.values_searched == 1
    assert result.places_searched == 2  # one item, one file


def test_a_planted_token_is_found_in_a_table_item(session: boto3.Session) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(40)
    session.resource("dynamodb").Table("Missions").put_item(Item={"mission_id": "m-2", "note": f"x {token} y"})
    result = audit_stack(session, {token})
    assert [hit.fingerprint for hit in result.hits] == [fingerprint(token)]
    assert result.hits[0].place.startswith("dynamodb:Missions")
    assert token not in result.model_dump_json()


def test_a_token_inside_a_binary_attribute_is_found(session: boto3.Session) -> None:
    token = secrets.token_urlsafe(32)
    session.resource("dynamodb").Table("Missions").put_item(Item={"mission_id": "m-3", "blob": token.encode()})
    assert not audit_stack(session, {token}).clean


def test_a_token_in_execution_history_is_found(session: boto3.Session) -> None:
    token = secrets.token_urlsafe(32)
    sfn = session.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="mission",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )
    sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="m-4", input=json.dumps({"t": token}))
    result = audit_stack(session, {token})
    assert any(hit.place.startswith("stepfunctions:m-4") for hit in result.hits)


def test_a_token_in_a_log_file_is_found(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "approval.log").write_text(f'{{"message": "got {token}"}}\n')
    result = audit({token, "short"}, file_places([tmp_path]))
    assert result.values_searched == 1  # values shorter than 8 characters prove nothing and are skipped
    assert [hit.place for hit in result.hits] == ["file:approval.log"]
