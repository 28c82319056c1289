"""The keys and attributes of the Missions table that more than one trust domain relies on: the agent writes them,
the ops function reads them. Kept here, in the credential-free layer, so that neither imports the other.

- A mission's id is `m-` plus the first 20 hex digits of the SHA-256 of the EventBridge event that started it: a
  redelivered event maps to the same mission, and whoever put the event (the ops API's `POST /scans`) can name the
  mission before the agent has created it.
- Mission items (and only they: document pages never do) carry `listing = "mission"`, the hash key of the `ByCreated`
  index, whose range key `created_at` lists missions newest first without a scan of the table.
- A mission document is JSON text in pages keyed `<mission id>#<name>#<page>`.
- For each check a mission ran, `latest-findings#<check id>` names the newest mission whose report covers it.
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

REPORT_DOCUMENT = "report"
LATEST_FINDINGS_PREFIX = "latest-findings#"


def mission_id_for_event(event_id: str) -> str:
    """Stable per EventBridge event: a redelivered event maps to the same mission."""
    return MISSION_ID_PREFIX + sha256_hex(event_id)[:20]


def is_mission_id(value: str) -> bool:
    return re.fullmatch(MISSION_ID_PATTERN, value) is not None


def document_page_key(mission_id: str, name: str, index: int) -> str:
    return f"{mission_id}#{name}#{index:03d}"


def latest_findings_key(check_id: str) -> str:
    """The Missions item naming the newest mission that ran `check_id`."""
    return LATEST_FINDINGS_PREFIX + check_id
