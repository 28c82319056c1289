"""aegis.reporting.organization.org_summary: an organization scan's item and its accounts' mission items (as DynamoDB
returns them: Decimal numbers) as one JSON-ready summary."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aegis.missions_keys import mission_id_for_event, org_scan_id_for_event
from aegis.reporting.organization import ACCOUNT_COUNTS, org_summary

ORG = org_scan_id_for_event("evt")
A, B, C = "111111111111", "222222222222", "333333333333"


def org_item(**overrides: Any) -> dict[str, Any]:
    return {
        "mission_id": f"org#{ORG}",
        "kind": "org-scan",
        "org_scan_id": ORG,
        "status": "scanned",
        "accounts": [B, A, C],
        "account_count": Decimal(3),
        "created_at": "2026-03-01T12:00:00+00:00",
        "max_changes": Decimal(10),
        "reserved_changes": Decimal(4),
        "counts": {"completed": Decimal(1), "unreachable": Decimal(1)},
    } | overrides


def mission(account_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "mission_id": mission_id_for_event(f"{ORG}/{account_id}"),
        "listing": "mission",
        "org_scan": ORG,
        "account_id": account_id,
        "status": status,
        "regions": ["us-east-1"],
        "change_ids": ["chg-a"],
        "by_check": {"s3-bucket-public": Decimal(4)},
    } | fields


def test_accounts_are_listed_by_id_with_counts_as_numbers_and_the_org_item_without_its_key() -> None:
    summary = org_summary(
        org_item(),
        [
            mission(
                B,
                "completed",
                plan_status="proposed",
                counts={"findings": Decimal(4), "changes": Decimal(4), "api_calls": Decimal(30)},
                by_severity={"critical": Decimal(4)},
                org_changes_granted=Decimal(4),
            ),
            mission(A, "unreachable", error="AccessDenied"),
        ],
    )

    json.dumps(summary)  # JSON-ready: no Decimal anywhere
    assert summary["org_scan"] == {
        "org_scan_id": ORG,
        "status": "scanned",
        "accounts": [B, A, C],
        "account_count": 3,
        "created_at": "2026-03-01T12:00:00+00:00",
        "max_changes": 10,
        "reserved_changes": 4,
        "counts": {"completed": 1, "unreachable": 1},
    }
    assert [line["account_id"] for line in summary["accounts"]] == [A, B, C]
    a, b, c = summary["accounts"]
    assert b == {
        "account_id": B,
        "mission_id": mission_id_for_event(f"{ORG}/{B}"),
        "status": "completed",
        "plan_status": "proposed",
        "counts": {"findings": 4, "changes": 4, "exemptions": 0, "plan_notes": 0, "scan_errors": 0, "withheld": 0},
        "outcomes": {"applied": 0, "verified_fixed": 0},
        "by_severity": {"critical": 4},
        "changes_granted": 4,
    }
    assert (a["status"], a["error"], a["counts"]) == ("unreachable", "AccessDenied", dict.fromkeys(ACCOUNT_COUNTS, 0))
    assert (c["status"], c["mission_id"]) == ("pending", mission_id_for_event(f"{ORG}/{C}"))
    assert summary["unreachable"] == [{"account_id": A, "error": "AccessDenied"}]
    assert summary["totals"]["by_status"] == {"completed": 1, "pending": 1, "unreachable": 1}
    assert (summary["totals"]["findings"], summary["totals"]["changes"], summary["totals"]["accounts"]) == (4, 4, 3)
    # Only the summary's fields: no document, change id list or per-check breakdown.
    assert all("change_ids" not in line and "by_check" not in line for line in summary["accounts"])


def test_without_the_org_item_the_missions_alone_are_summarised() -> None:
    summary = org_summary(None, [mission(A, "scanning")])
    assert summary["org_scan"] == {}
    assert [(line["account_id"], line["status"]) for line in summary["accounts"]] == [(A, "scanning")]
    assert summary["unreachable"] == []


def test_an_item_without_an_account_is_not_an_account_line() -> None:
    summary = org_summary(org_item(accounts=[]), [{"mission_id": "m-0123456789abcdef0123", "status": "completed"}])
    assert summary["accounts"] == []
    assert summary["totals"]["accounts"] == 0


def test_listed_accounts_as_a_dynamodb_set_are_pending_lines_too() -> None:
    summary = org_summary(org_item(accounts={C, A}), [])
    assert summary["org_scan"]["accounts"] == [A, C]
    assert [(line["account_id"], line["status"]) for line in summary["accounts"]] == [(A, "pending"), (C, "pending")]


def test_each_accounts_outcomes_are_listed_and_summed() -> None:
    summary = org_summary(
        org_item(),
        [
            mission(A, "completed", outcomes={"applied": Decimal(3), "verified_fixed": Decimal(2)}),
            mission(B, "completed", outcomes={"applied": Decimal(1), "verified_fixed": Decimal(1)}),
            mission(C, "awaiting_approval"),
        ],
    )
    by_account = {line["account_id"]: line["outcomes"] for line in summary["accounts"]}
    assert by_account == {
        A: {"applied": 3, "verified_fixed": 2},
        B: {"applied": 1, "verified_fixed": 1},
        C: {"applied": 0, "verified_fixed": 0},
    }
    assert summary["totals"]["outcomes"] == {"applied": 4, "verified_fixed": 3}
    json.dumps(summary)
