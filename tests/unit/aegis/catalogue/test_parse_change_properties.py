"""`parse_change` on generated input, over every catalogue kind: random documents, text and bytes, and a valid change
of each kind (and an undo) with one field broken, resized to the 255-character boundary, written in hostile Unicode
or given a planted secret. It ends in a catalogue member or `InvalidChange`; what parses is exactly the change its id
commits to; and the error's text and `where` never carry the planted secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis.catalogue import KINDS, ChangeBase, InvalidChange, Undo, parse_change
from tests.support.changes import one_of_each_kind
from tests.support.properties import (
    every_planting,
    hostile_text,
    json_values,
    leaf_paths,
    mutated,
    replaced,
    secret_values,
)

SEEDS: dict[str, ChangeBase] = {change.kind: change for change in one_of_each_kind()}
SEEDS["undo"] = Undo.of(SEEDS["revoke-security-group-rules"])
SEED_DOCUMENTS = {kind: change.model_dump(mode="json") for kind, change in SEEDS.items()}
# Each kind is tried on its own, so fewer examples per kind keep the whole module within a few seconds.
PER_KIND = settings(max_examples=30)
# Each example plants its secret at every position of the change in turn.
EVERY_POSITION = settings(max_examples=8)


def parsed_or_invalid(data: Any) -> ChangeBase | InvalidChange:
    try:
        change = parse_change(data)
    except InvalidChange as exc:
        return exc
    assert isinstance(change, ChangeBase)
    return change


def assert_exactly_the_seed(change: ChangeBase, seed: ChangeBase) -> None:
    """A broken document that still parses is the very change the seed is: same id, same identity, and the id is
    the one its content derives (nothing was renamed, widened or swapped under an approved id)."""
    assert change.change_id == seed.change_id
    assert change.identity() == seed.identity()
    assert change.change_id == change.derived_change_id()
    assert parse_change(change.model_dump(mode="json")) == change


def test_every_kind_is_seeded() -> None:
    assert set(SEEDS) == set(KINDS)
    for kind, document in SEED_DOCUMENTS.items():
        assert parse_change(document) == SEEDS[kind]


@given(json_values())
def test_any_json_is_a_change_or_invalid_change(data: Any) -> None:
    outcome = parsed_or_invalid(data)
    assert isinstance(outcome, InvalidChange)  # no generated document forges a content-derived change id


@given(st.sampled_from(sorted(KINDS)), st.dictionaries(st.text(max_size=16), json_values(), max_size=8))
def test_any_object_of_a_known_kind_is_invalid_change(kind: str, fields: dict[str, Any]) -> None:
    assert isinstance(parsed_or_invalid({**fields, "kind": kind}), InvalidChange)


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_text_or_bytes_is_invalid_change(data: str | bytes) -> None:
    assert isinstance(parsed_or_invalid(data), InvalidChange)


@pytest.mark.parametrize("kind", sorted(SEEDS))
@PER_KIND
@given(data=st.data())
def test_a_change_with_one_field_broken_is_that_change_or_invalid_change(kind: str, data: st.DataObject) -> None:
    outcome = parsed_or_invalid(data.draw(mutated(SEED_DOCUMENTS[kind])))
    if isinstance(outcome, ChangeBase):
        assert_exactly_the_seed(outcome, SEEDS[kind])


@pytest.mark.parametrize("kind", sorted(SEEDS))
@PER_KIND
@given(data=st.data())
def test_a_string_field_in_hostile_unicode_or_at_the_size_boundary_is_that_change_or_invalid_change(
    kind: str, data: st.DataObject
) -> None:
    document = SEED_DOCUMENTS[kind]
    strings = [path for path in leaf_paths(document) if isinstance(_at(document, path), str)]
    where = data.draw(st.sampled_from(strings))
    outcome = parsed_or_invalid(replaced(document, where, data.draw(hostile_text())))
    if isinstance(outcome, ChangeBase):
        assert_exactly_the_seed(outcome, SEEDS[kind])


@pytest.mark.parametrize("kind", sorted(SEEDS))
@EVERY_POSITION
@given(secret=secret_values(), as_json_text=st.booleans())
def test_a_planted_secret_never_reaches_the_error_text(kind: str, secret: str, as_json_text: bool) -> None:
    for broken in every_planting(SEED_DOCUMENTS[kind], secret):
        outcome = parsed_or_invalid(_json_text(broken) if as_json_text else broken)
        if isinstance(outcome, InvalidChange):
            assert secret not in str(outcome)
            assert secret not in outcome.where
        else:
            assert_exactly_the_seed(outcome, SEEDS[kind])


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _json_text(document: Any) -> str:
    return json.dumps(document)
