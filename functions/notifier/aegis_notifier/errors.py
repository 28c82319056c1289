"""The notifier's named errors (aegis.named_errors). Messages name settings, fields and audit record keys, never a
value taken from a record."""

from __future__ import annotations

from aegis.named_errors import ConfigurationError, NamedError


class NotifierError(NamedError):
    """Base class of the notifier's errors."""


class RecordMalformed(NotifierError):
    """A stream record is not an audit record's insertion: no new image, or one without the audit record's keys and
    fields. It can never become one, so it is reported and skipped, not retried."""

    error_name = "Notifier.RecordMalformed"


class PublishFailed(NotifierError):
    """SNS did not accept a notification. The record's batch item fails and the stream delivers it again."""

    error_name = "Notifier.PublishFailed"


class EarlierRecordFailed(NotifierError):
    """An earlier record of the same batch failed: this one is not attempted, so the retry, which starts at the
    failed record, tells the operator everything once and in the trail's order."""

    error_name = "Notifier.EarlierRecordFailed"


class InvalidSettings(NotifierError, ConfigurationError):
    """An environment setting of the notifier is missing or invalid: the deployment is incomplete."""

    error_name = "Notifier.InvalidSettings"


ERRORS: tuple[type[NotifierError], ...] = (RecordMalformed, PublishFailed, EarlierRecordFailed, InvalidSettings)
