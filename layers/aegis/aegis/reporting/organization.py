"""An organization scan at a glance: its own item (`org#<org scan id>`: accounts, cap, status) and one line per
account from that account's mission item (the agent's `mission_summary` fields: status, plan status, counts,
severities, a named error), with totals and the accounts that could not be read.

Built from Missions items only (never a report document), so the ops API's `GET /missions?org_scan=` and the local
demo's summary answer with one GetItem and one Query of the `ByOrgScan` index, however many accounts there are.
JSON-ready: DynamoDB's numbers come back as int (or float), sets as sorted lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from aegis.missions_keys import mission_id_for_event

# The organization scan's item, as shown (never its internal key attributes).
ORG_FIELDS = (
    "org_scan_id",
    "status",
    "accounts",
    "account_count",
    "created_at",
    "updated_at",
    "max_changes",
    "reserved_changes",
    "counts",
    "error",
)
# An account's mission status before its mission exists (listed by the organization scan, not scanned yet).
PENDING = "pending"
UNREACHABLE = "unreachable"
# The counts every account line carries (0 when its mission has none yet).
ACCOUNT_COUNTS = ("findings", "changes", "exemptions", "plan_notes", "scan_errors", "withheld")
# What became of each account's plan (the completed mission's item; 0 until then).
ACCOUNT_OUTCOMES = ("applied", "verified_fixed")


def org_summary(org_item: Mapping[str, Any] | None, mission_items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`{"org_scan": {...}, "accounts": [...], "totals": {...}, "unreachable": [...]}` for an organization scan.

    `accounts` has one line per account, by account id: each account with a mission (its item), and each account
    the organization scan listed whose mission does not exist yet (`pending`). `unreachable` names the accounts whose
    scan role could not be assumed, with the AWS error code the agent recorded."""
    org = {name: _plain(org_item[name]) for name in ORG_FIELDS if org_item and org_item.get(name) is not None}
    org_scan_id = str(org.get("org_scan_id") or "")
    lines = {str(item["account_id"]): _account_line(item) for item in mission_items if item.get("account_id")}
    for account_id in _listed_accounts(org_item):
        if account_id not in lines and org_scan_id:
            lines[account_id] = _pending_line(org_scan_id, account_id)
    accounts = [lines[account_id] for account_id in sorted(lines)]
    unreachable = [
        {"account_id": line["account_id"], "error": line.get("error", "")}
        for line in accounts
        if line["status"] == UNREACHABLE
    ]
    return {"org_scan": org, "accounts": accounts, "totals": _totals(accounts), "unreachable": unreachable}


def _account_line(item: Mapping[str, Any]) -> dict[str, Any]:
    counts = _plain(item.get("counts") or {})
    outcomes = _plain(item.get("outcomes") or {})
    line: dict[str, Any] = {
        "account_id": str(item["account_id"]),
        "mission_id": str(item["mission_id"]),
        "status": str(item.get("status") or "unknown"),
        "plan_status": item.get("plan_status"),
        "counts": {name: int(counts.get(name, 0)) for name in ACCOUNT_COUNTS},
        "outcomes": {name: int(outcomes.get(name, 0)) for name in ACCOUNT_OUTCOMES},
        "by_severity": _plain(item.get("by_severity") or {}),
    }
    if item.get("org_changes_granted") is not None:
        line["changes_granted"] = _plain(item["org_changes_granted"])
    for name in ("error", "execution_arn", "created_at", "updated_at"):
        if item.get(name) is not None:
            line[name] = str(item[name])
    return line


def _pending_line(org_scan_id: str, account_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        # The mission this account's item will start (aegis_agent: one mission per organization scan and account).
        "mission_id": mission_id_for_event(f"{org_scan_id}/{account_id}"),
        "status": PENDING,
        "plan_status": None,
        "counts": dict.fromkeys(ACCOUNT_COUNTS, 0),
        "outcomes": dict.fromkeys(ACCOUNT_OUTCOMES, 0),
        "by_severity": {},
    }


def _listed_accounts(org_item: Mapping[str, Any] | None) -> list[str]:
    listed = (org_item or {}).get("accounts") or []
    return [str(account) for account in listed]


def _totals(accounts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    for line in accounts:
        counts.update(line["counts"])
        outcomes.update(line["outcomes"])
        severities.update({str(k): int(v) for k, v in line["by_severity"].items()})
    return {
        "accounts": len(accounts),
        "by_status": dict(sorted(Counter(str(line["status"]) for line in accounts).items())),
        "by_plan_status": dict(
            sorted(Counter(str(line["plan_status"]) for line in accounts if line["plan_status"]).items())
        ),
        **{name: counts[name] for name in ACCOUNT_COUNTS},
        "outcomes": {name: outcomes[name] for name in ACCOUNT_OUTCOMES},
        "by_severity": dict(sorted(severities.items())),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
