"""`BedrockEmulator`: the emulated Bedrock runtime served over real HTTP on 127.0.0.1 by uvicorn in a thread.

moto implements only `InvokeModel` for bedrock-runtime; the agent's analyst calls `Converse`. The local stack starts
this emulator and points the functions at it with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, while every other service
stays on moto. Token usage in its answers is an estimate (ceil(characters / 4); see `aegis_local.bedrock.app`).
"""

from __future__ import annotations

import ipaddress
import threading
from types import TracebackType
from typing import Self

from aegis_local.asgi_thread import ThreadedServer, loopback_listener
from aegis_local.bedrock.app import CallLog, ModelCall, build_app

DEFAULT_FAILING_DELAY_SECONDS = 5.0


class EmulatorNotRunning(RuntimeError):
    """The emulator was used before `start()` or after `stop()`."""


class BedrockEmulator:
    """Bedrock's runtime on the wire (Converse only). `start()` returns the endpoint URL (`http://127.0.0.1:<port>`),
    what a boto3 `bedrock-runtime` client takes as `endpoint_url`."""

    def __init__(
        self, *, failing_delay_seconds: float = DEFAULT_FAILING_DELAY_SECONDS, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
            raise ValueError(f"the emulator listens on an IPv4 loopback address only, not {host!r}")
        self.failing_delay_seconds = failing_delay_seconds
        self._host = host
        self._requested_port = port
        self._log = CallLog()
        self._url: str | None = None
        self._server: ThreadedServer | None = None
        self._stopped = False
        self._stopping = threading.Event()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> str:
        if self._url is not None or self._stopped:
            raise RuntimeError("a BedrockEmulator starts once")
        listener = loopback_listener(self._host, self._requested_port)
        app = build_app(self._log, lambda: self.failing_delay_seconds, self._stopping.is_set)
        self._server = ThreadedServer(app, listener, "Bedrock emulator")
        port = self._server.port
        self._url = f"http://{self._host}:{port}"
        return self._url

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
        self._server, self._url = None, None
        self._stopped = True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- where it is, what it saw

    @property
    def url(self) -> str:
        """The endpoint URL (no trailing slash)."""
        if self._url is None:
            raise EmulatorNotRunning("start the Bedrock emulator first")
        return self._url

    def calls(self) -> list[ModelCall]:
        """Every Converse request so far, in order: model id, batch, outcome, input and output tokens."""
        return self._log.calls()

    def reset(self) -> None:
        """Forget the calls so far."""
        self._log.reset()
