"""Summarize: the accounts' missions counted by status (ByOrgScan) onto the organization scan's item."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.missions_keys import mission_id_for_event
from aegis_orgscan import errors
from tests.unit.orgscan.conftest import NOW, Organization

ORG_SCAN = "org-0123456789abcdef0123"
OTHER_SCAN = "org-ffffffffffffffffffff"


def mission(org_scan: str, account_id: str, status: str) -> dict[str, Any]:
    """An account mission as the agent writes it (aegis_agent.missions.MissionStore.create)."""
    return {
        "mission_id": mission_id_for_event(f"{org_scan}/{account_id}"),
        "listing": "mission",
        "status": status,
        "trigger": "organization",
        "created_at": NOW.isoformat(),
        "account_id": account_id,
        "org_scan": org_scan,
    }


@pytest.fixture
def listed(make_service: Any) -> None:
    make_service().handle({"action": "list", "org_scan_id": ORG_SCAN, "request": {"org_scan_id": ORG_SCAN}})


def test_the_missions_are_counted_by_status_and_the_scan_marked_scanned(
    listed: None, make_service: Any, organization: Organization, tables: dict[str, Any]
) -> None:
    missions = tables["missions"]
    missions.put_item(Item=mission(ORG_SCAN, organization.workload, "completed"))
    missions.put_item(Item=mission(ORG_SCAN, organization.prod_account, "awaiting_approval"))
    missions.put_item(Item=mission(ORG_SCAN, organization.loose, "unreachable"))
    # Another organization scan's mission of the same account is not this scan's.
    missions.put_item(Item=mission(OTHER_SCAN, organization.loose, "failed"))

    answer = make_service().handle({"action": "summarize", "org_scan_id": ORG_SCAN})

    counts = {"awaiting_approval": 1, "completed": 1, "unreachable": 1, "not_started": 1}
    assert answer == {"org_scan_id": ORG_SCAN, "status": "scanned", "counts": counts}
    item = missions.get_item(Key={"mission_id": f"org#{ORG_SCAN}"})["Item"]
    assert (item["status"], item["counts"], item["summarized_at"]) == ("scanned", counts, NOW.isoformat())
    assert "error" not in item
    record = read_trail(tables["audit"], ORG_SCAN)[-1]
    assert (record["action"], record["outcome"]) == ("org_scan.summarized", "scanned")
    assert json.loads(record["details"])["counts"] == counts


def test_a_failed_map_marks_the_scan_failed_with_its_error_name(
    listed: None, make_service: Any, organization: Organization, tables: dict[str, Any]
) -> None:
    tables["missions"].put_item(Item=mission(ORG_SCAN, organization.workload, "failed"))
    answer = make_service().handle(
        {"action": "summarize", "org_scan_id": ORG_SCAN, "failure": "States.ExceedToleratedFailureThreshold"}
    )
    assert answer["status"] == "failed"
    assert answer["counts"] == {"failed": 1, "not_started": 3}
    item = tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})["Item"]
    assert (item["status"], item["error"]) == ("failed", "States.ExceedToleratedFailureThreshold")


def test_the_summary_reads_every_page_of_the_index(listed: None, make_service: Any, tables: dict[str, Any]) -> None:
    missions = tables["missions"]
    pages: list[dict[str, Any]] = [
        {"Items": [{"status": "completed"}], "LastEvaluatedKey": {"k": 1}},
        {"Items": [{"status": "completed"}, {"status": "halted"}]},
    ]
    requests: list[dict[str, Any]] = []

    class PagedTable:
        def __getattr__(self, name: str) -> Any:
            return getattr(missions, name)

        def query(self, **request: Any) -> dict[str, Any]:
            requests.append(dict(request))
            return pages[len(requests) - 1]

    service = make_service()
    service.missions_table = PagedTable()
    answer = service.handle({"action": "summarize", "org_scan_id": ORG_SCAN})
    assert answer["counts"] == {"completed": 2, "halted": 1, "not_started": 1}
    assert [r.get("ExclusiveStartKey") for r in requests] == [None, {"k": 1}]
    assert {r["IndexName"] for r in requests} == {"ByOrgScan"}


def test_an_organization_scan_never_listed_cannot_be_summarised(make_service: Any, tables: dict[str, Any]) -> None:
    with pytest.raises(errors.UnknownOrgScan) as raised:
        make_service().handle({"action": "summarize", "org_scan_id": ORG_SCAN})
    assert type(raised.value).__name__ == "OrgScan.UnknownOrgScan"
    assert "Item" not in tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})
