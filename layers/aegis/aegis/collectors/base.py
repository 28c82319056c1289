"""Plumbing shared by the collectors: clients that count their calls, and values fetched once per scan."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserFactory

# Throttling and transient errors are retried by botocore itself; what still fails after these attempts becomes a
# ScanError for the checks that needed the call. Standard mode (not adaptive): its backoff is per call, so one
# throttled service cannot stall the client-side rate limiter of the others.
RETRY_MODE = "standard"
# Retries after the first attempt (botocore's `max_attempts` counts retries): five attempts in all.
MAX_RETRY_ATTEMPTS = 4


def error_name(exc: BaseException) -> str:
    """The named error of a failure: AWS's error code, or the exception's class name."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def tag_dict(tags: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """AWS's list-of-pairs tag shape as a dict."""
    return {item[key]: item.get(value, "") for item in tags or [] if key in item}


def _timestamp_as_sent(value: Any) -> Any:
    return value


def keep_timestamps_unparsed(client: Any) -> None:
    """Make `client` leave the timestamps of its responses as the service sent them (text, or epoch seconds).

    No collector reads a timestamp, and botocore parses every one it meets with dateutil: the policies' and roles'
    dates of GetAccountAuthorizationDetails, the buckets' of ListBuckets, the instances'... At 16x the bench account
    that was 9% of the scan's client-side CPU (py-spy, bench.scan_scale). botocore offers this only per session
    (`set_parser_defaults` of its response parser factory, from which each client's endpoint makes a parser per
    response), and the session is the caller's: this client's endpoint gets a factory of its own instead. Should
    botocore rename what this relies on, the client keeps parsing (slower, not wrong).
    """
    endpoint = getattr(client, "_endpoint", None)
    if endpoint is not None and hasattr(endpoint, "_response_parser_factory"):
        factory = ResponseParserFactory()
        factory.set_parser_defaults(timestamp_parser=_timestamp_as_sent)
        endpoint._response_parser_factory = factory


class Clients:
    """boto3 clients made from one session, one per (service, region), each counting its API calls.

    Calls are counted on `before-call`, which fires once per operation (retries of the same call are not counted
    again), keyed "service.Operation". A boto3 Session is not thread-safe, so clients are created under a lock;
    the clients themselves are. Counting has a lock of its own: creating a client can take a tenth of a second
    (its service model may have to be read), and no thread's calls should wait for it.
    """

    def __init__(self, session: boto3.Session, max_pool_connections: int = 10) -> None:
        self._session = session
        self._config = Config(
            retries={"mode": RETRY_MODE, "max_attempts": MAX_RETRY_ATTEMPTS},
            max_pool_connections=max_pool_connections,
        )
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._calls: Counter[str] = Counter()

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        made = self._clients.get(key)  # made once, never replaced: a dict read needs no lock
        if made is not None:
            return made
        with self._lock:
            if key not in self._clients:
                client = self._session.client(service, region_name=region, config=self._config)
                client.meta.events.register("before-call.*.*", self._count)
                keep_timestamps_unparsed(client)
                self._clients[key] = client
            return self._clients[key]

    def _count(self, model: Any, **_: Any) -> None:
        key = f"{model.service_model.service_name}.{model.name}"
        with self._count_lock:
            self._calls[key] += 1

    @property
    def api_calls(self) -> dict[str, int]:
        with self._count_lock:
            return dict(sorted(self._calls.items()))


class Once:
    """Values computed at most once per key, shared by the checks that need them, safe across threads.

    A failure is remembered like a value: every check that needs a listing which failed after retries gets the same
    error, and the listing is not called again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._results: dict[Hashable, tuple[bool, Any]] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._results:
                try:
                    self._results[key] = (True, compute())
                except Exception as exc:
                    self._results[key] = (False, exc)
            ok, value = self._results[key]
        if not ok:
            raise value
        return value


class ServiceCollector:
    """The inventory of one service through one client, each listing fetched once (`Once`)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._once = Once()
