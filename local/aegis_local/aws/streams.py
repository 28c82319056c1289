"""Lambda's DynamoDB Streams event source mapping on the local stack: a poller per mapping that reads the table's
stream through moto's DynamoDB Streams API and invokes the function with each batch, the way Lambda does.

What Lambda does and this keeps: records in stream order, one batch at a time per mapping (ParallelizationFactor 1),
at most `BatchSize` records, the mapping's `FilterCriteria` (EventBridge's pattern language, matched by moto's own
EventBridge matcher) applied before the batch is formed, and a failed batch retried from its first record up to
`MaximumRetryAttempts` times (-1: until it succeeds or the stack stops), with a growing pause; with
`FunctionResponseTypes: [ReportBatchItemFailures]`, an answer naming failed records (`batchItemFailures`, by sequence
number) retries from the first of them, the records before it being done. What it does not: shard splits (moto keeps
one shard per table), `BisectBatchOnFunctionError`, and on-failure destinations (a batch that exhausts its retries is
dropped and counted in `failed_batches`).

moto's own mapping is not used: it invokes the function synchronously inside the writer's request with every record
of the shard so far, which blocks writers on the consumer and redelivers records.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aegis_local.aws.lambdas import LambdaRouter

__all__ = ["StreamDelivery", "StreamMapping", "StreamProgress", "lambda_record"]

logger = logging.getLogger(__name__)

_IDLE_PAUSE_SECONDS = (0.02, 0.25)  # from just after a delivery to a quiet stream
_RETRY_PAUSE_SECONDS = (0.05, 2.0)


@dataclass(frozen=True)
class StreamMapping:
    """One `Type: DynamoDB` event of a template function (or an `AWS::Lambda::EventSourceMapping`)."""

    name: str
    function_arn: str
    stream_arn: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    filter_patterns: tuple[str, ...] = ()
    maximum_retry_attempts: int = -1
    report_batch_item_failures: bool = False

    @classmethod
    def from_properties(cls, name: str, function_arn: str, properties: Mapping[str, Any]) -> StreamMapping:
        filters = (properties.get("FilterCriteria") or {}).get("Filters") or []
        return cls(
            name=name,
            function_arn=function_arn,
            stream_arn=str(properties["Stream"]),
            batch_size=int(properties.get("BatchSize", 100)),
            starting_position=str(properties.get("StartingPosition", "TRIM_HORIZON")),
            filter_patterns=tuple(str(f["Pattern"]) for f in filters),
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
        )


@dataclass
class StreamProgress:
    """What one mapping has delivered so far, for tests and for `drain()`."""

    delivered_records: int = 0
    batches: int = 0
    failed_batches: int = 0
    caught_up_generation: int = 0
    errors: list[str] = field(default_factory=list)


class StreamDelivery:
    """Runs one poller thread per mapping while the stack runs; `drain()` waits until they have caught up."""

    def __init__(self, mappings: Sequence[StreamMapping], router: LambdaRouter, client: Callable[[str], Any]) -> None:
        self.mappings = tuple(mappings)
        self._router = router
        self._client = client
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._condition = threading.Condition()
        self._generation = 0
        self._progress = {mapping.name: StreamProgress() for mapping in self.mappings}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for mapping in self.mappings:
            thread = threading.Thread(target=self._poll, args=(mapping,), name=f"stream-{mapping.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every record written before this call has been delivered (or its batch given up on).
        True if that happened within `timeout` seconds."""
        with self._condition:
            self._generation += 1
            wanted = self._generation
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._condition:
            while any(p.caught_up_generation < wanted for p in self._progress.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._condition.wait(remaining)
        return True

    def progress(self, name: str) -> StreamProgress:
        return self._progress[name]

    # -- the poller ---------------------------------------------------------------------------------------------

    def _poll(self, mapping: StreamMapping) -> None:
        try:
            iterator = self._first_iterator(mapping)
        except Exception as error:
            logger.error("stream %s: cannot read %s: %s", mapping.name, mapping.stream_arn, error)
            self._progress[mapping.name].errors.append(str(error))
            return
        matchers = [_pattern(text) for text in mapping.filter_patterns]
        pause = _IDLE_PAUSE_SECONDS[0]
        while not self._stop.is_set():
            with self._condition:
                generation = self._generation
            answer = self._client("dynamodbstreams").get_records(ShardIterator=iterator, Limit=mapping.batch_size)
            records = answer.get("Records", [])
            if records:
                batch = [lambda_record(r, mapping.stream_arn) for r in records]
                batch = [r for r in batch if not matchers or any(m.matches_event(r) for m in matchers)]
                if batch:
                    self._deliver(mapping, batch)
                iterator = answer["NextShardIterator"]
                pause = _IDLE_PAUSE_SECONDS[0]
                continue
            # An empty read that began after a drain request: everything written before it was delivered.
            with self._condition:
                progress = self._progress[mapping.name]
                progress.caught_up_generation = max(progress.caught_up_generation, generation)
                self._condition.notify_all()
            # The same iterator stays valid at the same position (AWS keeps one for 15 minutes).
            self._wake.wait(pause)
            self._wake.clear()
            pause = min(pause * 2, _IDLE_PAUSE_SECONDS[1])

    def _first_iterator(self, mapping: StreamMapping) -> str:
        streams = self._client("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]["Shards"]
        return str(
            streams.get_shard_iterator(
                StreamArn=mapping.stream_arn,
                ShardId=shards[0]["ShardId"],
                ShardIteratorType=mapping.starting_position,
            )["ShardIterator"]
        )

    def _deliver(self, mapping: StreamMapping, batch: list[dict[str, Any]]) -> None:
        progress = self._progress[mapping.name]
        attempt = 0
        pause = _RETRY_PAUSE_SECONDS[0]
        while not self._stop.is_set():
            result = self._router.invoke(mapping.function_arn, json.dumps({"Records": batch}), "RequestResponse")
            if result.function_error is None:
                first_failed = _first_failed(result.json(), batch) if mapping.report_batch_item_failures else None
                if first_failed is None:
                    progress.delivered_records += len(batch)
                    progress.batches += 1
                    return
                progress.delivered_records += first_failed
                batch = batch[first_failed:]
                message = f"{len(batch)} records from the first reported failure on"
            else:
                message = f"batch of {len(batch)} failed ({result.function_error}): {result.payload[:300]!r}"
            attempt += 1
            progress.errors.append(message)
            logger.warning("stream %s: %s", mapping.name, message)
            if 0 <= mapping.maximum_retry_attempts < attempt:
                progress.failed_batches += 1
                return
            self._stop.wait(pause)
            pause = min(pause * 2, _RETRY_PAUSE_SECONDS[1])


def _first_failed(answer: Any, batch: Sequence[Mapping[str, Any]]) -> int | None:
    """The index in `batch` of the first record a partial batch response names, or None when it names none. A
    response Lambda cannot read (an identifier that is no record's sequence number) fails the whole batch (0)."""
    failures = answer.get("batchItemFailures") if isinstance(answer, Mapping) else None
    if not failures:
        return None
    positions = {str(record["dynamodb"].get("SequenceNumber")): index for index, record in enumerate(batch)}
    found = [positions.get(str(f.get("itemIdentifier")) if isinstance(f, Mapping) else "") for f in failures]
    return 0 if None in found else min(index for index in found if index is not None)


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A stream record as Lambda hands it to a function: with the source ARN, and the creation time in seconds."""
    dynamodb = dict(record.get("dynamodb") or {})
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record.get("eventID"),
        "eventName": record.get("eventName"),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion"),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def _pattern(text: str) -> Any:
    from moto.events.models import EventPattern

    return EventPattern.load(text)
