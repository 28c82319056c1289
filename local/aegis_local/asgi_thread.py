"""How the local emulators run: an ASGI app served by uvicorn on a loopback socket, in a daemon thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

STARTUP_TIMEOUT_SECONDS = 10.0


def loopback_listener(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: a free one). proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted
    connections; without it every keep-alive response waits ~40 ms for a delayed ACK."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    return listener


class ThreadedServer:
    """`app` served on `listener` until `stop()`; the constructor returns once uvicorn has started (else raises)."""

    def __init__(self, app: Any, listener: socket.socket, name: str) -> None:
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, name=f"{name}-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                listener.close()
                raise RuntimeError(f"the {name} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        self._listener.close()
