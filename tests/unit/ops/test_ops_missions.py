"""GET /missions (newest first, paged, never a scan), GET /missions/{id} (findings, changes with before/after,
decisions, outcomes, timeline) and its report page."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.settings import dynamodb_resource
from tests.support.agent_world import bucket_finding, ebs_finding
from tests.unit.ops.world import OpsWorld


def dynamodb_operations(world: OpsWorld) -> list[str]:
    """Every DynamoDB operation the function sends from now on (its client is the process's shared resource's)."""
    seen: list[str] = []
    client = dynamodb_resource().meta.client
    client.meta.events.register("before-call.dynamodb", lambda model, **_: seen.append(model.name))
    return seen


def test_missions_are_listed_newest_first_a_page_at_a_time_without_a_scan(world: OpsWorld) -> None:
    created = [world.mission(f"evt-{n}", minutes=n) for n in range(5)]
    # A completed mission also leaves document pages and latest-findings items in the table: never listed.
    done, _ = world.completed_mission("evt-done", [bucket_finding("site")], minutes=10)
    operations = dynamodb_operations(world)

    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"next": cursor} if cursor else {})}
        answer = world.call("GET", "/missions", query=query)
        assert answer.status == 200, answer.body
        assert answer.headers["cache-control"] == "no-store"
        page = answer.json()
        assert len(page["missions"]) <= 2
        listed += page["missions"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break

    assert pages >= 3
    assert [m["mission_id"] for m in listed] == [done, *reversed(created)]
    assert listed[0]["status"] == "completed"
    assert all("body" not in m and "listing" not in m for m in listed)
    assert "Scan" not in operations
    assert set(operations) == {"Query"}


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"next": "not-a-cursor"}, "next"),
        # A cursor of another list (the audit trail's keys) cannot move this one.
        ({"next": "eyJtaXNzaW9uX2lkIjoibS0xIiwic2VxIjoiMSJ9"}, "next"),
    ],
)
def test_a_bad_limit_or_cursor_is_a_400_naming_it(world: OpsWorld, query: dict[str, str], named: str) -> None:
    answer = world.call("GET", "/missions", query=query)
    assert answer.status == 400
    assert answer.json()["message"].startswith(named)


def test_a_mission_in_full_shows_findings_changes_decisions_outcomes_and_its_timeline(world: OpsWorld) -> None:
    mission_id, changes = world.completed_mission("evt-full", [bucket_finding("site"), ebs_finding()])

    answer = world.call("GET", f"/missions/{mission_id}")

    assert answer.status == 200, answer.body
    detail = answer.json()
    assert detail["mission"]["mission_id"] == mission_id
    assert detail["mission"]["status"] == "completed"
    report = detail["report"]
    assert {f["check_id"] for f in report["findings"]} == {"s3-bucket-public", "ec2-ebs-default-encryption-off"}
    shown = {c["change_id"]: c for c in report["changes"]}
    assert set(shown) == {c.change_id for c in changes}
    for change in changes:
        entry = shown[change.change_id]
        assert entry["before"] == change.model_dump(mode="json")["before"]
        assert entry["after"] == change.model_dump(mode="json")["after"]
        assert (entry["decision"], entry["outcome"], entry["verified"]) == ("approved", "applied", "fixed")
        assert entry["approver_sub"] == "auth0|approver"
        assert entry["binding_message"] == change.binding_message()
    actions = [entry["action"] for entry in report["timeline"]]
    assert actions.count("approval.requested") == 2
    assert actions.count("executor.applied") == 2


def test_a_running_mission_shows_its_item_and_says_the_report_comes_later(world: OpsWorld) -> None:
    mission_id = world.mission("evt-running")
    report = world.call("GET", f"/missions/{mission_id}").json()["report"]
    assert (report["status"], report["findings"], report["changes"]) == ("scanning", [], [])
    assert any("still running" in note for note in report["notes"])


def test_an_unknown_mission_is_404_and_a_malformed_id_400(world: OpsWorld) -> None:
    assert world.call("GET", "/missions/m-00000000000000000000").status == 404
    for bad in ("m-1", "latest-findings%23s3-bucket-public", "M-00000000000000000000"):
        answer = world.call("GET", f"/missions/{bad}")
        assert answer.status == 400, bad
        assert "mission_id" in answer.json()["message"]


def test_a_report_whose_pages_do_not_match_its_digest_is_refused(world: OpsWorld) -> None:
    mission_id, _ = world.completed_mission("evt-tampered", [bucket_finding("site")])
    page_key = f"{mission_id}#report#000"
    page = world.missions.get_item(Key={"mission_id": page_key})["Item"]
    world.missions.put_item(Item={**page, "body": page["body"].replace("site", "evil")})
    answer = world.call("GET", f"/missions/{mission_id}")
    assert answer.status == 500
    assert "does not match its digest" in answer.json()["message"]


def test_the_report_page_is_the_self_contained_diff_report(world: OpsWorld) -> None:
    mission_id, changes = world.completed_mission("evt-page", [bucket_finding("site")])

    answer = world.call("GET", f"/missions/{mission_id}/report.html")

    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    page = answer.body
    assert page.startswith("<!doctype html>")
    assert "<script" not in page
    assert mission_id in page
    assert changes[0].change_id in page
    assert 'class="diff"' in page  # difflib's side-by-side table of before and after
