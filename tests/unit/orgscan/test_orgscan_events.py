"""events/orgscan-*.json: what the organization-scan state machine's two tasks send, accepted by the function."""

from __future__ import annotations

import json

from aegis_orgscan.events import ListAccountsTask, SummarizeTask, parse_task
from tests.support.stack import EVENTS_DIR


def test_the_sample_events_are_the_state_machines_two_tasks() -> None:
    listing = parse_task(json.loads((EVENTS_DIR / "orgscan-list.json").read_text(encoding="utf-8")))
    assert isinstance(listing, ListAccountsTask)
    assert listing.request.regions == ["us-east-1", "eu-west-1"]
    summary = parse_task(json.loads((EVENTS_DIR / "orgscan-summarize.json").read_text(encoding="utf-8")))
    assert isinstance(summary, SummarizeTask)
    assert summary.org_scan_id == listing.org_scan_id
