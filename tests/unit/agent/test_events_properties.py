"""The agent's event parsers on generated input: any JSON, and every documented event with one field broken, end in
the typed event or `Agent.MalformedEvent` / `Agent.MalformedResume`, whose text never carries a planted secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis_agent.errors import MalformedEvent, MalformedResume
from aegis_agent.events import (
    AccountScanRequest,
    CustomScanEvent,
    ResumeEvent,
    ScheduledScanEvent,
    UndoRequestEvent,
    parse_resume_event,
    parse_scan_event,
)
from tests.support.properties import every_planting, json_values, mutated, secret_values

EVENTS = Path(__file__).parents[3] / "events"
SCAN_EVENTS = {
    name: json.loads((EVENTS / name).read_text())
    for name in ("scan-scheduled.json", "scan-requested.json", "agent-undo-requested.json", "agent-account-scan.json")
}
RESUME = json.loads((EVENTS / "resume.json").read_text())
# Each example plants its secret at every position of the event in turn.
EVERY_POSITION = settings(max_examples=25)
SCAN_TYPES = (ScheduledScanEvent, CustomScanEvent, UndoRequestEvent, AccountScanRequest)


def parsed_scan_or_named_error(event: Any) -> object | MalformedEvent:
    try:
        parsed = parse_scan_event(event)
    except MalformedEvent as exc:
        return exc
    assert isinstance(parsed, SCAN_TYPES)
    return parsed


def parsed_resume_or_named_error(event: Any) -> ResumeEvent | MalformedResume:
    try:
        parsed = parse_resume_event(event)
    except MalformedResume as exc:
        return exc
    assert isinstance(parsed, ResumeEvent)
    return parsed


def test_the_seeds_are_the_documented_events() -> None:
    # The mutations below start from valid events: were a seed itself refused, every property would hold vacuously.
    for event in SCAN_EVENTS.values():
        assert isinstance(parse_scan_event(event), SCAN_TYPES)
    assert isinstance(parse_resume_event(RESUME), ResumeEvent)


@given(json_values())
def test_any_json_is_a_scan_event_or_malformed_event(event: Any) -> None:
    parsed_scan_or_named_error(event)


@given(
    st.dictionaries(
        st.sampled_from(["source", "detail-type", "detail", "id", "org_scan_id", "account_id"]), json_values()
    )
)
def test_any_object_with_the_discriminating_keys_is_a_scan_event_or_malformed_event(event: dict[str, Any]) -> None:
    parsed_scan_or_named_error(event)


@pytest.mark.parametrize("seed", sorted(SCAN_EVENTS))
@given(data=st.data())
def test_a_documented_event_with_one_field_broken_is_typed_or_malformed_event(seed: str, data: st.DataObject) -> None:
    parsed_scan_or_named_error(data.draw(mutated(SCAN_EVENTS[seed])))


@pytest.mark.parametrize("seed", sorted(SCAN_EVENTS))
@EVERY_POSITION
@given(secret=secret_values())
def test_a_secret_planted_in_a_scan_event_never_reaches_the_error_text(seed: str, secret: str) -> None:
    for event in every_planting(SCAN_EVENTS[seed], secret):
        outcome = parsed_scan_or_named_error(event)
        if isinstance(outcome, MalformedEvent):
            assert secret not in str(outcome)


@given(json_values())
def test_any_json_is_a_resume_or_malformed_resume(event: Any) -> None:
    parsed_resume_or_named_error(event)


@given(data=st.data())
def test_the_documented_resume_with_one_field_broken_is_typed_or_malformed_resume(data: st.DataObject) -> None:
    outcome = parsed_resume_or_named_error(data.draw(mutated(RESUME)))
    if isinstance(outcome, ResumeEvent):
        # Whatever parses is the shape the agent resumes on: a flat list of results, each for a change id.
        assert all(isinstance(result.change_id, str) for result in outcome.results)


@EVERY_POSITION
@given(secret=secret_values())
def test_a_secret_planted_in_a_resume_never_reaches_the_error_text(secret: str) -> None:
    for event in every_planting(RESUME, secret):
        outcome = parsed_resume_or_named_error(event)
        if isinstance(outcome, MalformedResume):
            assert secret not in str(outcome)
