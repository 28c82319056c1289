"""The keys and attributes of the Missions table that more than one trust domain relies on: the agent writes them,
the ops function reads them. Kept here, in the credential-free layer, so that neither imports the other.

- A mission's id is `m-` plus the first 20 hex digits of the SHA-256 of the EventBridge event that started it: a
  redelivered event maps to the same mission, and whoever put the event (the ops API's `POST /scans`) can name the
  mission before the agent has created it.
- Mission items (and only they: document pages never do) carry `listing = "mission"`, the hash key of the `ByCreated`
  index, whose range key `created_at` lists missions newest first without a scan of the table.
- A mission document is JSON text in pages keyed `<mission id>#<name>#<page>`.
- For each check a mission ran, `latest-findings#<check id>` names the newest mission whose report covers it.
- An organization scan's id is `org-` plus the first 20 hex digits of the SHA-256 of its `aegis.scan` event (the
  org-scan execution is named after it, so a redelivered event starts nothing new). Its own item is keyed
  `org#<org scan id>`; each of its account missions carries `org_scan` (the hash key of the sparse `ByOrgScan` index)
  and `account_id` (its range key; every mission item carries it).
"""

from __future__ import annotations

import re

from aegis.models import sha256_hex

MISSION_ID_PREFIX = "m-"
MISSION_ID_PATTERN = r"^m-[0-9a-f]{20}$"

# The Missions table's index over mission items, newest first (template.yaml, MissionsTable).
CREATED_INDEX = "ByCreated"
LISTING_ATTRIBUTE = "listing"
MISSION_LISTING = "mission"

# An organization scan: its id, its own item and the index over its accounts' missions (template.yaml).
ORG_SCAN_PREFIX = "org-"
ORG_SCAN_ID_PATTERN = r"^org-[0-9a-f]{20}$"
ORG_SCAN_KEY_PREFIX = "org#"
ORG_SCAN_INDEX = "ByOrgScan"
ORG_SCAN_ATTRIBUTE = "org_scan"
ACCOUNT_ATTRIBUTE = "account_id"

REPORT_DOCUMENT = "report"
LATEST_FINDINGS_PREFIX = "latest-findings#"


def mission_id_for_event(event_id: str) -> str:
    """Stable per EventBridge event: a redelivered event maps to the same mission."""
    return MISSION_ID_PREFIX + sha256_hex(event_id)[:20]


def org_scan_id_for_event(event_id: str) -> str:
    """Stable per `aegis.scan` event asking for an organization scan: the org-scan execution's name."""
    return ORG_SCAN_PREFIX + sha256_hex(event_id)[:20]


def is_org_scan_id(value: str) -> bool:
    return re.fullmatch(ORG_SCAN_ID_PATTERN, value) is not None


def org_scan_key(org_scan_id: str) -> str:
    """The Missions item of the organization scan itself (accounts, cap and reservations, status)."""
    return ORG_SCAN_KEY_PREFIX + org_scan_id


def is_mission_id(value: str) -> bool:
    return re.fullmatch(MISSION_ID_PATTERN, value) is not None


def document_page_key(mission_id: str, name: str, index: int) -> str:
    return f"{mission_id}#{name}#{index:03d}"


def latest_findings_key(check_id: str) -> str:
    """The Missions item naming the newest mission that ran `check_id`."""
    return LATEST_FINDINGS_PREFIX + check_id
