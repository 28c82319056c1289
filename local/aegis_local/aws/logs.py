"""Per-function log files for the local stack, the way CloudWatch Logs keeps one log group per function.

On Lambda, whatever a handler writes to stdout or stderr (Powertools loggers write JSON lines to stdout) lands in the
function's log group. In the local stack every function runs in this one process, so `LogCapture` replaces
`sys.stdout` and `sys.stderr` with a router while it is installed:

- a write from a thread that is running an invocation goes to `<directory>/<function name>.log` (the runtime marks
  the thread with `invocation_scope`, and adds Lambda's `START` / `END` / `REPORT` lines around each invocation);
- any other write (threads a handler starts itself, moto, the emulator, libraries) goes to
  `<directory>/process.log`; stderr is also passed on to the terminal, so warnings and crashes stay visible.

Logging handlers that already hold the console streams (a Powertools logger configured before the capture began, in
a long-lived process) are pointed at the router while it is installed, and back afterwards. Nothing written during
a run therefore escapes the files, which is what lets the leak audit promise to have searched "the logs". A handler
may hold a stream that was closed under it (the stdout of an earlier capture, a test's captured stdout): it is
pointed at the router all the same, and given its closed stream back afterwards, as it was found.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["PROCESS_LOG", "LogCapture", "current_function", "invocation_scope", "runtime_line"]

PROCESS_LOG = "process.log"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

_scope = threading.local()


@contextmanager
def invocation_scope(function_name: str) -> Iterator[None]:
    """Mark the calling thread as running an invocation of `function_name` (its writes go to that function's log)."""
    previous = getattr(_scope, "function", None)
    _scope.function = function_name
    try:
        yield
    finally:
        _scope.function = previous


def current_function() -> str | None:
    """The function whose invocation the calling thread runs, if any."""
    return getattr(_scope, "function", None)


def runtime_line(text: str) -> None:
    """A line the Lambda runtime itself writes to the function's log (START, END, REPORT, unhandled errors).

    Written only while a capture is installed: without one there is no log group, and the console stays quiet."""
    capture = LogCapture.active()
    function = current_function()
    if capture is not None and function is not None:
        capture.write(function, text if text.endswith("\n") else text + "\n")


class _RoutedStream(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr while a capture is installed."""

    def __init__(self, capture: LogCapture, original: IO[str], *, pass_through: bool) -> None:
        super().__init__()
        self._capture = capture
        self.original = original
        self._pass_through = pass_through

    def write(self, text: str) -> int:
        if not text:
            return 0
        function = current_function()
        if function is not None:
            self._capture.write(function, text)
            return len(text)
        self._capture.write(None, text)
        if self._pass_through:
            # The terminal may have gone away: the file still has it.
            with suppress(OSError, ValueError):
                self.original.write(text)
        return len(text)

    def flush(self) -> None:
        self._capture.flush()
        if self._pass_through:
            with suppress(OSError, ValueError):
                self.original.flush()

    def isatty(self) -> bool:
        # Libraries that colour their output for a terminal must not put escape codes into log files.
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class LogCapture:
    """Route everything this process prints into per-function log files under `directory` (see the module doc).

    One capture per process at a time; use as a context manager, or `install()` / `uninstall()`."""

    _lock = threading.Lock()
    _active: LogCapture | None = None

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._files: dict[str | None, IO[str]] = {}
        self._files_lock = threading.Lock()
        self._stdout: _RoutedStream | None = None
        self._stderr: _RoutedStream | None = None
        self._repointed: list[tuple[logging.StreamHandler[Any], Any]] = []

    @classmethod
    def active(cls) -> LogCapture | None:
        return cls._active

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def install(self) -> Self:
        with LogCapture._lock:
            if LogCapture._active is not None:
                raise RuntimeError("a LogCapture is already installed in this process")
            self.directory.mkdir(parents=True, exist_ok=True)
            self._stdout = _RoutedStream(self, sys.stdout, pass_through=False)
            self._stderr = _RoutedStream(self, sys.stderr, pass_through=True)
            self._repoint_console_handlers()
            sys.stdout = self._stdout
            sys.stderr = self._stderr
            LogCapture._active = self
        return self

    def uninstall(self) -> None:
        with LogCapture._lock:
            if LogCapture._active is not self:
                return
            assert self._stdout is not None
            assert self._stderr is not None
            if sys.stdout is self._stdout:
                sys.stdout = self._stdout.original
            if sys.stderr is self._stderr:
                sys.stderr = self._stderr.original
            self._restore_console_handlers()
            LogCapture._active = None
        with self._files_lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()

    @property
    def files(self) -> list[Path]:
        """The log files written so far (one per function that printed anything, and the process log)."""
        return sorted(p for p in self.directory.glob("*.log") if p.is_file())

    def path_for(self, function_name: str | None) -> Path:
        if function_name is None:
            return self.directory / PROCESS_LOG
        return self.directory / (_SAFE_NAME.sub("_", function_name) + ".log")

    def write(self, function_name: str | None, text: str) -> None:
        with self._files_lock:
            handle = self._files.get(function_name)
            if handle is None:
                handle = self.path_for(function_name).open("a", encoding="utf-8", errors="backslashreplace")
                self._files[function_name] = handle
            handle.write(text)
            if text.endswith("\n"):
                handle.flush()

    def flush(self) -> None:
        with self._files_lock:
            for handle in self._files.values():
                handle.flush()

    # -- logging handlers that hold a console stream ---------------------------------------------------------------

    def _console_streams(self) -> set[int]:
        return {id(stream) for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if stream}

    def _repoint_console_handlers(self) -> None:
        assert self._stdout is not None
        assert self._stderr is not None
        consoles = self._console_streams()
        errors = {id(sys.stderr), id(sys.__stderr__)}
        for handler in _stream_handlers():
            stream = handler.stream
            # Powertools loggers keep the stdout of the moment they were configured (in a long-lived process
            # that may be an earlier capture's stream): they are always function output.
            if id(stream) in consoles or _is_powertools_handler(handler):
                target = self._stderr if id(stream) in errors else self._stdout
                self._repointed.append((handler, stream))
                _point(handler, target)

    def _restore_console_handlers(self) -> None:
        assert self._stdout is not None
        assert self._stderr is not None
        ours = {id(self._stdout): self._stdout.original, id(self._stderr): self._stderr.original}
        restored = set()
        for handler, stream in self._repointed:
            if id(handler.stream) in ours:
                _point(handler, stream)
            restored.add(id(handler))
        for handler in _stream_handlers():
            if id(handler) not in restored and id(handler.stream) in ours:
                # Configured during the capture (e.g. a handler module imported by an invocation).
                _point(handler, ours[id(handler.stream)])
        self._repointed = []


def _point(handler: logging.StreamHandler[Any], stream: Any) -> None:
    """`handler.setStream(stream)`, except that a stream closed under the handler is not flushed: setStream flushes
    the old stream first, and a closed one raises "I/O operation on closed file" (there is nothing left to flush)."""
    handler.acquire()
    try:
        with suppress(ValueError, OSError):
            handler.flush()
        handler.stream = stream
    finally:
        handler.release()


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers: list[logging.Logger] = [logging.getLogger(), *_named_loggers()]
    handlers: dict[int, logging.StreamHandler[Any]] = {}
    for found in loggers:
        for handler in found.handlers:
            if type(handler) is logging.StreamHandler:
                handlers[id(handler)] = handler
    return list(handlers.values())


def _named_loggers() -> list[logging.Logger]:
    return [found for found in list(logging.Logger.manager.loggerDict.values()) if isinstance(found, logging.Logger)]


def _is_powertools_handler(handler: logging.Handler) -> bool:
    return any(getattr(found, "powertools_handler", None) is handler for found in _named_loggers())
