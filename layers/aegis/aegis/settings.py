"""Reading a function's settings from the environment the template sets (docs/CONTRACTS.md), and the boto3 objects
shared by a process.

Every function reads its settings the same way: its `settings.py` holds one settings class whose
`from_env(environ=None)` reads the variables through an `Environment`, which raises the function's own
ConfigurationError naming the variable, never echoing its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import boto3

from aegis.named_errors import ConfigurationError


class Environment:
    """The environment variables of one function (`os.environ` unless a mapping is given); every value stripped."""

    def __init__(self, error: type[ConfigurationError], environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._error = error

    def invalid(self, message: str) -> ConfigurationError:
        """The function's settings error, for a check of its own; the message must not echo the value."""
        return self._error(message)

    def optional(self, name: str, default: str = "") -> str:
        return self._environ.get(name, "").strip() or default

    def required(self, name: str) -> str:
        value = self.optional(name)
        if not value:
            raise self.invalid(f"{name} is required")
        return value

    def flag(self, name: str) -> bool:
        """`true` or `false` (any case); unset is false."""
        value = self.optional(name, "false").lower()
        if value not in ("true", "false"):
            raise self.invalid(f"{name} must be true or false")
        return value == "true"

    def items(self, name: str) -> tuple[str, ...]:
        """A comma-separated list, without blanks and repeats, in order; unset is empty."""
        return tuple(dict.fromkeys(part.strip() for part in self.optional(name).split(",") if part.strip()))

    def choice[T: str](self, name: str, choices: tuple[T, ...], default: T) -> T:
        value = self.optional(name, default)
        for choice in choices:
            if value == choice:
                return choice
        raise self.invalid(f"{name} must be one of {', '.join(choices)}")

    def number[N: (int, float)](self, name: str, kind: type[N], default: N | None = None) -> N:
        """A number; without a default the variable is required."""
        text = self.optional(name) if default is not None else self.required(name)
        if not text and default is not None:
            return default
        try:
            return kind(text)
        except ValueError:
            raise self.invalid(f"{name} must be a {'whole ' if kind is int else ''}number") from None


@cache
def dynamodb_resource() -> Any:
    """boto3's DynamoDB service resource, one per process (so per Lambda container): every `boto3.resource()` call
    builds its resource classes anew, about 15 ms of a cold start each."""
    return boto3.resource("dynamodb")


@cache
def dynamodb_table(name: str) -> Any:
    """The boto3 Table `name` (cached per process, so per Lambda container)."""
    return dynamodb_resource().Table(name)


def clear_caches() -> None:
    """Forget cached clients; the local stack calls this when it changes endpoints."""
    dynamodb_table.cache_clear()
    dynamodb_resource.cache_clear()
