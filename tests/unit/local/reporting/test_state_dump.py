"""`--dump-state` and the leak audit of a dump: every table item and execution is written as JSON (binary values
searchable as text), the secrets are kept only as SHA-256 fingerprints, and `aegis-local leak-audit DIR` finds a
secret in the dump by its fingerprint alone."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from aegis_local.reporting.leak_audit import (
    audit_fingerprints,
    audit_sources,
    file_places,
    fingerprint,
    full_fingerprint,
)
from aegis_local.reporting.state_dump import FINGERPRINTS_FILE, dump_state, read_fingerprints


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        session.resource("dynamodb").create_table(
            TableName="Checkpoints",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sfn = session.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="mission",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )
        sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="m-1", input='{"mission_id": "m-1"}')
        yield session


def test_a_dump_holds_every_item_and_execution_and_only_fingerprints_of_secrets(
    session: boto3.Session, tmp_path: Path
) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(30) + "." + secrets.token_urlsafe(20)
    sts_secret = secrets.token_urlsafe(30).replace("-", "+").replace("_", "/")
    # A secret inside a binary attribute (as msgpack would store it in a checkpoint blob).
    session.resource("dynamodb").Table("Checkpoints").put_item(
        Item={"PK": "thread#m-1", "blob": b"\x92\xa5token\xd9" + token.encode()}
    )
    log = tmp_path / "logs" / "aegis-local-approval.log"
    log.parent.mkdir()
    log.write_text('{"message": "approval requested"}\n')
    report = tmp_path / "report.json"
    report.write_text('{"mission_id": "m-1"}')
    dump = tmp_path / "dump"

    manifest = dump_state(
        session, dump, logs=[log], reports=[report], secrets_by_source={"emulator": [token], "sts": [sts_secret]}
    )

    assert manifest["tables"] == {"Checkpoints": 1}
    assert manifest["executions"] == 1
    assert (dump / "logs" / "aegis-local-approval.log").is_file()
    assert (dump / "report.json").is_file()
    [item] = json.loads((dump / "tables" / "Checkpoints.json").read_text())["items"]
    assert token in item["blob"]["latin1"]  # a plain text search of the dump finds it
    execution = json.loads((dump / "executions" / "m-1.json").read_text())
    assert json.loads(execution["describe"]["input"]) == {"mission_id": "m-1"}
    assert execution["history"][0]["type"] == "ExecutionStarted"
    fingerprints = read_fingerprints(dump / FINGERPRINTS_FILE)
    assert fingerprints == {full_fingerprint(token): "emulator", full_fingerprint(sts_secret): "sts"}
    assert token not in (dump / FINGERPRINTS_FILE).read_text()

    places = [p for p in file_places([dump], root=dump) if p[0] != f"file:{FINGERPRINTS_FILE}"]
    result = audit_fingerprints(fingerprints, places)
    assert [(hit.place, hit.fingerprint) for hit in result.hits] == [
        ("file:tables/Checkpoints.json", fingerprint(token))
    ]
    assert result.values_searched == 2
    assert result.sources == {"emulator": 1, "sts": 1}


def test_fingerprints_find_secrets_as_tokens_of_json_headers_forms_and_logs() -> None:
    access = "eyJ" + secrets.token_urlsafe(40) + "." + secrets.token_urlsafe(30) + "." + secrets.token_urlsafe(20)
    refresh = secrets.token_urlsafe(32)
    session_token = "FwoGZXIvYXdz" + secrets.token_hex(20) + "+/abc=="
    wanted = {full_fingerprint(value): "issued" for value in (access, refresh, session_token)}
    places = [
        ("json", json.dumps({"token": access})),
        ("header", f"Authorization: Bearer {access}\n"),
        ("form", f"grant_type=refresh_token&refresh_token={refresh}&client_id=x"),
        ("log", f"AWS_SESSION_TOKEN={session_token} used"),
        ("clean", "nothing to see: eyJhbGciOiJIUzI1NiJ9 is only a header"),
    ]
    result = audit_fingerprints(wanted, places)
    assert sorted({hit.place for hit in result.hits}) == ["form", "header", "json", "log"]


def test_the_audit_counts_values_by_source_and_places_by_kind() -> None:
    issued = secrets.token_urlsafe(32)
    result = audit_sources(
        {"emulator": [issued, "short"], "sts": [secrets.token_urlsafe(32)]},
        [("dynamodb:Audit[0]", "x"), ("dynamodb:Audit[1]", f"leaked {issued}"), ("file:a.log", "y")],
        notes=["external tokens are unknown here"],
    )
    assert result.sources == {"emulator": 1, "sts": 1}  # values too short to prove anything are not counted
    assert result.places == {"table Audit": 2, "file": 1}
    assert [hit.place for hit in result.hits] == ["dynamodb:Audit[1]"]
    assert result.notes == ["external tokens are unknown here"]


def test_a_malformed_fingerprint_file_is_refused_by_line(tmp_path: Path) -> None:
    path = tmp_path / FINGERPRINTS_FILE
    path.write_text(f"{'a' * 64}  emulator\nnot-a-digest  sts\n")
    with pytest.raises(ValueError, match="line 2"):
        read_fingerprints(path)
