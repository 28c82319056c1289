"""The checkpoint serializer that refuses secrets.

Every value LangGraph persists (channel values, node writes, interrupt and resume values, error texts, and the
checkpoint metadata this package's saver writes) passes through `dumps_typed`. This serializer walks the value
first and raises `CheckpointRefused` on anything that is not plain data of a registered type, on `bytes`, on
anything with `get_secret_value`, and on any string that looks like a credential. It never scrubs: a refusal stops
the run. Loading is restricted to the same registered types (strict msgpack allowlist).

A model is checked as the model it is (`aegis.secrets_guard.walk_strings`): a field declared as a resource name keeps
a name that fits AWS's character set, however it looks. A refusal names where by fields and positions, never by a
dict key (the key may be the secret).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import Enum
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Command, Interrupt, Send
from pydantic import BaseModel

from aegis import catalogue, models
from aegis.reporting import agent_report
from aegis.secrets_guard import secret_kind, walk_strings
from aegis_agent import report, state
from aegis_agent.errors import CheckpointRefused

_LANGGRAPH_TYPES: tuple[type, ...] = (Interrupt, Send, Command)


def _public_types(module: Any, base: type) -> set[type]:
    found: set[type] = set()
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, base) and value.__module__.startswith(("aegis.", "aegis_")):
            found.add(value)
    return found


def registered_types() -> frozenset[type]:
    """The model and enum types the agent's state may hold: its own state models, the layer's models and every
    catalogue member (with the models nested in them)."""
    types: set[type] = set()
    for module in (models, state, report, agent_report, catalogue):
        types |= _public_types(module, BaseModel) | _public_types(module, Enum)
    types.update(catalogue.KINDS.values())
    # Abstract bases are never state values; only concrete members are.
    return frozenset(types - {models.Frozen, catalogue.ChangeBase})


class SecretRefusingSerializer(JsonPlusSerializer):
    def __init__(self, extra_types: Iterable[type] = ()) -> None:
        self._registered = registered_types() | frozenset(extra_types)
        super().__init__(
            pickle_fallback=False,
            allowed_msgpack_modules=tuple(self._registered | set(_LANGGRAPH_TYPES)),
        )
        # LangGraph swallows a failure to persist a node's error (and raises the node's error instead), so every
        # refusal is also kept here for the caller to audit.
        self.refusals: list[CheckpointRefused] = []

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        try:
            self.inspect(obj)
        except CheckpointRefused as refusal:
            self.refusals.append(refusal)
            raise
        return super().dumps_typed(obj)

    def inspect(self, value: Any, where: str = "$", strings: bool = True) -> None:
        """Raise CheckpointRefused unless `value` is plain data of registered types with no secret-shaped string
        (`strings=False`: the caller has checked the strings already)."""
        if value is None or isinstance(value, bool | int | float):
            return
        if isinstance(value, str):
            kind = secret_kind(value) if strings else None
            if kind:
                raise CheckpointRefused(f"{kind}-shaped string", where)
            return
        if isinstance(value, bytes | bytearray | memoryview):
            raise CheckpointRefused("bytes value", where)
        if hasattr(value, "get_secret_value"):
            raise CheckpointRefused("secret container", where)
        if isinstance(value, dict):
            for index, (key, item) in enumerate(value.items()):
                if not isinstance(key, str | int):
                    raise CheckpointRefused(f"non-string key of type {type(key).__name__}", where)
                self.inspect(key, f"{where}{{{index}}}<key>", strings)
                self.inspect(item, f"{where}{{{index}}}", strings)
            return
        if isinstance(value, list | tuple | set | frozenset):
            for index, item in enumerate(value):
                self.inspect(item, f"{where}[{index}]", strings)
            return
        if isinstance(value, Enum):
            self._require_registered(value, where)
            self.inspect(value.value, where, strings)
            return
        if isinstance(value, BaseModel):
            self._require_registered(value, where)
            model_where = f"{where}<{type(value).__name__}>"
            if strings:
                for path, text in walk_strings(value, model_where):
                    kind = secret_kind(text)
                    if kind:
                        raise CheckpointRefused(f"{kind}-shaped string", path)
            # Then what the checkpoint will hold: registered types only, no bytes or secret containers.
            self.inspect(value.model_dump(), model_where, strings=False)
            return
        if isinstance(value, _LANGGRAPH_TYPES):
            self._inspect_langgraph(value, where, strings)
            return
        if isinstance(value, BaseException):
            # JsonPlus stores an error as its repr(); that text is what must be clean.
            self.inspect(repr(value), f"{where}<error>", strings=True)
            return
        raise CheckpointRefused(f"unregistered type {_type_name(value)}", where)

    def _require_registered(self, value: Any, where: str) -> None:
        if type(value) not in self._registered:
            raise CheckpointRefused(f"unregistered type {_type_name(value)}", where)

    def _inspect_langgraph(self, value: Any, where: str, strings: bool) -> None:
        if isinstance(value, Send):
            self.inspect(value.node, f"{where}<Send>.node", strings)
            self.inspect(value.arg, f"{where}<Send>.arg", strings)
            return
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if isinstance(item, type):
                raise CheckpointRefused(f"class object in {type(value).__name__}.{field.name}", where)
            self.inspect(item, f"{where}<{type(value).__name__}>.{field.name}", strings)


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"
