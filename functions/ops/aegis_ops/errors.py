"""The ops API's named errors. Each maps to one HTTP status in app.py; messages name fields and rules, never echo a
value the caller sent (a token may have been pasted into the wrong field)."""

from __future__ import annotations

from aegis.named_errors import ConfigurationError, NamedError


class OpsError(NamedError):
    """Base class of the ops function's errors."""


class InvalidSettings(OpsError, ConfigurationError):
    error_name = "Ops.InvalidSettings"


class BadRequest(OpsError):
    """HTTP 400: the request's path, query or body breaks a rule its message names."""

    error_name = "Ops.BadRequest"


class NotFound(OpsError):
    """HTTP 404: the mission (or change) named does not exist."""

    error_name = "Ops.NotFound"


class DocumentInvalid(OpsError):
    """HTTP 500: a stored mission document is missing a page or does not match the digest its mission records."""

    error_name = "Ops.DocumentInvalid"


class EventNotAccepted(OpsError):
    """HTTP 502: EventBridge did not accept the event (its FailedEntryCount); nothing was requested."""

    error_name = "Ops.EventNotAccepted"


class Refused(OpsError):
    """HTTP 409: a request refused before anything is put, for the named `reason` (the kill switch is engaged, or an
    undo the validator's own rules would refuse)."""

    error_name = "Ops.Refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
