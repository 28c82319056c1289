"""Concurrent threads on one manual clock, as a discrete-event simulation: a thread's `sleep` returns once the clock
reaches its wake time, and the clock moves only when every running thread is asleep, straight to the earliest wake
time. Work between sleeps (HTTP, DynamoDB) takes no virtual time, so concurrent invocations of a function that
sleeps through an injected sleeper run as they would at once, without waiting for real and in a repeatable order of
virtual times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aegis_local.auth0.clock import ManualClock

# A thread that neither sleeps nor ends for this long (real time) means the simulation is stuck.
STUCK_AFTER_SECONDS = 60.0


class SimulationStuck(RuntimeError):
    """A thread waited for virtual time that never came."""


class VirtualTime:
    def __init__(self, clock: ManualClock, *, on_wake: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self._on_wake = on_wake
        self._lock = threading.Condition()
        self._running = 0
        # Wake time of each sleeping thread, by thread id.
        self._asleep: dict[int, float] = {}

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        give_up = time.monotonic() + STUCK_AFTER_SECONDS
        with self._lock:
            self._asleep[me] = self.clock() + max(seconds, 0.0)
            self._move_on()
            while self.clock() < self._asleep[me]:
                if not self._lock.wait(timeout=1.0) and time.monotonic() > give_up:
                    del self._asleep[me]
                    raise SimulationStuck("no thread moved virtual time on")
            del self._asleep[me]
        if self._on_wake is not None:
            self._on_wake()

    def run(self, work: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run every callable in a thread of its own, all at once; their results in order (the first error is
        raised once all have ended)."""
        results: list[Any] = [None] * len(work)
        errors: list[BaseException] = []

        def body(index: int, task: Callable[[], Any]) -> None:
            try:
                results[index] = task()
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)
            finally:
                with self._lock:
                    self._running -= 1
                    self._move_on()

        with self._lock:
            self._running = len(work)
        threads = [threading.Thread(target=body, args=(n, task), daemon=True) for n, task in enumerate(work)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=STUCK_AFTER_SECONDS * 2)
        if any(thread.is_alive() for thread in threads):
            raise SimulationStuck("a thread never ended")
        if errors:
            raise errors[0]
        return results

    def _move_on(self) -> None:
        """With the lock held: when every running thread sleeps and none is due, advance to the earliest wake."""
        now = self.clock()
        if self._running and len(self._asleep) == self._running and all(at > now for at in self._asleep.values()):
            self.clock.advance(min(self._asleep.values()) - now)
        self._lock.notify_all()
