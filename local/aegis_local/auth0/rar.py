"""Auth0's limits on CIBA request parameters: binding messages and Rich Authorization Requests."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from aegis_local.auth0.errors import OAuthError

BINDING_MESSAGE_MAX_CHARS = 64
# Auth0 allows alphanumerics and `+-_.,:#`; its own examples use spaces, so spaces are allowed too.
BINDING_MESSAGE_PATTERN = re.compile(r"^[A-Za-z0-9 +\-_.,:#]+$")
RAR_MAX_BYTES = 5 * 1024
RAR_MAX_OBJECTS = 5
RAR_MAX_PROPERTIES = 10
RAR_MAX_NAME_CHARS = 255
RAR_MAX_VALUE_CHARS = 255
RAR_MAX_DEPTH = 5
RAR_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.-]+$")


def _invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def _invalid_details(description: str) -> OAuthError:
    return OAuthError(400, "invalid_authorization_details", description)


def validate_binding_message(value: str | None) -> str:
    if value is None or value == "":
        raise _invalid_request("binding_message is required")
    if len(value) > BINDING_MESSAGE_MAX_CHARS:
        raise _invalid_request(f"binding_message must be at most {BINDING_MESSAGE_MAX_CHARS} characters")
    if not BINDING_MESSAGE_PATTERN.fullmatch(value):
        raise _invalid_request("binding_message may only contain alphanumerics, spaces and the characters +-_.,:#")
    return value


def validate_requested_expiry(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if not re.fullmatch(r"[0-9]+", value):
        raise _invalid_request("requested_expiry must be a positive integer")
    expiry = int(value)
    if not 1 <= expiry <= 300:
        raise _invalid_request("requested_expiry must be between 1 and 300 seconds")
    return expiry


def parse_authorization_details(raw: str, registered_types: Collection[str]) -> list[dict[str, Any]]:
    """Parse and check the `authorization_details` parameter against Auth0's documented limits."""
    if len(raw.encode("utf-8")) > RAR_MAX_BYTES:
        raise _invalid_details(f"authorization_details must be at most {RAR_MAX_BYTES} bytes")
    try:
        details = json.loads(raw)
    except ValueError as exc:
        raise _invalid_details("authorization_details must be a JSON array") from exc
    if not isinstance(details, list) or not details:
        raise _invalid_details("authorization_details must be a non-empty JSON array")
    if len(details) > RAR_MAX_OBJECTS:
        raise _invalid_details(f"authorization_details may hold at most {RAR_MAX_OBJECTS} objects")
    for index, detail in enumerate(details):
        if not isinstance(detail, dict):
            raise _invalid_details(f"authorization_details[{index}] must be an object")
        detail_type = detail.get("type")
        if not isinstance(detail_type, str) or not detail_type:
            raise _invalid_details(f"authorization_details[{index}].type is required")
        if detail_type not in registered_types:
            raise _invalid_details(f"authorization_details type {detail_type!r} is not registered for the API")
        properties = {name: value for name, value in detail.items() if name != "type"}
        _check_object(properties, f"authorization_details[{index}]", depth=1)
    return details


def _check_object(obj: dict[str, Any], path: str, depth: int) -> None:
    if depth > RAR_MAX_DEPTH:
        raise _invalid_details(f"{path} is nested deeper than {RAR_MAX_DEPTH} levels")
    if len(obj) > RAR_MAX_PROPERTIES:
        raise _invalid_details(f"{path} has more than {RAR_MAX_PROPERTIES} properties")
    for name, value in obj.items():
        if len(name) > RAR_MAX_NAME_CHARS:
            raise _invalid_details(f"{path}: property names must be at most {RAR_MAX_NAME_CHARS} characters")
        if not RAR_NAME_PATTERN.fullmatch(name):
            raise _invalid_details(f"{path}: property name {name[:40]!r} must match [a-zA-Z0-9_.-]")
        _check_value(value, f"{path}.{name}", depth)


def _check_value(value: Any, path: str, depth: int) -> None:
    if isinstance(value, dict):
        _check_object(value, path, depth + 1)
    elif isinstance(value, list):
        if depth + 1 > RAR_MAX_DEPTH:
            raise _invalid_details(f"{path} is nested deeper than {RAR_MAX_DEPTH} levels")
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, str) and len(value) > RAR_MAX_VALUE_CHARS:
        raise _invalid_details(f"{path}: values must be at most {RAR_MAX_VALUE_CHARS} characters")
