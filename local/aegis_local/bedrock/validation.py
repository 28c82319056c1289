"""A Converse request checked against botocore's own `bedrock-runtime` service model, as Bedrock checks it.

The body of `POST /model/{modelId}/converse` carries every input member but the URI-bound `modelId` (restJson1,
member names as they are: Converse's body members declare no other wire name). botocore's `ParamValidator` is
what refuses a bad call on the client side; running it here refuses what a client that skipped it (or a raw HTTP
post) would send: missing required members, wrong types, unknown members, values below a declared minimum.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StringShape, StructureShape
from botocore.validate import ParamValidator

SERVICE = "bedrock-runtime"
OPERATION = "Converse"


class InvalidRequest(ValueError):
    """The request is not a valid Converse call; the message is what the ValidationException says."""


@functools.cache
def converse_operation() -> OperationModel:
    session = botocore.session.get_session()
    return session.get_service_model(SERVICE).operation_model(OPERATION)


def _body_members() -> frozenset[str]:
    shape = converse_operation().input_shape
    return frozenset(name for name, member in shape.members.items() if "location" not in member.serialization)


def validated_request(model_id: str, body: bytes) -> dict[str, Any]:
    """The Converse parameters (`modelId` included) of a request with this percent-decoded model id and body."""
    try:
        parsed = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidRequest(f"the request body is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("the request body must be a JSON object")
    # A URI-bound member in the body is not where the protocol puts it (members unknown anywhere are reported below).
    bound = sorted(set(parsed) & (set(converse_operation().input_shape.members) - _body_members()))
    if bound:
        raise InvalidRequest(f"Unknown parameter in input: {bound[0]!r} belongs in the URI, not the body")
    params = {**parsed, "modelId": model_id}
    report = ParamValidator().validate(params, converse_operation().input_shape)
    if report.has_errors():
        raise InvalidRequest(report.generate_report())
    beyond = _beyond_client_checks(params, converse_operation().input_shape, "")
    if beyond:
        raise InvalidRequest("Parameter validation failed:\n" + "\n".join(beyond))
    return params


def _beyond_client_checks(value: Any, shape: Shape, path: str) -> list[str]:
    """What the service checks from the same model and botocore's client does not: enum values, and the declared
    maximum of lengths and numbers (the client checks only minimums)."""
    errors: list[str] = []
    maximum = shape.metadata.get("max")
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                errors += _beyond_client_checks(value[name], member, f"{path}.{name}" if path else name)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        if maximum is not None and len(value) > maximum:
            errors.append(f"Invalid length for parameter {path}, value: {len(value)}, valid max length: {maximum}")
        for index, item in enumerate(value):
            errors += _beyond_client_checks(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            errors += _beyond_client_checks(item, shape.value, f"{path}.{key}")
    elif isinstance(shape, StringShape) and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            errors.append(f"Invalid value for parameter {path}, value: {value}, valid values: {', '.join(shape.enum)}")
        if maximum is not None and len(value) > maximum:
            errors.append(f"Invalid length for parameter {path}, value: {len(value)}, valid max length: {maximum}")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, int | float):  # noqa: SIM102
        if maximum is not None and value > maximum:
            errors.append(f"Invalid value for parameter {path}, value: {value}, valid max value: {maximum}")
    return errors
