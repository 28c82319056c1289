"""The chainer links records in the order the stream delivers them, links each once however often a batch is retried,
anchors the head when a mission ends, and exports the finished trail to the Object Lock bucket."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from aegis.audit import AuditLog, read_trail
from aegis.audit_chain import HEAD_ATTRIBUTE, LINK, POSITION, ChainHead, stored_head, verify_mission
from aegis_auditchain.errors import RecordMalformed
from aegis_auditchain.service import AuditChainer, InsertedRecord, TrailExport
from tests.support.agent_world import POWERTOOLS_ENV, LambdaContext
from tests.support.lambda_app import load_app
from tests.support.stack import create_declared_tables

MISSION = "m-20261203-chainer"
_serialize = TypeSerializer().serialize


@pytest.fixture
def tables(aws: boto3.Session) -> dict[str, Any]:
    declared = create_declared_tables(aws.resource("dynamodb"), {"audit": "AuditTable", "missions": "MissionsTable"})
    declared["missions"].put_item(Item={"mission_id": MISSION, "status": "scanning"})
    return declared


def _inserted(item: dict[str, Any]) -> InsertedRecord:
    return InsertedRecord(item["mission_id"], item["seq"], item)


def test_a_retried_batch_links_nothing_twice(tables: dict[str, Any]) -> None:
    log = AuditLog(tables["audit"], actor="agent")
    batch = [_inserted(log.append(MISSION, f"step.{i}", "ok")) for i in range(4)]
    chainer = AuditChainer(tables["audit"], tables["missions"])
    first = chainer.link_all(batch[:3])
    again = chainer.link_all(batch)  # Lambda retries the whole batch after a failure on its last record
    assert again[:3] == first
    assert [h.position for h in again] == [1, 2, 3, 4]
    assert verify_mission(tables["audit"], tables["missions"], MISSION).intact


def test_concurrent_writers_are_chained_in_commit_order(tables: dict[str, Any]) -> None:
    """Approvals and executions of one mission write at once; none reads another's record, the chain still holds."""
    committed: list[dict[str, Any]] = []
    lock = threading.Lock()

    def writer(actor: str) -> None:
        log = AuditLog(tables["audit"], actor=actor)
        for i in range(10):
            item = log.append(MISSION, f"{actor}.step", "ok", n=i)
            with lock:
                committed.append(item)

    threads = [threading.Thread(target=writer, args=(actor,)) for actor in ("approval", "executor", "agent")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    AuditChainer(tables["audit"], tables["missions"]).link_all(_inserted(item) for item in committed)
    verdict = verify_mission(tables["audit"], tables["missions"], MISSION)
    assert verdict.intact, verdict.summary()
    assert verdict.linked == 30
    by_position = sorted(read_trail(tables["audit"], MISSION), key=lambda r: int(r[POSITION]))
    assert [r["seq"] for r in by_position] == [item["seq"] for item in committed]


def test_the_head_is_anchored_once_the_terminal_record_is_linked_and_never_moved_back(tables: dict[str, Any]) -> None:
    log = AuditLog(tables["audit"], actor="agent")
    chainer = AuditChainer(tables["audit"], tables["missions"])
    chainer.link(_inserted(log.append(MISSION, "mission.created", "ok")))
    assert stored_head(tables["missions"], MISSION) is None
    completed = log.append(MISSION, "mission.completed", "completed")
    head = chainer.link(_inserted(completed))
    assert stored_head(tables["missions"], MISSION) == head == ChainHead(2, head.link, completed["seq"])
    later = chainer.link(_inserted(log.append(MISSION, "mission.failed", "Agent.Crashed")))
    assert stored_head(tables["missions"], MISSION) == later
    chainer.link(_inserted(completed))  # a retried batch replays the older terminal record
    assert stored_head(tables["missions"], MISSION) == later


def test_a_terminal_record_of_an_unknown_mission_stores_no_head(tables: dict[str, Any]) -> None:
    item = AuditLog(tables["audit"], actor="agent").append("m-unknown", "mission.failed", "x")
    AuditChainer(tables["audit"], tables["missions"]).link(_inserted(item))
    assert tables["missions"].get_item(Key={"mission_id": "m-unknown"}).get("Item") is None


def test_a_record_deleted_before_it_was_linked_leaves_a_husk_that_verify_names(tables: dict[str, Any]) -> None:
    """The chainer never reads the record: it links what the writer wrote (the stream's image). If the record is
    gone by then, the update leaves only its keys and links, which no longer match."""
    log = AuditLog(tables["audit"], actor="agent")
    kept = log.append(MISSION, "mission.created", "ok")
    removed = log.append(MISSION, "approval.granted", "ok")
    tables["audit"].delete_item(Key={"mission_id": MISSION, "seq": removed["seq"]})
    AuditChainer(tables["audit"], tables["missions"]).link_all([_inserted(kept), _inserted(removed)])
    verdict = verify_mission(tables["audit"], tables["missions"], MISSION)
    assert verdict.problem is not None
    assert (verdict.problem.kind.value, verdict.problem.seq) == ("changed", removed["seq"])


def test_a_finished_trail_is_exported_under_compliance_retention(aws: boto3.Session, tables: dict[str, Any]) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="aegis-audit-export", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket="aegis-audit-export",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    chainer = AuditChainer(tables["audit"], tables["missions"], TrailExport(s3, "aegis-audit-export"))
    log = AuditLog(tables["audit"], actor="agent")
    chainer.link(_inserted(log.append(MISSION, "mission.created", "ok")))
    head = chainer.link(_inserted(log.append(MISSION, "mission.completed", "completed", findings=2)))

    key = TrailExport.key(MISSION, head)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="aegis-audit-export")["Contents"]] == [key]
    exported = json.loads(s3.get_object(Bucket="aegis-audit-export", Key=key)["Body"].read())
    assert exported["head"] == head.as_item()
    assert [r["action"] for r in exported["records"]] == ["mission.created", "mission.completed"]
    assert [r[LINK] for r in exported["records"]][-1] == head.link
    assert "intact" in exported["verdict"]
    head_of_object = s3.head_object(Bucket="aegis-audit-export", Key=key)
    assert head_of_object["ObjectLockMode"] == "COMPLIANCE"
    version = head_of_object["VersionId"]
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket="aegis-audit-export", Key=key, VersionId=version)


def _stream_event(*records: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventID": str(index),
                "eventName": name,
                "eventSource": "aws:dynamodb",
                "dynamodb": {"NewImage": {k: _serialize(v) for k, v in image.items()}},
            }
            for index, (name, image) in enumerate(records)
        ]
    }


def test_the_handler_links_insertions_only(tables: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**POWERTOOLS_ENV, "AUDIT_TABLE": tables["audit"].name}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MISSIONS_TABLE", tables["missions"].name)
    app = load_app("auditchain")
    log = AuditLog(tables["audit"], actor="agent")
    first, second = log.append(MISSION, "a", "ok"), log.append(MISSION, "b", "ok")
    answer = app.handler(
        _stream_event(("INSERT", first), ("MODIFY", {**first, POSITION: 1}), ("INSERT", second)), LambdaContext()
    )
    assert answer == {"linked": 2}
    assert verify_mission(tables["audit"], tables["missions"], MISSION).linked == 2
    with pytest.raises(RecordMalformed):
        app.handler(_stream_event(("INSERT", {"action": "no keys"})), LambdaContext())
    assert HEAD_ATTRIBUTE not in tables["missions"].get_item(Key={"mission_id": MISSION})["Item"]
