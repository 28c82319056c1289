"""Recognise values that look like credentials, so that nothing persisted by AegisCloud can carry one.

Used by the agent's checkpoint serializer and by the audit writer: they refuse such values instead of scrubbing them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

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


class SecretShapedValue(ValueError):
    """A value that looks like a credential reached a place that must never hold one."""

    def __init__(self, kind: str, where: str) -> None:
        super().__init__(f"refused a {kind}-shaped value at {where}")
        self.kind = kind
        self.where = where


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_kind(text: str) -> str | None:
    """The kind of credential `text` looks like, or None."""
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


def walk_strings(value: Any, where: str = "$") -> Iterator[tuple[str, str]]:
    """Every string inside a JSON-like value (keys included), with a path saying where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}", str(key)
            yield from walk_strings(item, f"{where}.{key}")
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{where}[{index}]")


def refuse_secrets(value: Any, where: str = "$") -> None:
    """Raise SecretShapedValue if any string inside `value` looks like a credential."""
    for path, text in walk_strings(value, where):
        kind = secret_kind(text)
        if kind:
            raise SecretShapedValue(kind, path)
