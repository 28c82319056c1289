"""What the local stack published to its SNS topics, kept the way an operator's subscription receives it.

On AWS, NotificationsTopic delivers each message to its email and HTTPS subscriptions. moto's SNS keeps a published
message in memory only, sends nothing to an email address, and posts to an HTTPS endpoint only if one is subscribed
(a real one). So while a `NotificationCapture` is installed it wraps `moto.sns.models.Topic.publish`, which every
`Publish` and `PublishBatch` of every topic reaches whatever its subscriptions, the way aegis_local.aws.eventbridge
wraps EventBridge's delivery: moto publishes exactly as before, and each message it accepted is then

- appended to a JSON Lines file, one object per message: `topic`, `subject`, `message`, `attributes` (name -> value),
  `time`, `message_id` (the demo's is `<report dir>/notifications.jsonl`, which the leak audit searches); and
- handed to a callback, if one is given (the demo prints each as it arrives).

One capture per process: moto's backends are process-wide.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["NOTIFICATIONS_FILE", "NotificationCapture", "PublishedNotification", "read_notifications"]

logger = logging.getLogger(__name__)

NOTIFICATIONS_FILE = "notifications.jsonl"


@dataclass(frozen=True)
class PublishedNotification:
    """One message a topic accepted, as a subscriber gets it (the envelope's Subject, Message, MessageAttributes)."""

    topic: str
    subject: str | None
    message: str
    attributes: dict[str, str]
    time: str
    message_id: str

    def as_json_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=False) + "\n"

    def line(self) -> str:
        """A short line for a console: the kind, if the message says it, and the subject (which names the mission
        or the change), else the beginning of the message."""
        kind = self.attributes.get("kind")
        first_line = self.message.splitlines()[0][:100] if self.message else ""
        text = self.subject or first_line
        return f"{kind}: {text}" if kind else text


def read_notifications(path: Path) -> list[PublishedNotification]:
    """The notifications a capture wrote to `path`, oldest first ([] when there is no such file)."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [PublishedNotification(**json.loads(line)) for line in lines if line.strip()]


@dataclass
class _Active:
    capture: NotificationCapture
    handle: IO[str]
    lock: threading.Lock = field(default_factory=threading.Lock)


class NotificationCapture:
    """Records every message published to an SNS topic while installed (see the module doc). Use as a context
    manager, or `install()` / `uninstall()`; the file is started afresh by each install."""

    _lock = threading.Lock()
    _active: _Active | None = None
    _original: Any = None

    def __init__(
        self, path: str | Path, on_notification: Callable[[PublishedNotification], None] | None = None
    ) -> None:
        self.path = Path(path)
        self._on_notification = on_notification
        self._published: list[PublishedNotification] = []
        self._arrived = threading.Condition()

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    @property
    def published(self) -> list[PublishedNotification]:
        with self._arrived:
            return list(self._published)

    def install(self) -> Self:
        from moto.sns.models import Topic

        with NotificationCapture._lock:
            if NotificationCapture._active is not None:
                raise RuntimeError("a NotificationCapture is already installed in this process")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("w", encoding="utf-8")
            NotificationCapture._active = _Active(self, handle)
            if NotificationCapture._original is None:
                NotificationCapture._original = Topic.publish
                Topic.publish = _recorded_publish  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        from moto.sns.models import Topic

        with NotificationCapture._lock:
            active = NotificationCapture._active
            if active is None or active.capture is not self:
                return
            NotificationCapture._active = None
            if NotificationCapture._original is not None:
                Topic.publish = NotificationCapture._original  # type: ignore[method-assign]
                NotificationCapture._original = None
        with active.lock:
            active.handle.close()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least `count` messages were published; True if they were within `timeout` seconds."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._published) >= count, timeout)

    def _record(self, active: _Active, notification: PublishedNotification) -> None:
        with active.lock:
            active.handle.write(notification.as_json_line())
            active.handle.flush()
        with self._arrived:
            self._published.append(notification)
            self._arrived.notify_all()
        if self._on_notification is not None:
            try:
                self._on_notification(notification)
            except Exception:  # a console that went away must not make a publish fail
                logger.warning("the notification callback failed", exc_info=True)


def _attribute_values(attributes: dict[str, Any] | None) -> dict[str, str]:
    """moto's message attributes (`{name: {"Type", "Value"}}`) as name -> value."""
    return {name: str(value.get("Value")) for name, value in (attributes or {}).items() if isinstance(value, dict)}


def _recorded_publish(topic: Any, message: str, subject: str | None = None, **kwargs: Any) -> str:
    """`moto.sns.models.Topic.publish`, then the record of what it accepted."""
    original = NotificationCapture._original
    message_id = str(original(topic, message, subject=subject, **kwargs))
    active = NotificationCapture._active
    if active is not None:
        active.capture._record(
            active,
            PublishedNotification(
                topic=str(topic.arn),
                subject=subject,
                message=message,
                attributes=_attribute_values(kwargs.get("message_attributes")),
                time=datetime.now(UTC).isoformat(),
                message_id=message_id,
            ),
        )
    return message_id
