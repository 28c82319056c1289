"""Settings shared by every function, read from the environment the template sets (docs/CONTRACTS.md)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3


class MissingSetting(RuntimeError):
    """A required environment variable is not set: the deployment is incomplete."""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        if default is not None:
            return default
        raise MissingSetting(f"environment variable {name} is required")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, "true" if default else "false").strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in env(name, default or " ").split(",") if part.strip()]


@cache
def dynamodb_resource() -> Any:
    """boto3's DynamoDB service resource, one per process (so per Lambda container): every `boto3.resource()` call
    builds its resource classes anew, about 15 ms of a cold start each."""
    return boto3.resource("dynamodb")


@cache
def dynamodb_table(env_name: str) -> Any:
    """The boto3 Table named by an environment variable (cached per process, so per Lambda container)."""
    return dynamodb_resource().Table(env(env_name))


def clear_caches() -> None:
    """Forget cached clients; the local stack calls this when it changes endpoints."""
    dynamodb_table.cache_clear()
    dynamodb_resource.cache_clear()
