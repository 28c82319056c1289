"""A LangGraph checkpoint saver on the Checkpoints table (PK/SK strings, `ttl`).

Why not langgraph-checkpoint-aws' DynamoDBSaver: it takes no `serde=` (so the secret-refusing serializer cannot be
plugged in cleanly) and merges `config["metadata"]` into the stored metadata verbatim. This saver stores the metadata
LangGraph passes to `put`, every key of it (LangGraph's checkpoint-saver conformance suite requires custom keys to
round-trip and to be filterable), but never anything from `config`; and every stored key and value, metadata included,
passes through the one serializer it is given, which refuses a secret-shaped one loudly rather than dropping it.

Layout (one partition per thread, mirroring InMemorySaver's three maps):
    PK = thread#<thread_id>
    SK = checkpoint#<ns>#<checkpoint_id>       the checkpoint without its channel values, metadata, parent id
    SK = blob#<ns>#<channel>#<version>         one channel value at one version (written only when it changes)
    SK = write#<ns>#<checkpoint_id>#<task_id>#<idx>   a pending write of a task
Every value is serialized before anything is written, so a refused value leaves no partial checkpoint. Values are
stored uncompressed: what is persisted must stay searchable by a leak audit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from aegis_agent.errors import CheckpointTooLarge
from aegis_agent.serializer import SecretRefusingSerializer

# DynamoDB refuses items above 400 KB; stop well before so the error is ours and named.
MAX_ITEM_BYTES = 350_000
_BATCH_GET_LIMIT = 100


def _pk(thread_id: str) -> str:
    return f"thread#{thread_id}"


def _checkpoint_sk(ns: str, checkpoint_id: str) -> str:
    return f"checkpoint#{ns}#{checkpoint_id}"


def _blob_sk(ns: str, channel: str, version: str | int | float) -> str:
    return f"blob#{ns}#{channel}#{version}"


def _writes_prefix(ns: str, checkpoint_id: str) -> str:
    return f"write#{ns}#{checkpoint_id}#"


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings UTF-8, binaries raw, numbers ~ their digits)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if isinstance(value, Binary):
            size += len(value.value)
        elif isinstance(value, bytes | bytearray):
            size += len(value)
        else:
            size += len(str(value).encode())
    return size


class DynamoDBCheckpointSaver(BaseCheckpointSaver[str]):
    def __init__(
        self,
        table: Any,
        *,
        serde: SerializerProtocol | None = None,
        ttl_seconds: int | None = None,
    ) -> None:
        super().__init__(serde=serde or SecretRefusingSerializer())
        self._table = table
        # The resource's client converts Python values to and from DynamoDB's typed JSON itself.
        self._client = table.meta.client
        self._ttl_seconds = ttl_seconds
        self.largest_item_bytes = 0

    # --- writing ---------------------------------------------------------------------------------------------------
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        parent_id = configurable.get("checkpoint_id")
        stored = dict(checkpoint)
        values: dict[str, Any] = stored.pop("channel_values")  # type: ignore[assignment]

        blob_items = []
        for channel, version in new_versions.items():
            kind, data = self.serde.dumps_typed(values[channel]) if channel in values else ("empty", b"")
            blob_items.append(
                self._item(thread_id, _blob_sk(ns, channel, version), type=kind, channel=channel, **_value(data))
            )
        checkpoint_type, checkpoint_data = self.serde.dumps_typed(stored)
        metadata_type, metadata_data = self.serde.dumps_typed(stored_metadata(metadata))
        checkpoint_item = self._item(
            thread_id,
            _checkpoint_sk(ns, checkpoint["id"]),
            type=checkpoint_type,
            checkpoint=Binary(checkpoint_data),
            metadata_type=metadata_type,
            metadata=Binary(metadata_data),
            **({"parent_checkpoint_id": parent_id} if parent_id else {}),
        )
        for item in (*blob_items, checkpoint_item):
            self._check_size(item)
        # Blobs first: a checkpoint item must never name a version whose value is not stored yet.
        with self._table.batch_writer() as batch:
            for item in blob_items:
                batch.put_item(Item=item)
        self._table.put_item(Item=checkpoint_item)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        checkpoint_id = str(configurable["checkpoint_id"])
        items: list[tuple[bool, dict[str, Any]]] = []
        for index, (channel, value) in enumerate(writes):
            write_idx = WRITES_IDX_MAP.get(channel, index)
            kind, data = self.serde.dumps_typed(value)
            item = self._item(
                thread_id,
                f"{_writes_prefix(ns, checkpoint_id)}{task_id}#{write_idx}",
                task_id=task_id,
                task_path=task_path,
                idx=write_idx,
                channel=channel,
                type=kind,
                **_value(data),
            )
            self._check_size(item)
            items.append((write_idx >= 0, item))
        for regular, item in items:
            if not regular:
                # Special writes (error, interrupt, resume, scheduled) replace what was there.
                self._table.put_item(Item=item)
                continue
            try:
                self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(SK)")
            except ClientError as exc:
                # A regular write that already exists is kept: a retried task must not change history.
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise

    def delete_thread(self, thread_id: str) -> None:
        keys = [
            {"PK": item["PK"], "SK": item["SK"]}
            for item in self._query(Key("PK").eq(_pk(thread_id)), ProjectionExpression="PK, SK")
        ]
        with self._table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key=key)

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        # Same scheme as InMemorySaver: zero-padded counter (sorts as text) plus a random tiebreak.
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"  # noqa: S311 - a tiebreak, not a secret

    # --- reading ---------------------------------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            item = self._table.get_item(
                Key={"PK": _pk(thread_id), "SK": _checkpoint_sk(ns, checkpoint_id)}, ConsistentRead=True
            ).get("Item")
        else:
            page = self._table.query(
                KeyConditionExpression=Key("PK").eq(_pk(thread_id)) & Key("SK").begins_with(f"checkpoint#{ns}#"),
                ScanIndexForward=False,
                Limit=1,
                ConsistentRead=True,
            )
            item = next(iter(page.get("Items", [])), None)
        if item is None:
            return None
        return self._tuple(thread_id, item)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        if config is None:
            items = self._scan_checkpoints()
        else:
            configurable = config["configurable"]
            ns = configurable.get("checkpoint_ns")
            prefix = "checkpoint#" if ns is None else f"checkpoint#{ns}#"
            items = self._query(
                Key("PK").eq(_pk(str(configurable["thread_id"]))) & Key("SK").begins_with(prefix),
                ScanIndexForward=False,
            )
        wanted_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        remaining = limit
        for item in items:
            ns, checkpoint_id = _split_checkpoint_sk(item["SK"])
            if wanted_id and checkpoint_id != wanted_id:
                continue
            if before_id and checkpoint_id >= before_id:
                continue
            if filter:
                metadata = self._metadata(item)
                if not all(metadata.get(key) == value for key, value in filter.items()):
                    continue
            if remaining is not None:
                if remaining <= 0:
                    return
                remaining -= 1
            yield self._tuple(item["PK"].removeprefix("thread#"), item)

    # --- async: the sync calls in a worker thread (boto3 has no asyncio API) ----------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        tuples = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in tuples:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    # --- internals -------------------------------------------------------------------------------------------------
    def _item(self, thread_id: str, sort_key: str, **attributes: Any) -> dict[str, Any]:
        item = {"PK": _pk(thread_id), "SK": sort_key, **attributes}
        if self._ttl_seconds:
            item["ttl"] = int(time.time()) + self._ttl_seconds
        return item

    def _check_size(self, item: dict[str, Any]) -> None:
        size = item_size(item)
        self.largest_item_bytes = max(self.largest_item_bytes, size)
        if size > MAX_ITEM_BYTES:
            raise CheckpointTooLarge(f"checkpoint item {item['SK'].split('#')[0]} would be {size} bytes")

    def _tuple(self, thread_id: str, item: dict[str, Any]) -> CheckpointTuple:
        ns, checkpoint_id = _split_checkpoint_sk(item["SK"])
        checkpoint = cast(Checkpoint, self.serde.loads_typed((item["type"], _bytes(item["checkpoint"]))))
        channel_values = self._load_blobs(thread_id, ns, checkpoint["channel_versions"])
        writes = sorted(
            self._query(
                Key("PK").eq(_pk(thread_id)) & Key("SK").begins_with(_writes_prefix(ns, checkpoint_id)),
            ),
            key=lambda w: writes_sort_key(str(w.get("task_path", "")), str(w["task_id"]), int(w["idx"])),
        )
        parent_id = item.get("parent_checkpoint_id")
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}},
            checkpoint={**checkpoint, "channel_values": channel_values},
            metadata=cast(CheckpointMetadata, self._metadata(item)),
            parent_config=(
                {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
                if parent_id
                else None
            ),
            pending_writes=[
                (str(w["task_id"]), str(w["channel"]), self.serde.loads_typed((w["type"], _bytes(w.get("value", b"")))))
                for w in writes
            ],
        )

    def _metadata(self, item: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], self.serde.loads_typed((item["metadata_type"], _bytes(item["metadata"]))))

    def _load_blobs(self, thread_id: str, ns: str, versions: ChannelVersions) -> dict[str, Any]:
        keys = [{"PK": _pk(thread_id), "SK": _blob_sk(ns, channel, version)} for channel, version in versions.items()]
        values: dict[str, Any] = {}
        for item in self._batch_get(keys):
            if item["type"] == "empty":
                continue
            values[item["channel"]] = self.serde.loads_typed((item["type"], _bytes(item.get("value", b""))))
        return values

    def _batch_get(self, keys: Sequence[dict[str, str]]) -> Iterator[dict[str, Any]]:
        name = self._table.name
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            pending: dict[str, Any] = {
                name: {
                    "Keys": keys[start : start + _BATCH_GET_LIMIT],
                    "ConsistentRead": True,
                }
            }
            while pending:
                response = self._client.batch_get_item(RequestItems=pending)
                yield from response.get("Responses", {}).get(name, [])
                pending = response.get("UnprocessedKeys") or {}

    def _query(self, condition: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"KeyConditionExpression": condition, "ConsistentRead": True, **kwargs}
        while True:
            page = self._table.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _scan_checkpoints(self) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"FilterExpression": Attr("SK").begins_with("checkpoint#")}
        items: list[dict[str, Any]] = []
        while True:
            page = self._table.scan(**request)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        yield from sorted(items, key=lambda i: (i["PK"], i["SK"]), reverse=True)


def stored_metadata(metadata: CheckpointMetadata) -> dict[str, Any]:
    """The metadata as LangGraph built it, and nothing from `config`: LangGraph's own savers merge the config's
    `configurable` and `metadata` in (`get_checkpoint_metadata`), which would turn a value meant for one run (a request
    id, a caller's token) into stored history. Custom keys are kept; the serializer then refuses any secret-shaped key
    or value, and the checkpoint item's size bound covers the metadata, which is stored inside it."""
    return dict(metadata)


def _split_checkpoint_sk(sort_key: str) -> tuple[str, str]:
    _, rest = sort_key.split("#", 1)
    ns, checkpoint_id = rest.rsplit("#", 1)
    return ns, checkpoint_id


def _value(data: bytes) -> dict[str, Binary]:
    """The `value` attribute, left out when empty (`null` and `empty` values have no bytes)."""
    return {"value": Binary(data)} if data else {}


def _bytes(value: Any) -> bytes:
    return bytes(value.value) if isinstance(value, Binary) else bytes(value)
