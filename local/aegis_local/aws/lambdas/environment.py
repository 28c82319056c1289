"""The environment a handler sees: its own template variables and Lambda's runtime variables over `os.environ`.

The process environment is shared by every thread, but each function must see only its own template variables.
`FunctionEnvironment` gives the thread running a handler a private overlay on `os.environ`: the function's variables
plus Lambda's runtime variables, with the variables that only *other* functions declare hidden (so a handler that reads
a variable its template entry lacks fails here as it would on AWS). Threads a handler starts itself see the process
environment, where the local stack has put every value that is the same for all functions that declare it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Set
from contextlib import contextmanager
from typing import Any

from aegis_local.aws.lambdas.spec import FunctionSpec


def function_variables(
    spec: FunctionSpec, *, declared_elsewhere: Set[str], runtime_environment: Mapping[str, str]
) -> dict[str, str | None]:
    """The overlay of one function: `declared_elsewhere` hidden (None), then the runtime's variables, then its own."""
    variables: dict[str, str | None] = dict.fromkeys(declared_elsewhere - set(spec.environment))
    variables.update(runtime_environment)
    variables.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            # What `sam local` sets: Powertools then knows no X-Ray daemon is listening.
            "AWS_SAM_LOCAL": "true",
        }
    )
    variables.update(spec.environment)
    return variables


class FunctionEnvironment:
    """A per-thread overlay on `os.environ`.

    `os.environ` keeps its data in a dict (`os.environ._data`); this replaces that dict with a subclass that
    first consults the calling thread's overlay. Values set to None in an overlay are hidden in that thread.
    Installed once per process while a local stack runs; `uninstall()` restores a plain dict with the same
    process-wide contents — but only once no thread is inside a function environment any more. A handler still
    running when its stack stops (Lambda would have frozen it) keeps its overlay, so it goes on seeing the stack's
    dead endpoint and fake credentials instead of the developer's real AWS configuration.
    """

    _lock = threading.Lock()
    _installed: _OverlayEnvironData | None = None
    _users = 0
    _applied = 0

    @classmethod
    def install(cls) -> None:
        with cls._lock:
            if cls._installed is None:
                data = _OverlayEnvironData(os.environ._data)  # type: ignore[attr-defined]
                os.environ._data = data  # type: ignore[attr-defined]
                if hasattr(os, "environb"):
                    os.environb._data = data  # type: ignore[attr-defined]
                cls._installed = data
            cls._users += 1

    @classmethod
    def uninstall(cls) -> None:
        with cls._lock:
            cls._users = max(0, cls._users - 1)
            cls._restore_if_unused()

    @classmethod
    def _restore_if_unused(cls) -> None:
        # Called with the lock held.
        if cls._users == 0 and cls._applied == 0 and cls._installed is not None:
            plain = dict(dict.items(cls._installed))
            os.environ._data = plain  # type: ignore[attr-defined]
            if hasattr(os, "environb"):
                os.environb._data = plain  # type: ignore[attr-defined]
            cls._installed = None

    @classmethod
    @contextmanager
    def applied(cls, variables: Mapping[str, str | None]) -> Iterator[None]:
        """Within this block, this thread sees `variables` over the process environment (None = unset)."""
        data = cls._installed
        if data is None:
            raise RuntimeError("FunctionEnvironment.install() must run before a function environment is applied")
        encode_key = os.environ.encodekey
        encode_value = os.environ.encodevalue
        overlay = {
            encode_key(name): (None if value is None else encode_value(value)) for name, value in variables.items()
        }
        previous = getattr(data.local, "overlay", None)
        with cls._lock:
            cls._applied += 1
        data.local.overlay = overlay
        try:
            yield
        finally:
            data.local.overlay = previous
            with cls._lock:
                cls._applied -= 1
                cls._restore_if_unused()


class _OverlayEnvironData(dict[Any, Any]):
    """The storage behind `os.environ`, with a thread-local overlay (see FunctionEnvironment)."""

    def __init__(self, base: Mapping[Any, Any]) -> None:
        super().__init__(base)
        self.local = threading.local()

    def _overlay(self) -> dict[Any, Any] | None:
        return getattr(self.local, "overlay", None)

    def __getitem__(self, key: Any) -> Any:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            return overlay[key] is not None
        return dict.__contains__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[Any]:
        overlay = self._overlay()
        if overlay is None:
            return iter(list(dict.keys(self)))
        visible = [key for key in dict.keys(self) if key not in overlay]
        visible.extend(key for key, value in overlay.items() if value is not None)
        return iter(visible)

    def keys(self) -> Any:
        return list(iter(self))

    def items(self) -> Any:
        return [(key, self[key]) for key in iter(self)]

    def values(self) -> Any:
        return [self[key] for key in iter(self)]

    def __len__(self) -> int:
        return sum(1 for _ in iter(self))

    def __setitem__(self, key: Any, value: Any) -> None:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            overlay[key] = value
        else:
            dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            if overlay[key] is None:
                raise KeyError(key)
            overlay[key] = None
        else:
            dict.__delitem__(self, key)
