"""GET /missions?org_scan=<org-...>: an organization scan's own item and each of its accounts (the ByOrgScan index,
never a scan of the table), with totals and the accounts that could not be read; a bad id is a 400 naming org_scan."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from aegis.missions_keys import mission_id_for_event, org_scan_id_for_event, org_scan_key
from aegis.settings import dynamodb_resource
from aegis_agent.missions import MissionStatus
from aegis_agent.state import MissionRequest, Trigger
from tests.unit.ops.world import POLICY, REGION, OpsWorld

ORG_SCAN_ID = org_scan_id_for_event("org-event-1")
OTHER_ORG_SCAN_ID = org_scan_id_for_event("org-event-2")
SCANNED, CAPPED, UNREACHABLE, NOT_YET = "222222222222", "333333333333", "444444444444", "555555555555"


def account_mission(world: OpsWorld, org_scan_id: str, account_id: str) -> str:
    """An account's mission item as the agent creates it for an organization scan."""
    request = MissionRequest(
        mission_id=mission_id_for_event(f"{org_scan_id}/{account_id}"),
        trigger=Trigger.ORGANIZATION,
        regions=(REGION,),
        policy=POLICY,
        requested_at=world.clock.isoformat(),
        account_id=account_id,
        org_scan=org_scan_id,
    )
    world.store.create(request, world.clock + timedelta(minutes=1))
    return request.mission_id


def summary(findings: int, changes: int, plan_status: str) -> dict[str, Any]:
    """The fields the agent's `mission_summary` puts on a mission item."""
    return {
        "plan_status": plan_status,
        "counts": {
            "findings": findings,
            "changes": changes,
            "exemptions": 0,
            "plan_notes": findings - changes,
            "scan_errors": 0,
            "withheld": 0,
            "api_calls": 12,
        },
        "by_severity": {"critical": findings},
        "change_ids": [],
    }


@pytest.fixture
def org_world(world: OpsWorld) -> OpsWorld:
    world.missions.put_item(
        Item={
            "mission_id": org_scan_key(ORG_SCAN_ID),
            "kind": "org-scan",
            "org_scan_id": ORG_SCAN_ID,
            "status": "scanning",
            "accounts": [SCANNED, CAPPED, UNREACHABLE, NOT_YET],
            "account_count": 4,
            "created_at": world.clock.isoformat(),
            "max_changes": 3,
            "reserved_changes": 3,
        }
    )
    now = world.clock + timedelta(minutes=2)
    scanned = account_mission(world, ORG_SCAN_ID, SCANNED)
    world.store.update(
        scanned,
        MissionStatus.AWAITING_APPROVAL,
        now,
        execution_arn=f"arn:aws:states:{REGION}:123456789012:execution:aegis-mission:{scanned}",
        org_changes_granted=3,
        **summary(findings=3, changes=3, plan_status="proposed"),
    )
    capped = account_mission(world, ORG_SCAN_ID, CAPPED)
    world.store.update(
        capped,
        MissionStatus.COMPLETED,
        now,
        org_changes_granted=0,
        **summary(findings=2, changes=0, plan_status="capped"),
    )
    unreachable = account_mission(world, ORG_SCAN_ID, UNREACHABLE)
    world.store.update(unreachable, MissionStatus.UNREACHABLE, now, error="AccessDenied")
    # Neither another organization scan's account nor an ordinary mission belongs to this one.
    account_mission(world, OTHER_ORG_SCAN_ID, SCANNED)
    world.mission("evt-ordinary")
    return world


def dynamodb_operations() -> list[str]:
    seen: list[str] = []
    client = dynamodb_resource().meta.client
    client.meta.events.register("before-call.dynamodb", lambda model, **_: seen.append(model.name))
    return seen


def test_an_org_scan_lists_every_account_with_counts_totals_and_the_unreachable(org_world: OpsWorld) -> None:
    operations = dynamodb_operations()

    answer = org_world.call("GET", "/missions", query={"org_scan": ORG_SCAN_ID})

    assert answer.status == 200, answer.body
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {"org_scan", "accounts", "totals", "unreachable"}
    assert body["org_scan"] == {
        "org_scan_id": ORG_SCAN_ID,
        "status": "scanning",
        "accounts": [SCANNED, CAPPED, UNREACHABLE, NOT_YET],
        "account_count": 4,
        "created_at": org_world.clock.isoformat(),
        "max_changes": 3,
        "reserved_changes": 3,
    }
    lines = {line["account_id"]: line for line in body["accounts"]}
    assert [line["account_id"] for line in body["accounts"]] == [SCANNED, CAPPED, UNREACHABLE, NOT_YET]
    assert lines[SCANNED]["mission_id"] == mission_id_for_event(f"{ORG_SCAN_ID}/{SCANNED}")
    assert (lines[SCANNED]["status"], lines[SCANNED]["plan_status"], lines[SCANNED]["changes_granted"]) == (
        "awaiting_approval",
        "proposed",
        3,
    )
    assert lines[SCANNED]["counts"] == {
        "findings": 3,
        "changes": 3,
        "exemptions": 0,
        "plan_notes": 0,
        "scan_errors": 0,
        "withheld": 0,
    }
    assert lines[SCANNED]["execution_arn"].endswith(lines[SCANNED]["mission_id"])
    assert (lines[CAPPED]["status"], lines[CAPPED]["plan_status"], lines[CAPPED]["counts"]["plan_notes"]) == (
        "completed",
        "capped",
        2,
    )
    assert (lines[UNREACHABLE]["status"], lines[UNREACHABLE]["error"]) == ("unreachable", "AccessDenied")
    assert lines[UNREACHABLE]["counts"]["findings"] == 0
    # Listed by the organization scan, not scanned yet: the mission it will have.
    assert (lines[NOT_YET]["status"], lines[NOT_YET]["mission_id"]) == (
        "pending",
        mission_id_for_event(f"{ORG_SCAN_ID}/{NOT_YET}"),
    )
    assert body["totals"] == {
        "accounts": 4,
        "by_status": {"awaiting_approval": 1, "completed": 1, "pending": 1, "unreachable": 1},
        "by_plan_status": {"capped": 1, "proposed": 1},
        "findings": 5,
        "changes": 3,
        "exemptions": 0,
        "plan_notes": 2,
        "scan_errors": 0,
        "withheld": 0,
        "outcomes": {"applied": 0, "verified_fixed": 0},
        "by_severity": {"critical": 5},
    }
    assert body["unreachable"] == [{"account_id": UNREACHABLE, "error": "AccessDenied"}]
    assert set(operations) == {"GetItem", "Query"}


def test_an_unknown_org_scan_is_a_404(world: OpsWorld) -> None:
    answer = world.call("GET", "/missions", query={"org_scan": OTHER_ORG_SCAN_ID})
    assert answer.status == 404
    assert OTHER_ORG_SCAN_ID in answer.json()["message"]


def test_an_org_scan_whose_item_is_not_written_yet_still_lists_its_accounts(world: OpsWorld) -> None:
    account_mission(world, ORG_SCAN_ID, SCANNED)
    answer = world.call("GET", "/missions", query={"org_scan": ORG_SCAN_ID})
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["org_scan"] == {}
    assert [(line["account_id"], line["status"]) for line in body["accounts"]] == [(SCANNED, "scanning")]


@pytest.mark.parametrize(
    "value",
    ["", "org-123", "org-" + "A" * 20, "m-0123456789abcdef0123", "org-" + "a" * 21, "org#" + "a" * 20],
)
def test_a_bad_org_scan_id_is_a_400_naming_it(world: OpsWorld, value: str) -> None:
    answer = world.call("GET", "/missions", query={"org_scan": value})
    assert answer.status == 400
    assert answer.json()["message"].startswith("org_scan must be an organization scan id")


@pytest.mark.parametrize("query", [{"limit": "2"}, {"next": "abc"}])
def test_paging_does_not_apply_to_an_org_scan(org_world: OpsWorld, query: dict[str, str]) -> None:
    answer = org_world.call("GET", "/missions", query={"org_scan": ORG_SCAN_ID, **query})
    assert answer.status == 400
    assert "org_scan" in answer.json()["message"]


def test_the_org_scan_listing_checks_the_token_and_its_scope_first(org_world: OpsWorld) -> None:
    assert org_world.call("GET", "/missions", token=None, query={"org_scan": ORG_SCAN_ID}).status == 401
    lacking = org_world.issuer.token(scope="aegis:audit aegis:scan")
    assert org_world.call("GET", "/missions", token=lacking, query={"org_scan": ORG_SCAN_ID}).status == 403
    # Even a bad id is not looked at before the token.
    assert org_world.call("GET", "/missions", token=None, query={"org_scan": "nope"}).status == 401


def test_the_ordinary_mission_list_shows_each_missions_account_and_org_scan(org_world: OpsWorld) -> None:
    answer = org_world.call("GET", "/missions", query={"limit": "100"})
    assert answer.status == 200, answer.body
    listed = {m["mission_id"]: m for m in answer.json()["missions"]}
    scanned = listed[mission_id_for_event(f"{ORG_SCAN_ID}/{SCANNED}")]
    assert (scanned["account_id"], scanned["org_scan"], scanned["trigger"]) == (SCANNED, ORG_SCAN_ID, "organization")
    # The organization scan's own item is not a mission.
    assert org_scan_key(ORG_SCAN_ID) not in listed


def test_an_organization_scan_request_puts_the_aegis_scan_event_and_names_the_org_scan(world: OpsWorld) -> None:
    from aegis_agent.events import CustomScanEvent, parse_scan_event

    answer = world.call("POST", "/scans", body={"dry_run": False, "organization": True, "regions": [REGION]})

    assert answer.status == 202, answer.body
    requested = answer.json()
    assert set(requested) == {"event_id", "org_scan_id"}
    assert requested["org_scan_id"] == org_scan_id_for_event(requested["event_id"])
    [entry] = world.put_events
    detail = json.loads(entry["Detail"])
    assert detail == {"dry_run": False, "organization": True, "regions": [REGION]}
    # What the agent accepts as an organization scan.
    event = {
        "version": "0",
        "id": requested["event_id"],
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "account": "123456789012",
        "time": "2026-03-01T12:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }
    parsed = parse_scan_event(event)
    assert isinstance(parsed, CustomScanEvent)
    assert parsed.detail.organization is True


def test_organization_must_be_a_boolean(world: OpsWorld) -> None:
    answer = world.call("POST", "/scans", body={"dry_run": True, "organization": "yes"})
    assert answer.status == 400
    assert "organization" in answer.json()["message"]
    assert world.put_events == []
