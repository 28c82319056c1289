"""The organization scan's task parser on generated input: any JSON, and each documented task with one field broken,
ends in the typed task or `OrgScan.MalformedEvent`, whose text never carries a planted secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from aegis.secrets_guard import secret_kind
from aegis_orgscan.errors import MalformedEvent
from aegis_orgscan.events import ListAccountsTask, SummarizeTask, parse_task
from tests.support.properties import every_planting, json_values, mutated, secret_values

EVENTS = Path(__file__).parents[3] / "events"
# An expected failure needs no shrinking: finding it is the point, and a shrink of it costs minutes.
FIND_ONLY = (Phase.explicit, Phase.reuse, Phase.generate)
TASKS = {name: json.loads((EVENTS / name).read_text()) for name in ("orgscan-list.json", "orgscan-summarize.json")}


def parsed_or_named_error(event: Any) -> ListAccountsTask | SummarizeTask | MalformedEvent:
    try:
        task = parse_task(event)
    except MalformedEvent as exc:
        return exc
    assert isinstance(task, ListAccountsTask | SummarizeTask)
    if isinstance(task, ListAccountsTask):
        assert task.request.org_scan_id == task.org_scan_id
    return task


def test_the_seeds_are_the_documented_tasks() -> None:
    for task in TASKS.values():
        assert isinstance(parse_task(task), ListAccountsTask | SummarizeTask)


@given(json_values())
def test_any_json_is_a_task_or_malformed_event(event: Any) -> None:
    parsed_or_named_error(event)


@pytest.mark.parametrize("seed", sorted(TASKS))
@given(data=st.data())
def test_a_documented_task_with_one_field_broken_is_typed_or_malformed_event(seed: str, data: st.DataObject) -> None:
    parsed_or_named_error(data.draw(mutated(TASKS[seed])))


@pytest.mark.parametrize("seed", sorted(TASKS))
@settings(phases=FIND_ONLY, max_examples=25)
@given(secret=secret_values())
def test_a_secret_planted_in_a_task_never_reaches_the_error_text(seed: str, secret: str) -> None:
    for task in every_planting(TASKS[seed], secret):
        outcome = parsed_or_named_error(task)
        if isinstance(outcome, MalformedEvent):
            assert secret not in str(outcome)
            assert secret_kind(str(outcome)) is None
