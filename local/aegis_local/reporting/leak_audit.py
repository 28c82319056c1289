"""The leak audit: search every place a mission persisted for every secret that was issued during it.

Places: every item of every DynamoDB table, every Step Functions execution (input, output, history), every message
waiting in an SQS queue (the dead-letter queues), every notification published, captured logs and report files. A
hit names the place and a fingerprint of the value, never the value itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    sources: dict[str, int] = Field(default_factory=dict)  # where the searched values came from -> how many
    places: dict[str, int] = Field(default_factory=dict)  # kind of place -> how many were searched
    notes: list[str] = Field(default_factory=list)  # what could not be searched for, and why

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
        pages = client.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
        for execution in (found for page in pages for found in page.get("executions", [])):
            arn = execution["executionArn"]
            yield f"stepfunctions:{execution['name']}:describe", _as_text(client.describe_execution(executionArn=arn))
            history = [
                event
                for page in client.get_paginator("get_execution_history").paginate(
                    executionArn=arn, includeExecutionData=True
                )
                for event in page.get("events", [])
            ]
            yield f"stepfunctions:{execution['name']}:history", _as_text(history)


# Long enough to receive every message of a queue before any comes back; each is made visible again at once.
_SEARCH_VISIBILITY_SECONDS = 30


def sqs_places(session: boto3.Session) -> Iterator[tuple[str, str]]:
    """Every message waiting in every SQS queue, its body and attributes: the dead-letter queues keep the events of
    asynchronous invocations that failed every attempt. Messages are read, not consumed: each one received is made
    visible again before the queue's messages are yielded. One that a consumer holds in flight is not seen."""
    client = session.client("sqs")
    urls = [url for page in client.get_paginator("list_queues").paginate() for url in page.get("QueueUrls", [])]
    for url in urls:
        messages: dict[str, dict[str, Any]] = {}
        receipts: list[str] = []
        try:
            while True:
                received = client.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=_SEARCH_VISIBILITY_SECONDS,
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
                receipts += [message["ReceiptHandle"] for message in received]
                fresh = [message for message in received if message["MessageId"] not in messages]
                messages.update((message["MessageId"], message) for message in fresh)
                if not fresh:
                    break
        finally:
            for receipt in receipts:
                client.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
        name = url.rsplit("/", 1)[-1]
        for index, message in enumerate(messages.values()):
            searched = {"Body": message.get("Body"), "MessageAttributes": message.get("MessageAttributes", {})}
            yield f"sqs:{name}[{index}]", _as_text(searched)


def s3_places(session: boto3.Session, buckets: Iterable[str] | None = None) -> Iterator[tuple[str, str]]:
    """Every object of `buckets` (default: every bucket the session's account owns), one place each
    (`s3:<bucket>/<key>`): an organization scan's item lists and the Distributed Map's result files, which hold each
    account scan's output."""
    client = session.client("s3")
    names = list(buckets) if buckets is not None else [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    for bucket in names:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for found in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=found["Key"])["Body"].read()
                yield f"s3:{bucket}/{found['Key']}", body.decode("utf-8", errors="replace")


def file_places(paths: Iterable[Path], root: Path | None = None) -> Iterator[tuple[str, str]]:
    """Every file (directories searched recursively), named by its path below `root` (default: its name)."""
    for path in paths:
        if path.is_dir():
            yield from file_places(sorted(p for p in path.rglob("*") if p.is_file()), root)
        elif path.is_file():
            name = path.relative_to(root).as_posix() if root is not None and path.is_relative_to(root) else path.name
            yield f"file:{name}", path.read_bytes().decode("utf-8", errors="replace")


def text_places(kind: str, texts: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """Texts not (yet) in a file, e.g. a report as rendered before it is written."""
    for name, text in texts.items():
        yield f"{kind}:{name}", text


def notification_places(path: Path) -> Iterator[tuple[str, str]]:
    """Every notification the stack published, one place each (`notification:<n>`, numbered from 1 in the order
    published), as aegis_local.aws.notifications wrote it to `path`: topic, subject, message and attributes, what its
    subscribers (an email address, an HTTPS endpoint) received. Nothing when there is no such file."""
    if not path.is_file():
        return
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    for number, line in enumerate((line for line in lines if line.strip()), start=1):
        yield f"notification:{number}", line


def place_kind(place: str) -> str:
    """What a place is, for the counts: `table <name>` for table items (so the checkpoints show by name),
    `execution` for an execution's description or history, `queue <name>` for a queue's messages, else the place's
    prefix (`file`, `report`)."""
    kind, _, rest = place.partition(":")
    if kind == "dynamodb":
        return f"table {rest.split('[', 1)[0]}"
    if kind == "stepfunctions":
        return "execution"
    if kind == "sqs":
        return f"queue {rest.split('[', 1)[0]}"
    if kind == "s3":
        return f"bucket {rest.split('/', 1)[0]}"
    return kind


def audit(secrets: Iterable[str], places: Iterable[tuple[str, str]]) -> LeakAuditResult:
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH})
    hits, count, kinds = _search(places, lambda text: [fingerprint(value) for value in values if value in text])
    return LeakAuditResult(values_searched=len(values), places_searched=count, hits=hits, places=kinds)


def _search(
    places: Iterable[tuple[str, str]], found_in: Callable[[str], Iterable[str]]
) -> tuple[list[LeakHit], int, dict[str, int]]:
    """Every place searched: a hit per fingerprint `found_in` its text, how many places, and how many of each kind."""
    hits: list[LeakHit] = []
    count = 0
    kinds: Counter[str] = Counter()
    for place, text in places:
        count += 1
        kinds[place_kind(place)] += 1
        hits.extend(LeakHit(place=place, fingerprint=found) for found in found_in(text))
    return hits, count, dict(kinds)


def audit_sources(
    sources: Mapping[str, Iterable[str]], places: Iterable[tuple[str, str]], notes: Iterable[str] = ()
) -> LeakAuditResult:
    """`audit` of the values of every source (e.g. "Auth0 emulator: client secrets and tokens" -> values), with the
    number of searchable values each source contributed recorded in the result."""
    by_source = {name: {v for v in values if len(v) >= MIN_SECRET_LENGTH} for name, values in sources.items()}
    result = audit((value for values in by_source.values() for value in values), places)
    return result.model_copy(
        update={"sources": {name: len(values) for name, values in by_source.items()}, "notes": list(notes)}
    )


# Runs of the characters secrets are spelled with: URL-safe base64 (client secrets, refresh tokens), JWTs (with
# dots), standard base64 (STS secret keys and session tokens). Each maximal run is one candidate.
_CANDIDATE_RUNS = (
    re.compile(r"[A-Za-z0-9_\-]{8,}"),
    re.compile(r"[A-Za-z0-9_\-.]{8,}"),
    re.compile(r"[A-Za-z0-9+/]{8,}"),
    re.compile(r"[A-Za-z0-9+/=]{8,}"),
    re.compile(r"[A-Za-z0-9_\-.~+/=]{8,}"),
)


def _candidates(text: str) -> set[str]:
    found: set[str] = set()
    for pattern in _CANDIDATE_RUNS:
        for run in pattern.findall(text):
            found.add(run)
            # `name=value` glued into one run by base64's padding character: the value after each `=` too.
            start = 0
            while (index := run.find("=", start)) != -1:
                rest = run[index + 1 :]
                if rest and not rest.startswith("="):
                    found.add(rest)
                start = index + 1
    return found


def full_fingerprint(value: str) -> str:
    """SHA-256 of a secret: lets anyone check a dump for it later without the dump holding the secret."""
    return hashlib.sha256(value.encode()).hexdigest()


def audit_fingerprints(fingerprints: Mapping[str, str], places: Iterable[tuple[str, str]]) -> LeakAuditResult:
    """Search for secrets known only by their SHA-256 (`full_fingerprint` -> label of where it came from).

    Every run of secret-spelling characters in a place is hashed and looked up. A secret is found wherever it
    appears as a whole token (in JSON, a header, a form field, a log line); unlike `audit`, a secret glued to other
    such characters is not. Hits carry the 12-character `fingerprint` prefix, as `audit`'s do."""
    wanted = {digest.lower(): label for digest, label in fingerprints.items()}

    def found_in(text: str) -> list[str]:
        digests = {hashlib.sha256(candidate.encode()).hexdigest() for candidate in _candidates(text)}
        return [digest[:12] for digest in sorted(digests & wanted.keys())]

    hits, count, kinds = _search(places, found_in)
    sources = Counter(wanted.values())
    return LeakAuditResult(
        values_searched=len(wanted), places_searched=count, hits=hits, places=kinds, sources=dict(sources)
    )


def audit_stack(session: boto3.Session, secrets: Iterable[str], files: Iterable[Path] = ()) -> LeakAuditResult:
    """Everything a mission on the local stack persisted, searched for every value in `secrets`."""
    places = [*dynamodb_places(session), *stepfunctions_places(session), *sqs_places(session), *file_places(files)]
    return audit(secrets, places)
