"""What the agent writes for the ops API to read without a scan: mission items marked for the `ByCreated` index
(`listing`), and for every check a mission ran, a `latest-findings#<check id>` item naming the newest mission whose
report covers it (put only if none is newer)."""

from __future__ import annotations

from typing import Any

import pytest

from aegis import missions_keys
from aegis_agent.errors import GraphFailed
from aegis_agent.missions import MissionStore
from tests.support.agent_world import (
    BUCKET_CHECK,
    EBS_CHECK,
    REGION,
    ROOT_KEYS_CHECK,
    Clock,
    FakeScanner,
    all_items,
    approved,
    bucket_finding,
    build_service,
    ebs_finding,
    root_keys_finding,
    scan_event,
    scheduled_event,
    settings,
)

ALL_CHECKS = {BUCKET_CHECK, EBS_CHECK, ROOT_KEYS_CHECK}


def latest(tables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    prefix = missions_keys.LATEST_FINDINGS_PREFIX
    return {i["check_id"]: i for i in all_items(tables["Missions"]) if str(i["mission_id"]).startswith(prefix)}


def test_only_mission_items_are_listed(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    outcome = build_service(aws, FakeScanner([root_keys_finding()]), settings()).start_mission(scheduled_event())
    items = all_items(tables["Missions"])
    listed = [i["mission_id"] for i in items if missions_keys.LISTING_ATTRIBUTE in i]
    assert listed == [outcome["mission_id"]]
    [item] = [i for i in items if i["mission_id"] == outcome["mission_id"]]
    assert item[missions_keys.LISTING_ATTRIBUTE] == missions_keys.MISSION_LISTING
    assert item["created_at"]  # the index's range key
    # Document pages and latest-findings items exist, and none of them is listed.
    assert any("record" in i for i in items)
    assert latest(tables)


def test_a_completed_mission_becomes_the_latest_for_every_check_it_ran(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    outcome = build_service(aws, FakeScanner([root_keys_finding()]), settings()).start_mission(scheduled_event())
    assert (outcome["status"], outcome["plan_status"]) == ("completed", "empty")
    items = latest(tables)
    # A full scan ran every check, including those that found nothing.
    assert set(items) == ALL_CHECKS
    report = MissionStore(tables["Missions"]).read_report(outcome["mission_id"])
    assert report is not None
    for check_id, item in items.items():
        assert item["mission_id"] == missions_keys.latest_findings_key(check_id)
        assert (item["latest_mission_id"], item["regions"], item["dry_run"]) == (outcome["mission_id"], [REGION], False)
        assert item["recorded_at"] == report.finished_at
        assert missions_keys.LISTING_ATTRIBUTE not in item


def test_a_mission_awaiting_approval_is_not_the_latest_until_its_report_is_written(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner([ebs_finding()])
    started = build_service(aws, scanner, settings()).start_mission(scheduled_event())
    assert started["status"] == "awaiting_approval"
    assert latest(tables) == {}
    service = build_service(aws, scanner, settings())
    [change_id] = (
        service.graph.get_state({"configurable": {"thread_id": started["mission_id"]}}).values["plan"].change_ids
    )
    service.resume_mission({"mission_id": started["mission_id"], "results": approved([change_id])})
    assert {i["latest_mission_id"] for i in latest(tables).values()} == {started["mission_id"]}


def test_a_newer_mission_replaces_an_older_one_and_never_the_reverse(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    clock = Clock()
    scanner = FakeScanner([bucket_finding("b")])
    older = build_service(aws, scanner, settings(), clock).start_mission(scan_event("older", dry_run=True))
    newer = build_service(aws, scanner, settings(), clock).start_mission(
        scan_event("newer", dry_run=True, checks=[BUCKET_CHECK])
    )
    items = latest(tables)
    # The limited scan covered one check: only that one moved on; the others still name the full scan.
    assert items[BUCKET_CHECK]["latest_mission_id"] == newer["mission_id"]
    assert {items[c]["latest_mission_id"] for c in ALL_CHECKS - {BUCKET_CHECK}} == {older["mission_id"]}
    assert items[BUCKET_CHECK]["dry_run"] is True

    # A report written late (an older recorded_at) changes nothing; an equal one neither.
    store = MissionStore(tables["Missions"])
    request = (
        build_service(aws, scanner, settings())
        .graph.get_state({"configurable": {"thread_id": older["mission_id"]}})
        .values["request"]
    )
    assert store.record_latest_findings(request, [BUCKET_CHECK], "2026-03-01T11:00:00+00:00") == 0
    assert store.record_latest_findings(request, [BUCKET_CHECK], items[BUCKET_CHECK]["recorded_at"]) == 0
    assert latest(tables)[BUCKET_CHECK]["latest_mission_id"] == newer["mission_id"]
    assert store.record_latest_findings(request, [BUCKET_CHECK], "2026-03-02T00:00:00+00:00") == 1
    assert latest(tables)[BUCKET_CHECK]["latest_mission_id"] == older["mission_id"]


def test_a_mission_that_ends_without_a_report_names_nothing(aws: Any, tables: dict[str, Any], sfn: Any) -> None:
    scanner = FakeScanner([root_keys_finding()], fail_with=RuntimeError("collector exploded"))
    with pytest.raises(GraphFailed):
        build_service(aws, scanner, settings()).start_mission(scheduled_event())
    assert latest(tables) == {}
