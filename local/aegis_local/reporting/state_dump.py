"""`--dump-state DIR`: everything a mission persisted, as JSON files anyone can audit with their own list of secrets.

    DIR/tables/<table>.json          every item of every table (binary attributes as base64 and as latin-1 text, so a
                                     plain text search finds a secret inside a checkpoint blob too)
    DIR/executions/<name>.json       each Step Functions execution: description and full history, with its data
    DIR/logs/*.log                   the log of every function (and of the process), as captured during the run
    DIR/report.json, report.html     the mission report
    DIR/issued-secrets.sha256        the SHA-256 of every secret the local side knew of during the run, never the
                                     secret: `aegis-local leak-audit DIR` checks the dump against these
    DIR/manifest.json                what the dump holds

The dump is written from the stack while it still runs; it is itself searched by the leak audit that follows.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aegis_local.reporting.leak_audit import full_fingerprint

__all__ = ["FINGERPRINTS_FILE", "MANIFEST_FILE", "dump_state", "read_fingerprints", "write_fingerprints"]

FINGERPRINTS_FILE = "issued-secrets.sha256"
MANIFEST_FILE = "manifest.json"


def _json_default(value: Any) -> Any:
    raw = getattr(value, "value", value)
    if isinstance(raw, bytes | bytearray):
        data = bytes(raw)
        return {"base64": base64.b64encode(data).decode(), "latin1": data.decode("latin-1")}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, default=_json_default, indent=1, ensure_ascii=False), encoding="utf-8")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def dump_tables(session: Any, directory: Path) -> dict[str, int]:
    resource = session.resource("dynamodb")
    client = session.client("dynamodb")
    counts: dict[str, int] = {}
    for page in client.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            table = resource.Table(name)
            items: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"ConsistentRead": True}
            while True:
                answer = table.scan(**kwargs)
                items.extend(answer.get("Items", []))
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
            _write_json(directory / "tables" / f"{_safe(name)}.json", {"table": name, "items": items})
            counts[name] = len(items)
    return counts


def dump_executions(session: Any, directory: Path) -> int:
    sfn = session.client("stepfunctions")
    count = 0
    for machine in sfn.list_state_machines().get("stateMachines", []):
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
        for execution in (found for page in pages for found in page.get("executions", [])):
            arn = execution["executionArn"]
            history = [
                event
                for page in sfn.get_paginator("get_execution_history").paginate(
                    executionArn=arn, includeExecutionData=True
                )
                for event in page.get("events", [])
            ]
            description = sfn.describe_execution(executionArn=arn)
            description.pop("ResponseMetadata", None)
            _write_json(
                directory / "executions" / f"{_safe(execution['name'])}.json",
                {"describe": description, "history": history},
            )
            count += 1
    return count


def write_fingerprints(path: Path, secrets_by_source: Mapping[str, Iterable[str]]) -> int:
    """One line per secret: `<sha256>  <source>`. Returns how many were written."""
    lines = sorted(
        {f"{full_fingerprint(value)}  {source}" for source, values in secrets_by_source.items() for value in values}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def read_fingerprints(path: Path) -> dict[str, str]:
    """`write_fingerprints`' file back: SHA-256 -> source. Malformed lines raise ValueError naming the line."""
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, source = line.partition("  ")
        digest = digest.strip().lower()
        if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            raise ValueError(f"{path.name} line {number}: not a SHA-256 fingerprint")
        found[digest] = source.strip() or "unknown"
    return found


def dump_state(
    session: Any,
    directory: Path,
    *,
    logs: Iterable[Path] = (),
    reports: Iterable[Path] = (),
    secrets_by_source: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """Write the dump (see the module docstring) and return its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    tables = dump_tables(session, directory)
    executions = dump_executions(session, directory)
    copied_logs = []
    for log in logs:
        target = directory / "logs" / log.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
        copied_logs.append(log.name)
    copied_reports = []
    for report in reports:
        shutil.copyfile(report, directory / report.name)
        copied_reports.append(report.name)
    fingerprints = 0
    if secrets_by_source is not None:
        fingerprints = write_fingerprints(directory / FINGERPRINTS_FILE, secrets_by_source)
    manifest = {
        "tables": tables,
        "executions": executions,
        "logs": copied_logs,
        "reports": copied_reports,
        "fingerprints": fingerprints,
        "how_to_audit": (
            f"aegis-local leak-audit {directory.name} (checks every file against {FINGERPRINTS_FILE}), or "
            f"aegis-local leak-audit {directory.name} --secrets-file YOUR-LIST"
        ),
    }
    _write_json(directory / MANIFEST_FILE, manifest)
    return manifest
