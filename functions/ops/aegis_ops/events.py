"""Putting the events that start missions: an on-demand scan (`aegis.scan`) and an undo (`aegis.undo`). The mission
id is known at once, from the event id EventBridge assigns (`aegis.missions_keys.mission_id_for_event`), so the
caller can follow the mission before the agent has created it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aegis.missions_keys import mission_id_for_event
from aegis_ops.errors import EventNotAccepted

SCAN_SOURCE, SCAN_DETAIL_TYPE = "aegis.scan", "Aegis Scan Requested"
UNDO_SOURCE, UNDO_DETAIL_TYPE = "aegis.undo", "Undo Requested"


def put_event(events: Any, bus_name: str, source: str, detail_type: str, detail: Mapping[str, Any]) -> dict[str, str]:
    """Put one event; `{event_id, mission_id}` of the mission it starts, or EventNotAccepted."""
    answer = events.put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(dict(detail), separators=(",", ":"), sort_keys=True),
                "EventBusName": bus_name,
            }
        ]
    )
    entries = answer.get("Entries") or [{}]
    event_id = entries[0].get("EventId")
    if answer.get("FailedEntryCount") or not isinstance(event_id, str):
        # EventBridge's own error code only: its message may quote the event.
        raise EventNotAccepted(f"EventBridge did not accept the {source} event ({entries[0].get('ErrorCode', '')})")
    return {"event_id": event_id, "mission_id": mission_id_for_event(event_id)}
