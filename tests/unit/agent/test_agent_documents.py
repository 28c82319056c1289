"""Mission documents: what the state refers to by digest (findings, plan, results, re-scan, report) is stored as pages
in the Missions table, read back exactly or not at all, and never stored when it carries a secret-shaped string. A
mission whose documents no longer match its state fails by name; the graph takes only a stored results document as
the answer to its approval request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from aegis.audit import read_trail
from aegis.missions_keys import mission_id_for_event
from aegis.secrets_guard import SecretShapedValue
from aegis_agent import missions as missions_module
from aegis_agent.errors import DocumentInvalid, MalformedResume
from aegis_agent.missions import MissionStore, document_page_key
from aegis_agent.state import DocumentRef, Plan, ScanRecord
from tests.support.agent_world import (
    ACCOUNT,
    FakeScanner,
    all_items,
    approved,
    bucket_finding,
    build_service,
    ebs_finding,
    executions,
    scheduled_event,
    settings,
)

MISSION = "m-0123456789abcdef0123"


def scan_record(buckets: int) -> ScanRecord:
    return ScanRecord(account_id=ACCOUNT, findings=tuple(bucket_finding(f"bucket-{i:03d}") for i in range(buckets)))


def pages_of(tables: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return sorted(
        (i for i in all_items(tables["Missions"]) if i.get("record") == f"{name}-page"), key=lambda i: i["page"]
    )


def test_a_document_is_stored_in_pages_and_read_back_exactly(
    tables: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(missions_module, "DOCUMENT_PAGE_CHARS", 500)
    store = MissionStore(tables["Missions"])
    record = scan_record(12)
    ref = store.write_document(MISSION, "scan", record)
    pages = pages_of(tables, "scan")
    assert ref.pages == len(pages) > 5
    assert [p["mission_id"] for p in pages] == [document_page_key(MISSION, "scan", i) for i in range(ref.pages)]
    assert all(len(p["body"]) <= 500 and p["mission"] == MISSION for p in pages)
    assert store.read_document(MISSION, ref, ScanRecord) == record
    # Writing it again (a node that runs again) rewrites the same pages: same reference, same items.
    assert store.write_document(MISSION, "scan", record) == ref
    assert len(pages_of(tables, "scan")) == ref.pages


def test_a_changed_or_missing_page_or_another_model_is_a_named_error(tables: dict[str, Any]) -> None:
    store = MissionStore(tables["Missions"])
    ref = store.write_document(MISSION, "scan", scan_record(3))
    with pytest.raises(DocumentInvalid, match="is not a Plan"):
        store.read_document(MISSION, ref, Plan)
    with pytest.raises(DocumentInvalid, match="page 1 of the scan document"):
        store.read_document(MISSION, ref.model_copy(update={"pages": 2}), ScanRecord)

    key = {"mission_id": document_page_key(MISSION, "scan", 0)}
    page = tables["Missions"].get_item(Key=key)["Item"]
    tables["Missions"].put_item(Item=page | {"body": page["body"].replace("bucket-001", "bucket-00X")})
    with pytest.raises(DocumentInvalid, match="does not match its digest"):
        store.read_document(MISSION, ref, ScanRecord)
    tables["Missions"].delete_item(Key=key)
    with pytest.raises(DocumentInvalid, match="page 0 of the scan document"):
        store.read_document(MISSION, ref, ScanRecord)


def test_a_secret_shaped_value_refuses_the_whole_document_and_stores_nothing(tables: dict[str, Any]) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHwxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    record = ScanRecord(
        account_id=ACCOUNT, findings=(bucket_finding("fine"), bucket_finding("leaky", note=f"token {token}"))
    )
    with pytest.raises(SecretShapedValue) as refused:
        MissionStore(tables["Missions"]).write_document(MISSION, "scan", record)
    # Model fields are named; a dict entry is named by position, never by its key.
    assert (refused.value.kind, refused.value.where) == ("jwt", "mission.scan.findings[1].evidence{1}")
    assert all_items(tables["Missions"]) == []


def test_a_plan_document_changed_while_awaiting_approval_fails_the_resume_by_name(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner([bucket_finding("open-data"), ebs_finding()])
    started = build_service(aws, scanner, settings()).start_mission(scheduled_event())
    mission_id = mission_id_for_event(scheduled_event()["id"])
    change_ids = [
        c["change_id"]
        for c in json.loads(sfn.describe_execution(executionArn=started["execution_arn"])["input"])["changes"]
    ]
    # Someone re-targets a change in the stored plan after it went out for approval.
    key = {"mission_id": document_page_key(mission_id, "plan", 0)}
    page = tables["Missions"].get_item(Key=key)["Item"]
    tables["Missions"].put_item(Item=page | {"body": page["body"].replace("open-data", "other-data")})

    with pytest.raises(DocumentInvalid):
        build_service(aws, scanner, settings()).resume_mission(
            {"mission_id": mission_id, "results": approved(change_ids)}
        )
    mission = tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"]
    assert (mission["status"], mission["error"]) == ("failed", "Agent.DocumentInvalid")
    [failed] = [i for i in read_trail(tables["Audit"], mission_id) if i["action"] == "mission.failed"]
    assert failed["outcome"] == "Agent.DocumentInvalid"
    assert "report_pages" not in mission
    assert len(scanner.calls) == 1  # no re-scan ran
    assert len(executions(sfn)) == 1


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        # Results inline (what the state machine sends to the resume entry) are not an answer the graph takes.
        (lambda change_ids: {"results": approved(change_ids)}, MalformedResume),
        # Nor is a reference to a results document that was never stored.
        (
            lambda change_ids: {
                "results_document": DocumentRef(name="results", pages=1, digest="0" * 64).model_dump(mode="json")
            },
            DocumentInvalid,
        ),
        # Nor a reference to another of the mission's documents.
        (
            lambda change_ids: {
                "results_document": DocumentRef(name="plan", pages=1, digest="0" * 64).model_dump(mode="json")
            },
            MalformedResume,
        ),
    ],
)
def test_the_graph_takes_only_a_stored_results_document_as_the_answer(
    aws: Any, tables: dict[str, Any], sfn: Any, answer: Any, refusal: type[Exception]
) -> None:
    scanner = FakeScanner([bucket_finding("open-data")])
    service = build_service(aws, scanner, settings())
    service.start_mission(scheduled_event())
    config: RunnableConfig = {"configurable": {"thread_id": mission_id_for_event(scheduled_event()["id"])}}
    [pending] = service.graph.get_state(config).interrupts
    with pytest.raises(refusal):
        service.graph.invoke(Command(resume={pending.id: answer(pending.value["change_ids"])}), config)
    assert len(scanner.calls) == 1  # nothing ran past the approval request
