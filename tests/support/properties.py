"""Hypothesis strategies shared by the property tests (tests/unit/**/test_*_properties.py): the inputs nobody
hand-picks.

- `json_values()`: any JSON document (what a Lambda or a DynamoDB item can carry), nested and bounded;
- `hostile_text()`: text as resource data can hold it (any Unicode, control characters, right-to-left marks and
  overrides, zero-width characters, at the 255-character boundary of an approval property);
- `secret_values()`: values the project's own guard (aegis.secrets_guard) calls secret-shaped, built from drawn
  characters, so each run plants the same ones and a failure reproduces; nothing key-shaped is committed;
- `mutated()`: a valid document with one field replaced, removed, or one unknown field added, at any depth;
- `every_planting()`: a valid document with a secret planted at each position in turn, as a value or a key.

Every property test asserts the same three things of its target: it ends in the typed result or one named error,
never another exception; malformed input is never acted on; and a planted secret never appears in the error text.
"""

from __future__ import annotations

import copy
import hashlib
import string
from collections.abc import Iterator, Sequence
from typing import Any

from hypothesis import strategies as st

from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.secrets_guard import secret_kind

Path = tuple[str | int, ...]

# Characters a name or a description can hide: C0/C1 controls, bidirectional marks, embeddings, overrides and
# isolates, zero-width characters, line and paragraph separators, a byte-order mark and a private-use character.
INVISIBLE_CHARACTERS = (
    "\x00\x07\x1b\x7f\x85\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2028\u2029\u2066\u2067\u2068\u2069\ufeff\ue000"
)
_BASE64URL = string.ascii_letters + string.digits + "-_"
_UPPER_DIGITS = string.ascii_uppercase + string.digits


def hostile_text(max_size: int = PROPERTY_VALUE_MAX + 1) -> st.SearchStrategy[str]:
    """Text of any Unicode (surrogates excluded: JSON cannot carry them as text), weighted towards invisible
    characters, plus runs exactly at and one past the approval-property limit."""
    characters = st.one_of(st.sampled_from(INVISIBLE_CHARACTERS), st.characters(exclude_categories=["Cs"]))
    boundary = st.sampled_from([PROPERTY_VALUE_MAX - 1, PROPERTY_VALUE_MAX, PROPERTY_VALUE_MAX + 1]).flatmap(
        lambda size: st.text(characters, min_size=size, max_size=size)
    )
    return st.one_of(st.text(characters, max_size=max_size), boundary)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars (big integers and odd floats included), lists and objects, nested."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
        hostile_text(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


@st.composite
def secret_values(draw: st.DrawFn) -> str:
    """A value aegis.secrets_guard calls secret-shaped: a JWT, an AWS access key id or secret key, a bearer token or
    a long high-entropy token. Each shape is built to match the guard's own pattern whatever is drawn, so shrinking
    stays within secret-shaped values."""
    shape = draw(st.sampled_from(["jwt", "access-key-id", "secret-access-key", "bearer", "high-entropy"]))
    if shape == "jwt":
        body = draw(st.text(_BASE64URL, min_size=20, max_size=40))
        signature = draw(st.text(_BASE64URL, min_size=40, max_size=86))
        value = f"eyJhbGciOiJSUzI1NiJ9.eyJ{body}.{signature}"
    elif shape == "access-key-id":
        value = draw(st.sampled_from(["AKIA", "ASIA"])) + draw(st.text(_UPPER_DIGITS, min_size=16, max_size=16))
    elif shape == "secret-access-key":
        # The guard wants a digit in the 40 characters (a run of letters only reads as a word).
        value = draw(st.sampled_from(string.digits)) + draw(
            st.text(string.ascii_letters + string.digits + "/+", min_size=39, max_size=39)
        )
    elif shape == "bearer":
        value = "Bearer " + draw(st.text(_BASE64URL, min_size=16, max_size=40))
    else:
        value = draw(st.text(_BASE64URL, min_size=48, max_size=64))
    if secret_kind(value) is None:
        # A drawn token can read as words to the guard: derive an access key id from it instead, drawing nothing more.
        value = "AKIA" + hashlib.sha256(value.encode()).hexdigest()[:16].upper()
    assert secret_kind(value), "a planted value must be secret-shaped, or the property proves nothing"
    return value


def leaf_paths(document: Any, at: Path = ()) -> list[Path]:
    """Every position in a JSON document, containers and leaves, depth first (the root excluded)."""
    paths: list[Path] = []
    children: Sequence[tuple[str | int, Any]]
    if isinstance(document, dict):
        children = list(document.items())
    elif isinstance(document, list):
        children = list(enumerate(document))
    else:
        return paths
    for key, child in children:
        paths.append((*at, key))
        paths.extend(leaf_paths(child, (*at, key)))
    return paths


def replaced(document: Any, path: Path, value: Any) -> Any:
    """A deep copy of `document` with the value at `path` replaced by `value`."""
    copied = copy.deepcopy(document)
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return copied


def removed(document: Any, path: Path) -> Any:
    """A deep copy of `document` without the entry at `path` (a list item is removed, shifting the rest)."""
    copied = copy.deepcopy(document)
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return copied


@st.composite
def mutated(draw: st.DrawFn, document: Any, values: st.SearchStrategy[Any] | None = None) -> Any:
    """`document` with exactly one change at one position: a value replaced (by `values`, default any JSON), an
    entry removed, or an unknown key added to an object."""
    paths = leaf_paths(document)
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    if how == "add":
        objects = [()] + [path for path in paths if isinstance(_at(document, path), dict)]
        where = draw(st.sampled_from(objects))
        target = _at(document, where)
        key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in target))
        return replaced(document, (*where, key), draw(values or json_values()))
    path = draw(st.sampled_from(paths))
    if how == "remove":
        return removed(document, path)
    return replaced(document, path, draw(values or json_values()))


def _at(document: Any, path: Path) -> Any:
    for key in path:
        document = document[key]
    return document


def every_planting(document: Any, secret: str) -> Iterator[Any]:
    """`document` with `secret` planted (`planted`) at each position in turn, the root included: every position is
    tried in every example, so no position is left to chance."""
    for path in [(), *leaf_paths(document)]:
        yield planted(document, path, secret)


def planted(document: Any, path: Path, secret: str) -> Any:
    """`document` with `secret` written at `path`: as the value there, or as the key of an added entry when `path`
    is an object (a dict key may hold the secret too)."""
    target = _at(document, path) if path else document
    if isinstance(target, dict):
        return replaced(document, (*path, secret), "x")
    return replaced(document, path, secret)
