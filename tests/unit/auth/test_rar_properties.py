"""The RAR builder on generated resource data: a change of every kind whose names and states hold what a scan could
read (any Unicode, control characters, right-to-left marks and overrides, 255-character values, secret-shaped
names), and an analyst note of the same. It builds exactly one aegis-change object the phone can show whole (at most
10 properties of at most 255 characters, nothing invisible, no secret-shaped value, the digest that binds it) and a
binding message in Auth0's characters, or refuses with ApprovalTextTooLong; nothing else."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aegis.catalogue import KINDS, ApprovalTextTooLong, ChangeBase, Undo
from aegis.catalogue.base import BINDING_MESSAGE_MAX, PROPERTY_VALUE_MAX
from aegis.secrets_guard import secret_kind
from aegis_auth.rar import (
    AEGIS_CHANGE_DETAILS_TYPE,
    ANALYST_PROPERTY,
    DIGEST_PROPERTY,
    INSTRUCTION_MAX_CHARS,
    MAX_PROPERTIES,
    change_authorization_details,
    require_change_digest,
)
from tests.support.changes import one_of_each_kind
from tests.support.properties import hostile_text, leaf_paths, replaced, secret_values

SEEDS = {change.kind: change for change in one_of_each_kind()}
# Positions a scan fills in: the resource and anything in the states. The rest is the catalogue's own vocabulary.
SCANNED = ("resource_arn", "before", "after")
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
_AUTH0_BINDING_MESSAGE = re.compile(r"[A-Za-z0-9 +\-_.,:#]+")
PER_KIND = settings(max_examples=30)


def scanned_strings(change: ChangeBase) -> list[tuple[str | int, ...]]:
    document = change.model_dump(mode="json")
    return [path for path in leaf_paths(document) if path[0] in SCANNED and isinstance(_at(document, path), str)]


def proposed(seed: ChangeBase, path: tuple[str | int, ...], value: str) -> ChangeBase | None:
    """The change a planner would propose with `value` at `path` (its id derived anew), or None when the catalogue
    refuses such a change (a value no resource of the kind can have)."""
    fields = replaced(seed.model_dump(mode="json"), path, value)
    fields.pop("change_id")
    fields.pop("kind")
    try:
        return KINDS[seed.kind].propose(**fields)
    except (ValidationError, ValueError):
        return None


def details_or_too_long(change: ChangeBase, analyst: str | None = None) -> list[dict[str, Any]] | None:
    try:
        return change_authorization_details(change, analyst=analyst)
    except ApprovalTextTooLong as exc:
        refused = exc
    assert secret_kind(str(refused)) is None
    return None


def assert_shown_whole_and_bound(change: ChangeBase, details: list[dict[str, Any]], planted: str | None) -> None:
    assert len(details) == 1
    (detail,) = details
    assert detail["type"] == AEGIS_CHANGE_DETAILS_TYPE
    shown = [detail["instruction"]] + [entry["value"] for entry in detail["properties"].values()]
    assert len(detail["instruction"]) <= INSTRUCTION_MAX_CHARS
    assert len(detail["properties"]) <= MAX_PROPERTIES
    for text in shown:
        assert isinstance(text, str)
        assert not any(unicodedata.category(char) in _INVISIBLE for char in text)
        if planted is not None:
            assert planted not in text
    for entry in detail["properties"].values():
        assert len(entry["value"]) <= PROPERTY_VALUE_MAX
    assert detail["properties"][DIGEST_PROPERTY]["value"] == change.digest
    require_change_digest(details, change.digest)
    message = change.binding_message()
    assert len(message) <= BINDING_MESSAGE_MAX
    assert _AUTH0_BINDING_MESSAGE.fullmatch(message)
    assert message.endswith(f"#{change.digest[:6]}")


@st.composite
def scanned_value(draw: st.DrawFn, original: str) -> str:
    """A value where `original` was: hostile text or a secret outright, or `original` with hostile characters
    inserted or padded to the 255-character boundary (which the stricter kinds still accept)."""
    how = draw(st.sampled_from(["replace", "secret", "insert", "pad"]))
    if how == "replace":
        return draw(hostile_text())
    if how == "secret":
        return draw(secret_values())
    if how == "insert":
        at = draw(st.integers(min_value=0, max_value=len(original)))
        return original[:at] + draw(hostile_text(max_size=8)) + original[at:]
    size = draw(st.sampled_from([PROPERTY_VALUE_MAX - 1, PROPERTY_VALUE_MAX, PROPERTY_VALUE_MAX + 1]))
    return original + "a" * max(0, size - len(original))


@pytest.mark.parametrize("kind", sorted(SEEDS))
@PER_KIND
@given(data=st.data())
def test_scanned_text_of_any_shape_is_shown_whole_and_bound_or_refused_as_too_long(
    kind: str, data: st.DataObject
) -> None:
    seed = SEEDS[kind]
    path = data.draw(st.sampled_from(scanned_strings(seed)))
    value = data.draw(scanned_value(_at(seed.model_dump(mode="json"), path)))
    change = proposed(seed, path, value)
    if change is None:
        return  # refused by the catalogue: never proposed, never shown
    for candidate in (change, Undo.of(change)):
        details = details_or_too_long(candidate)
        if details is not None:
            assert_shown_whole_and_bound(candidate, details, value if secret_kind(value) else None)


@given(note=st.one_of(hostile_text(max_size=2 * PROPERTY_VALUE_MAX), secret_values()))
def test_an_analyst_note_of_any_shape_is_shown_cut_to_fit_and_never_binds(note: str) -> None:
    change = SEEDS["revoke-security-group-rules"]
    details = details_or_too_long(change, analyst=note)
    assert details is not None
    assert_shown_whole_and_bound(change, details, note if secret_kind(note) else None)
    if note:
        assert ANALYST_PROPERTY in details[0]["properties"]


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        document = document[key]
    return document
