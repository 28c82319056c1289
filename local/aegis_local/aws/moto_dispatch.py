"""moto's server finds the backend of every request under one process-wide lock, the slow way; the local stack
remembers the answer per host.

`DomainDispatcherApplication.get_application` holds its lock while `get_backend_for_host` lists moto's package
directory (and stats each of its ~180 entries) and then tries every backend's URL patterns in turn: about 0.6 ms of
CPU and more than 1 ms of wall time per request, during which no other request of any client can be dispatched. With
several missions at once (bench.load) every function, the driver and the Step Functions interpreter queue on that
lock. The answer depends on the host name only (the directory and the patterns do not change while the server runs),
so `MotoDispatchFix` keeps it per host: the lock is then held for a dictionary lookup. Nothing about what a request
does changes. Installed by the local stack while it runs; `uninstall()` restores moto's method.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["MotoDispatchFix"]


class MotoDispatchFix:
    _lock = threading.Lock()
    _original: Any = None

    @classmethod
    def install(cls) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        with cls._lock:
            if cls._original is not None:
                return
            original = DomainDispatcherApplication.get_backend_for_host
            known: dict[str | None, Any] = {}

            def get_backend_for_host(dispatcher: Any, host: str | None) -> Any:
                # Called under the dispatcher's own lock, so the dictionary needs none of its own.
                if host not in known:
                    known[host] = original(dispatcher, host)
                return known[host]

            cls._original = original
            DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign,assignment]

    @classmethod
    def uninstall(cls) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        with cls._lock:
            if cls._original is None:
                return
            DomainDispatcherApplication.get_backend_for_host = cls._original  # type: ignore[method-assign]
            cls._original = None
