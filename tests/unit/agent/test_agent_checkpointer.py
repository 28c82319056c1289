"""The DynamoDB checkpoint saver: LangGraph's saver contract on the Checkpoints table, metadata as LangGraph built it
(custom keys kept, never a config value, a secret-shaped key or value refused), nothing written when the serializer
refuses, items bounded in size, and every item expiring."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from aegis_agent.checkpointer import MAX_ITEM_BYTES, DynamoDBCheckpointSaver
from aegis_agent.errors import CheckpointRefused, CheckpointTooLarge
from tests.support import planted_secrets
from tests.support.agent_world import all_items

TTL = 7 * 86_400


class Flow(TypedDict, total=False):
    asked: str
    answer: dict[str, Any]
    done: bool


def ask(state: Flow) -> dict[str, Any]:
    return {"answer": interrupt({"question": state["asked"]})}


def finish(state: Flow) -> dict[str, Any]:
    return {"done": True}


def compiled(table: Any) -> Any:
    graph = StateGraph(Flow)
    graph.add_node("ask", ask)
    graph.add_node("finish", finish)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=DynamoDBCheckpointSaver(table, ttl_seconds=TTL))


def config(thread: str, **configurable: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **configurable}}


def test_an_interrupted_thread_resumes_from_dynamodb_with_new_saver_and_graph_objects(tables: dict[str, Any]) -> None:
    first = compiled(tables["Checkpoints"])
    out = first.invoke({"asked": "approve?"}, config("t-1"), durability="sync")
    assert out["__interrupt__"][0].value == {"question": "approve?"}

    second = compiled(tables["Checkpoints"])  # as a new Lambda container would
    state = second.get_state(config("t-1"))
    assert state.next == ("ask",)
    interrupt_id = state.interrupts[0].id
    final = second.invoke(Command(resume={interrupt_id: {"decision": "approved"}}), config("t-1"), durability="sync")
    assert final == {"asked": "approve?", "answer": {"decision": "approved"}, "done": True}
    assert compiled(tables["Checkpoints"]).get_state(config("t-1")).next == ()


def test_checkpoint_metadata_never_holds_config_values(tables: dict[str, Any]) -> None:
    api_key = secrets.token_urlsafe(32)
    run = compiled(tables["Checkpoints"])
    run.invoke(
        {"asked": "q"},
        {
            "configurable": {"thread_id": "t-2", "api_key": api_key, "user": "alice", "lambda_request_id": "req-7"},
            "metadata": {"token": api_key, "tenant": "acme"},
        },
        durability="sync",
    )
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    listed = list(saver.list(config("t-2")))
    assert listed
    for checkpoint in listed:
        assert {"source", "step", "parents"} <= set(checkpoint.metadata)
        assert not {"api_key", "user", "lambda_request_id", "token", "tenant"} & set(checkpoint.metadata)
    raw = repr(all_items(tables["Checkpoints"]))
    for config_value in (api_key, "alice", "req-7", "acme"):
        assert config_value not in raw


def test_custom_metadata_keys_round_trip_and_filter(tables: dict[str, Any]) -> None:
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    scored: Any = {"source": "loop", "step": 0, "parents": {}, "score": 42, "owner": "team-a", "tags": ["x", "y"]}
    other: Any = {"source": "loop", "step": 1, "parents": {}, "score": 99}
    first = saver.put(config("t-10", checkpoint_ns=""), empty_checkpoint(), scored, {})
    saver.put(config("t-10", checkpoint_ns=""), empty_checkpoint(), other, {})

    assert saver.get_tuple(first).metadata == scored  # type: ignore[union-attr]
    matching = list(saver.list(config("t-10"), filter={"score": 42}))
    assert [c.config for c in matching] == [first]
    assert list(saver.list(config("t-10"), filter={"owner": "team-b"})) == []


@pytest.mark.parametrize(
    ("make_secret", "shape"),
    [
        (planted_secrets.jwt, lambda secret: {"note": secret}),
        (planted_secrets.bearer, lambda secret: {"caller": {"headers": [secret]}}),
        (planted_secrets.access_key_id, lambda secret: {secret: "x"}),
        (planted_secrets.high_entropy, lambda secret: {"run_id": secret}),
    ],
    ids=["custom key's value", "nested in a custom key", "custom key's name", "standard key's value"],
)
def test_a_secret_in_the_metadata_is_refused_loudly_and_nothing_is_written(
    tables: dict[str, Any], make_secret: Callable[[], str], shape: Callable[[str], dict[str, Any]]
) -> None:
    secret = make_secret()
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"ok": "fine"}
    metadata: Any = {"source": "loop", "step": 0, "parents": {}, **shape(secret)}
    with pytest.raises(CheckpointRefused) as refused:
        saver.put(config("t-11", checkpoint_ns=""), checkpoint, metadata, {"ok": 1})
    assert secret not in str(refused.value)
    assert saver.serde.refusals == [refused.value]  # type: ignore[attr-defined]
    assert all_items(tables["Checkpoints"]) == []


@pytest.mark.parametrize("value", [b"\x00raw", object()], ids=["bytes", "unregistered type"])
def test_metadata_holds_plain_data_only(tables: dict[str, Any], value: Any) -> None:
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    metadata: Any = {"source": "loop", "step": 0, "parents": {}, "extra": value}
    with pytest.raises(CheckpointRefused):
        saver.put(config("t-12", checkpoint_ns=""), empty_checkpoint(), metadata, {})
    assert all_items(tables["Checkpoints"]) == []


def test_oversized_metadata_is_a_named_error_and_nothing_is_written(tables: dict[str, Any]) -> None:
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"ok": "fine"}
    # Each note is 100 bytes of text, so the notes alone are the item's whole bound.
    metadata: Any = {"source": "loop", "step": 0, "parents": {}, "notes": ["word " * 20] * (MAX_ITEM_BYTES // 100)}
    with pytest.raises(CheckpointTooLarge):
        saver.put(config("t-13", checkpoint_ns=""), checkpoint, metadata, {"ok": 1})
    assert all_items(tables["Checkpoints"]) == []


def test_list_filters_by_metadata_before_and_limit(tables: dict[str, Any]) -> None:
    run = compiled(tables["Checkpoints"])
    run.invoke({"asked": "q"}, config("t-3"), durability="sync")
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    everything = list(saver.list(config("t-3")))
    ids = [c.config["configurable"]["checkpoint_id"] for c in everything]
    assert ids == sorted(ids, reverse=True)
    assert [c.metadata["step"] for c in everything] == sorted((c.metadata["step"] for c in everything), reverse=True)
    assert [c.config for c in saver.list(config("t-3"), limit=1)] == [everything[0].config]
    older = list(saver.list(config("t-3"), before=everything[0].config))
    assert [c.config for c in older] == [c.config for c in everything[1:]]
    inputs = list(saver.list(config("t-3"), filter={"source": "input"}))
    assert [c.metadata["source"] for c in inputs] == ["input"]
    assert list(saver.list(config("nobody"))) == []
    assert saver.get_tuple(config("nobody")) is None


def test_parent_links_and_exact_checkpoint_lookup(tables: dict[str, Any]) -> None:
    compiled(tables["Checkpoints"]).invoke({"asked": "q"}, config("t-4"), durability="sync")
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    latest = saver.get_tuple(config("t-4"))
    assert latest is not None
    assert latest.parent_config is not None
    parent = saver.get_tuple(latest.parent_config)
    assert parent is not None
    assert parent.config == latest.parent_config
    assert parent.checkpoint["id"] < latest.checkpoint["id"]


def test_regular_writes_are_kept_and_special_writes_replaced(tables: dict[str, Any]) -> None:
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    checkpoint = empty_checkpoint()
    stored = saver.put(config("t-5", checkpoint_ns=""), checkpoint, {"source": "input", "step": -1}, {})
    saver.put_writes(stored, [("answer", {"v": 1}), ("__interrupt__", ["first"])], task_id="task-1")
    saver.put_writes(stored, [("answer", {"v": 2}), ("__interrupt__", ["second"])], task_id="task-1")
    writes = saver.get_tuple(stored).pending_writes  # type: ignore[union-attr]
    assert sorted(writes, key=repr) == sorted(
        [("task-1", "answer", {"v": 1}), ("task-1", "__interrupt__", ["second"])], key=repr
    )


def test_a_refused_value_writes_nothing(tables: dict[str, Any]) -> None:
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"ok": "fine", "leak": "Bearer " + secrets.token_hex(16)}
    with pytest.raises(CheckpointRefused):
        saver.put(config("t-6", checkpoint_ns=""), checkpoint, {"source": "input", "step": -1}, {"ok": 1, "leak": 1})
    assert all_items(tables["Checkpoints"]) == []

    stored = saver.put(config("t-6", checkpoint_ns=""), empty_checkpoint(), {"source": "input", "step": -1}, {})
    before = all_items(tables["Checkpoints"])
    with pytest.raises(CheckpointRefused):
        saver.put_writes(stored, [("fine", 1), ("leak", b"\x00raw")], task_id="task-1")
    assert all_items(tables["Checkpoints"]) == before


def test_an_oversized_item_is_a_named_error_and_nothing_is_written(tables: dict[str, Any]) -> None:
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"big": ["word " * 20] * 4_000}
    with pytest.raises(CheckpointTooLarge):
        saver.put(config("t-7", checkpoint_ns=""), checkpoint, {"source": "input", "step": -1}, {"big": 1})
    assert all_items(tables["Checkpoints"]) == []


def test_every_item_carries_a_ttl(tables: dict[str, Any]) -> None:
    compiled(tables["Checkpoints"]).invoke({"asked": "q"}, config("t-8"), durability="sync")
    now = time.time()
    items = all_items(tables["Checkpoints"])
    assert {item["SK"].split("#")[0] for item in items} == {"checkpoint", "blob", "write"}
    assert all(now + TTL - 60 < int(item["ttl"]) <= now + TTL + 1 for item in items)


def test_delete_thread_removes_only_that_thread(tables: dict[str, Any]) -> None:
    run = compiled(tables["Checkpoints"])
    run.invoke({"asked": "q"}, config("keep"), durability="sync")
    run.invoke({"asked": "q"}, config("drop"), durability="sync")
    DynamoDBCheckpointSaver(tables["Checkpoints"]).delete_thread("drop")
    assert {item["PK"] for item in all_items(tables["Checkpoints"])} == {"thread#keep"}


def test_versions_increase_as_text() -> None:
    saver = DynamoDBCheckpointSaver.__new__(DynamoDBCheckpointSaver)
    versions = [saver.get_next_version(None)]
    for _ in range(12):
        versions.append(saver.get_next_version(versions[-1]))
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)


async def _alist(saver: DynamoDBCheckpointSaver, thread: str) -> list[Any]:
    return [c async for c in saver.alist(config(thread))]


def test_async_methods_read_what_sync_methods_wrote(tables: dict[str, Any]) -> None:
    import asyncio

    compiled(tables["Checkpoints"]).invoke({"asked": "q"}, config("t-9"), durability="sync")
    saver = DynamoDBCheckpointSaver(tables["Checkpoints"])
    latest = asyncio.run(saver.aget_tuple(config("t-9")))
    assert latest is not None
    assert latest.config == saver.get_tuple(config("t-9")).config  # type: ignore[union-attr]
    assert len(asyncio.run(_alist(saver, "t-9"))) == len(list(saver.list(config("t-9"))))
