"""The leak audit: search every place a mission persisted for every secret that was issued during it.

Places: every item of every DynamoDB table, every Step Functions execution (input, output, history), captured logs
and report files. A hit names the place and a fingerprint of the value, never the value itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
from pydantic import BaseModel, Field

MIN_SECRET_LENGTH = 8  # shorter values would match by accident and prove nothing


class LeakHit(BaseModel):
    place: str
    fingerprint: str  # sha256 prefix of the value that was found


class LeakAuditResult(BaseModel):
    values_searched: int
    places_searched: int
    hits: list[LeakHit] = Field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.hits

    def summary(self) -> str:
        verdict = "no secret found" if self.clean else f"{len(self.hits)} LEAKS"
        return f"leak audit: {self.values_searched} values searched in {self.places_searched} places: {verdict}"


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def _as_text(value: Any) -> str:
    """JSON text of a value, with binary attributes both as base64 and as raw bytes decoded leniently."""

    def default(obj: Any) -> Any:
        raw = getattr(obj, "value", obj)
        if isinstance(raw, bytes | bytearray):
            return base64.b64encode(raw).decode() + " " + bytes(raw).decode("latin-1")
        return str(obj)

    return json.dumps(value, default=default, ensure_ascii=False)


def dynamodb_places(session: boto3.Session) -> Iterator[tuple[str, str]]:
    client = session.client("dynamodb")
    for page in client.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            for scan_page in client.get_paginator("scan").paginate(TableName=table):
                for index, item in enumerate(scan_page.get("Items", [])):
                    yield f"dynamodb:{table}[{index}]", _as_text(item)


def stepfunctions_places(session: boto3.Session) -> Iterator[tuple[str, str]]:
    client = session.client("stepfunctions")
    for machine in client.list_state_machines().get("stateMachines", []):
        executions = client.list_executions(stateMachineArn=machine["stateMachineArn"]).get("executions", [])
        for execution in executions:
            arn = execution["executionArn"]
            yield f"stepfunctions:{execution['name']}:describe", _as_text(client.describe_execution(executionArn=arn))
            history = client.get_execution_history(executionArn=arn, maxResults=1000).get("events", [])
            yield f"stepfunctions:{execution['name']}:history", _as_text(history)


def file_places(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    for path in paths:
        if path.is_dir():
            yield from file_places(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            yield f"file:{path.name}", path.read_bytes().decode("utf-8", errors="replace")


def audit(secrets: Iterable[str], places: Iterable[tuple[str, str]]) -> LeakAuditResult:
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH})
    hits: list[LeakHit] = []
    count = 0
    for place, text in places:
        count += 1
        hits.extend(LeakHit(place=place, fingerprint=fingerprint(value)) for value in values if value in text)
    return LeakAuditResult(values_searched=len(values), places_searched=count, hits=hits)


def audit_stack(session: boto3.Session, secrets: Iterable[str], files: Iterable[Path] = ()) -> LeakAuditResult:
    """Everything a mission on the local stack persisted, searched for every value in `secrets`."""
    places = [*dynamodb_places(session), *stepfunctions_places(session), *file_places(files)]
    return audit(secrets, places)
