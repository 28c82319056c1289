"""Recognise values that look like credentials, so that nothing persisted by AegisCloud can carry one.

The agent's checkpoint serializer, its mission documents and the audit writer refuse such values
(`refuse_secrets`); what records resource data it does not control (the scan's evidence, the executor's records
and results) withholds them instead (`withhold_secrets`).

Identifiers are not secrets, whatever they look like. Resource names are chosen by whoever created the resource, and
AWS lets an IAM user be called like an access key id or a JWT. So:

- a whole string that is a well-formed ARN is an identifier (`secret_kind` returns None for it);
- a model field declared with an `IdentifierShape` (`Annotated[str, IAM_USER_NAME]`), or a position inside untyped
  JSON that a model declares through `json_identifiers()`, holds an identifier when the value fits AWS's own
  character set and length for that field. `walk_strings` and `refuse_secrets` skip it there; anywhere else, the same
  value is screened like any text. The shapes are narrow (at most 128 characters of a small alphabet): an issued
  token or session credential is longer, so it never fits one.

Paths in refusals name model fields and list indices, never a dict key (the key may be the secret): the n-th entry of
a dict is `{n}`.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

WITHHELD = "<withheld>"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b")),
    ("bearer", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{8,}", re.IGNORECASE)),
    ("pem", re.compile(r"-----BEGIN [A-Z ]*(?:PRIVATE KEY|CERTIFICATE)-----")),
    ("github-token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    # Last: a 40-character base64 run is what an AWS secret key looks like, but also part of many tokens above.
    ("aws-secret-access-key", re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")),
)
# A run of this many token characters with this much entropy per character is treated as a secret.
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.~]{32,}")
_ENTROPY_BITS_PER_CHAR = 4.0
# AWS identifiers and hex digests are long but harmless; they are what the agent works with.
_IDENTIFIERS = re.compile(
    r"arn:aws[\w-]*:[^\s\"']*|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_HARMLESS = re.compile(r"^(?:[0-9a-f]{32,64}|chg-[0-9a-f]{20}|(?:sg|sgr|vpc|subnet|eni|fl|vol|i)-[0-9a-f]{8,17})$")


_SEPARATORS = re.compile(r"[/._\-+=~]")
_WORDS_AND_NUMBERS = re.compile(r"(?:[A-Z]?[a-z]+|[0-9]+)+")
_WORD = re.compile(r"[A-Z]?[a-z]+|[0-9]+")
_MIN_MEAN_WORD_LENGTH = 3.0


def _looks_chosen_by_a_person(token: str) -> bool:
    """Names people choose (buckets, DNS names, API paths, CamelCase ids) are single-case, or words and numbers
    between separators; random credentials mix cases and digits with no such shape."""
    if token.islower() or token.isupper():
        return True
    parts = [part for part in _SEPARATORS.split(token) if part]
    if not all(_WORDS_AND_NUMBERS.fullmatch(part) for part in parts):
        return False
    # Words people write are several letters long; "Zx9Qw3Er7Ty1" only looks like words.
    words = [word for part in parts for word in _WORD.findall(part)]
    return sum(map(len, words)) / len(words) >= _MIN_MEAN_WORD_LENGTH


@dataclass(frozen=True)
class IdentifierShape:
    """AWS's own character set and length for one kind of identifier: a value that fits it is that identifier."""

    name: str
    pattern: str

    def fits(self, text: str) -> bool:
        return _compiled(self.pattern).fullmatch(text) is not None


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


# IAM names: "alphanumeric characters and +=,.@_-" (IAM API reference, CreateUser/CreateRole/CreateGroup).
IAM_USER_NAME = IdentifierShape("iam-user-name", r"[A-Za-z0-9_+=,.@-]{1,64}")
IAM_ROLE_NAME = IdentifierShape("iam-role-name", r"[A-Za-z0-9_+=,.@-]{1,64}")
IAM_GROUP_NAME = IdentifierShape("iam-group-name", r"[A-Za-z0-9_+=,.@-]{1,128}")
# CloudTrail: 3-128 letters, digits, periods, underscores and dashes, starting and ending with a letter or digit.
TRAIL_NAME = IdentifierShape("cloudtrail-trail-name", r"[A-Za-z0-9][A-Za-z0-9_.-]{1,126}[A-Za-z0-9]")
# S3 general purpose buckets: 3-63 lowercase letters, digits, dots and hyphens.
BUCKET_NAME = IdentifierShape("s3-bucket-name", r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# partition:service:region:account:resource. The resource keeps to the characters AWS resource ids and names use, and
# no segment of it (between ":" and "/") is longer than the longest IAM name, so no token hides in one.
ARN = IdentifierShape(
    "arn",
    r"arn:aws(?:-[a-z]+)*:[a-z0-9-]{1,63}:(?:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})?:(?:[0-9]{12}|aws)?:"
    r"[A-Za-z0-9_+=,.@*#-]{1,128}(?:[:/][A-Za-z0-9_+=,.@*#-]{0,128})*",
)
_ARN_MAX = 2048

SHAPES: dict[str, IdentifierShape] = {
    shape.name: shape for shape in (IAM_USER_NAME, IAM_ROLE_NAME, IAM_GROUP_NAME, TRAIL_NAME, BUCKET_NAME, ARN)
}


def is_arn(text: str) -> bool:
    return len(text) <= _ARN_MAX and ARN.fits(text)


class SecretShapedValue(ValueError):
    """A value that looks like a credential reached a place that must never hold one. `where` names the place by
    model fields and positions only, never by the value or a dict key."""

    def __init__(self, kind: str, where: str) -> None:
        super().__init__(f"refused a {kind}-shaped value at {where}")
        self.kind = kind
        self.where = where


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_kind(text: str) -> str | None:
    """The kind of credential `text` looks like, or None. A whole ARN is an identifier, never a credential."""
    if is_arn(text):
        return None
    for kind, pattern in _PATTERNS:
        match = pattern.search(text)
        # A 40-character run of letters only is a word-ish identifier, not a secret key.
        if match and not (kind == "aws-secret-access-key" and not any(c.isdigit() for c in match.group(0))):
            return kind
    for match in _LONG_TOKEN.finditer(_IDENTIFIERS.sub(" ", text)):
        token = match.group(0)
        if _HARMLESS.match(token) or _looks_chosen_by_a_person(token):
            continue
        if _entropy(token) >= _ENTROPY_BITS_PER_CHAR:
            return "high-entropy"
    return None


# --- where identifiers are ----------------------------------------------------------------------------------------
Path = tuple[str | int, ...]
_ANY_INDEX = "[]"


def parse_path(text: str) -> tuple[str, ...]:
    """`"attachments.users[]"` -> `("attachments", "users", "[]")`: keys, and `[]` for every item of a list."""
    segments: list[str] = []
    for part in text.split("."):
        name = part
        while name.endswith(_ANY_INDEX):
            name = name.removesuffix(_ANY_INDEX)
        if name:
            segments.append(name)
        segments.extend([_ANY_INDEX] * ((len(part) - len(name)) // len(_ANY_INDEX)))
    return tuple(segments)


def _unwrapped(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    metadata: tuple[Any, ...] = ()
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata += tuple(extra)
    return annotation, metadata


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType)


def _shape_of(annotation: Any, metadata: tuple[Any, ...] = ()) -> IdentifierShape | None:
    """The identifier shape a string declared as `annotation` (with field `metadata`) must fit, if any."""
    base, own = _unwrapped(annotation)
    for item in (*metadata, *own):
        if isinstance(item, IdentifierShape):
            return item
    if _is_union(base):
        shapes = {_shape_of(arm) for arm in get_args(base) if arm is not NoneType}
        shapes.discard(None)
        return shapes.pop() if len(shapes) == 1 else None
    return None


def _item_annotation(annotation: Any, index: int) -> Any:
    base, _ = _unwrapped(annotation)
    if _is_union(base):
        arms = [arm for arm in get_args(base) if arm is not NoneType]
        return _item_annotation(arms[0], index) if len(arms) == 1 else Any
    args = get_args(base)
    if get_origin(base) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[index] if index < len(args) else Any
    if get_origin(base) is dict:
        return args[1] if len(args) == 2 else Any
    return args[0] if args else Any


def declared_identifiers(annotation: Any, _depth: int = 0) -> dict[str, IdentifierShape]:
    """The identifier positions a type declares, as paths (`"users[]"`, `"trails[].name"`, `""` for the value itself):
    what `json_identifiers()` of a model holding that type's JSON returns."""
    base, _ = _unwrapped(annotation)
    shape = _shape_of(annotation)
    if shape is not None:
        return {"": shape}
    if _depth > 8:
        return {}
    if _is_union(base):
        arms = [arm for arm in get_args(base) if arm is not NoneType]
        return declared_identifiers(arms[0], _depth + 1) if len(arms) == 1 else {}
    if isinstance(base, type) and issubclass(base, BaseModel):
        found: dict[str, IdentifierShape] = {}
        for name, field in base.model_fields.items():
            own = _shape_of(field.annotation, tuple(field.metadata))
            if own is not None:
                found[name] = own
                continue
            for path, inner in declared_identifiers(field.annotation, _depth + 1).items():
                found[f"{name}{path}" if path.startswith(_ANY_INDEX) or not path else f"{name}.{path}"] = inner
        return found
    if get_origin(base) in (tuple, list, set, frozenset):
        args = [arg for arg in get_args(base) if arg is not Ellipsis]
        if len(args) == 1:
            return {
                f"{_ANY_INDEX}{path}" if path.startswith(_ANY_INDEX) or not path else f"{_ANY_INDEX}.{path}": inner
                for path, inner in declared_identifiers(args[0], _depth + 1).items()
            }
    return {}


def _expand(value: Any, segments: tuple[str, ...], at: Path) -> Iterator[Path]:
    """The concrete positions inside `value` that a declared path (with `[]` wildcards) names."""
    if not segments:
        yield at
        return
    head, rest = segments[0], segments[1:]
    if head == _ANY_INDEX and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _expand(item, rest, (*at, index))
    elif isinstance(value, Mapping) and head in value:
        yield from _expand(value[head], rest, (*at, head))
    elif isinstance(value, BaseModel) and head in type(value).model_fields:
        yield from _expand(getattr(value, head), rest, (*at, head))


@dataclass
class _Positions:
    """Where a model's JSON dump holds identifiers (and of which shape), and which of its dicts are models."""

    shapes: dict[Path, IdentifierShape]
    models: set[Path]


def _model_positions(model: BaseModel, at: Path, found: _Positions) -> None:
    found.models.add(at)
    for name, field in type(model).model_fields.items():
        _value_positions(getattr(model, name), field.annotation, tuple(field.metadata), (*at, name), found)
    declared = getattr(model, "json_identifiers", None)
    if callable(declared):
        for text, shape in declared().items():
            for position in _expand(model, parse_path(text), at):
                found.shapes[position] = shape


def _value_positions(value: Any, annotation: Any, metadata: tuple[Any, ...], at: Path, found: _Positions) -> None:
    if isinstance(value, str):
        shape = _shape_of(annotation, metadata)
        if shape is not None:
            found.shapes[at] = shape
    elif isinstance(value, BaseModel):
        _model_positions(value, at, found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _value_positions(item, _item_annotation(annotation, index), (), (*at, index), found)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _value_positions(item, _item_annotation(annotation, 0), (), (*at, key), found)


def _json_of(model: BaseModel, at: Path) -> tuple[Any, _Positions]:
    found = _Positions(shapes={}, models=set())
    _model_positions(model, at, found)
    return model.model_dump(mode="json"), found


def _declared(value: Any, identifiers: Mapping[str, IdentifierShape] | None) -> _Positions:
    """The positions inside a plain `value` that the caller's declared paths name."""
    shapes = {
        position: shape
        for text, shape in (identifiers or {}).items()
        for position in _expand(value, parse_path(text), ())
    }
    return _Positions(shapes=shapes, models=set())


def _merged(positions: _Positions, model: BaseModel, at: Path) -> tuple[Any, _Positions]:
    """A model met inside a value: its JSON dump, and the positions it declares added to the caller's."""
    dumped, found = _json_of(model, at)
    return dumped, _Positions(shapes={**positions.shapes, **found.shapes}, models=positions.models | found.models)


# --- walking -----------------------------------------------------------------------------------------------------
def walk_strings(
    value: Any, where: str = "$", identifiers: Mapping[str, IdentifierShape] | None = None
) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON-like value or pydantic model that must be screened (dict keys included), with a
    path saying where it is. A string at an identifier position that fits its shape is an identifier and is skipped:
    model fields declared with a shape, positions a model names in `json_identifiers()`, and `identifiers` (declared
    paths such as `"attachments.users[]"`) inside a plain `value`."""
    yield from _walk(value, where, (), _declared(value, identifiers))


def _walk(value: Any, where: str, at: Path, positions: _Positions) -> Iterator[tuple[str, str]]:
    if isinstance(value, BaseModel):
        value, positions = _merged(positions, value, at)
    if isinstance(value, str):
        shape = positions.shapes.get(at)
        if shape is None or not shape.fits(value):
            yield where, value
    elif isinstance(value, Mapping):
        is_model = at in positions.models
        for index, (key, item) in enumerate(value.items()):
            if is_model:
                # A model's keys are its field names: code, not data.
                yield from _walk(item, f"{where}.{key}", (*at, key), positions)
            else:
                yield f"{where}{{{index}}}<key>", str(key)
                yield from _walk(item, f"{where}{{{index}}}", (*at, key), positions)
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _walk(item, f"{where}[{index}]", (*at, index), positions)


def refuse_secrets(value: Any, where: str = "$", identifiers: Mapping[str, IdentifierShape] | None = None) -> None:
    """Raise SecretShapedValue if any string inside `value` looks like a credential (identifiers excepted)."""
    for path, text in walk_strings(value, where, identifiers):
        kind = secret_kind(text)
        if kind:
            raise SecretShapedValue(kind, path)


def withhold_secrets(
    value: Any, where: str = "$", identifiers: Mapping[str, IdentifierShape] | None = None
) -> tuple[Any, list[tuple[str, str]]]:
    """`value` as JSON (a model is dumped) with every secret-shaped string replaced by `WITHHELD` and every entry
    under a secret-shaped key dropped (identifiers excepted), and `(where, kind)` for each: what a record may keep of
    data it does not control."""
    notes: list[tuple[str, str]] = []
    flagged = {path: kind for path, text in walk_strings(value, where, identifiers) if (kind := secret_kind(text))}
    if not flagged:
        return (value.model_dump(mode="json") if isinstance(value, BaseModel) else value), notes

    def rebuild(item: Any, path: str, at: Path, positions: _Positions) -> Any:
        if isinstance(item, BaseModel):
            item, positions = _merged(positions, item, at)
        if isinstance(item, str):
            if path in flagged:
                notes.append((path, flagged[path]))
                return WITHHELD
            return item
        if isinstance(item, Mapping):
            kept: dict[Any, Any] = {}
            is_model = at in positions.models
            for index, (key, entry) in enumerate(item.items()):
                entry_path = f"{path}.{key}" if is_model else f"{path}{{{index}}}"
                if not is_model and f"{entry_path}<key>" in flagged:
                    notes.append((f"{entry_path}<key>", flagged[f"{entry_path}<key>"]))
                    continue
                kept[key] = rebuild(entry, entry_path, (*at, key), positions)
            return kept
        if isinstance(item, list | tuple | set | frozenset):
            return [rebuild(entry, f"{path}[{i}]", (*at, i), positions) for i, entry in enumerate(item)]
        return item

    return rebuild(value, where, (), _declared(value, identifiers)), notes


# --- texts shown to people ---------------------------------------------------------------------------------------
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def visible(text: str) -> str:
    """`text` with every control, format (bidirectional overrides and marks, zero-width characters), private-use and
    line/paragraph separator character spelled out as `\\uXXXX`: shown to a person, a name cannot reorder, hide or
    break the text around it."""
    if text.isprintable():
        return text
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _INVISIBLE_CATEGORIES else char for char in text
    )


def display_text(text: str) -> str:
    """A text built from resource data, as shown to a person (approval texts, binding message, reports): every run
    that looks like a credential is replaced by `WITHHELD` and invisible characters are spelled out."""
    text = visible(text)
    if secret_kind(text) is None:
        return text
    # Piece by piece: names between separators, so that the rest of the text stays readable.
    pieces = re.split(r"([\s,;]+)", text)
    shown = "".join(WITHHELD if secret_kind(piece) else piece for piece in pieces)
    return shown if secret_kind(shown) is None else WITHHELD


# --- refusals of untrusted input -----------------------------------------------------------------------------------
# A path segment is named when it reads as a field name: a key a model does not know is the sender's text, and may be
# a credential pasted where a field belongs.
_NAMEABLE_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
UNNAMED_SEGMENT = "(key)"


def error_location(loc: Iterable[str | int]) -> str:
    """A validation error's location (pydantic's `loc`), dotted, each segment that is not a plain field name or
    index shown as `(key)`."""
    return ".".join(
        str(part) if _NAMEABLE_SEGMENT.fullmatch(str(part)) and secret_kind(str(part)) is None else UNNAMED_SEGMENT
        for part in loc
    )


def error_message(error: Mapping[str, Any]) -> str:
    """A validation error's message without the input it may quote: pydantic quotes an unknown discriminator, and a
    validator may quote what it refused; such a message is replaced by the error's type."""
    if error.get("type") == "union_tag_invalid":
        context = error.get("ctx")
        return f"unknown {context.get('discriminator', 'kind') if isinstance(context, Mapping) else 'kind'}"
    message = str(error.get("msg", ""))
    return message if secret_kind(message) is None else str(error.get("type", "invalid"))
