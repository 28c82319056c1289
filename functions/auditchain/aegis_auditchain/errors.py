"""The chainer's named errors. A raised error fails the stream batch, and Lambda retries it from the first record:
records already linked are skipped on the retry, so nothing is linked twice and nothing is skipped."""

from __future__ import annotations

from aegis.named_errors import ConfigurationError, NamedError


class ChainError(NamedError):
    """Base class of the chainer's errors."""


class RecordMalformed(ChainError):
    """A stream record is not an audit record's insertion (no new image, or no mission_id/seq keys)."""

    error_name = "AuditChain.RecordMalformed"


class InvalidSettings(ChainError, ConfigurationError):
    error_name = "AuditChain.InvalidSettings"


ERRORS: tuple[type[ChainError], ...] = (RecordMalformed, InvalidSettings)
