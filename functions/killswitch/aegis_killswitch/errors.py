"""The kill switch's errors. None reaches Step Functions: a direct invocation's caller and Lambda (which retries an
asynchronous event that raised) see them by class name. Messages name what is wrong, never a token or a body. A
refused HTTP caller is aegis_jwt's Unauthenticated (401) or Forbidden (403)."""

from __future__ import annotations

from pydantic import ValidationError

from aegis.named_errors import ConfigurationError
from aegis_jwt.errors import ProviderUnavailable


class InvalidSettings(ConfigurationError):
    """An environment setting of the kill switch is missing or invalid: the deployment is incomplete."""

    error_name = "KillSwitch.InvalidSettings"


class InvalidKillSwitchRequest(ValueError):
    """The event or body is not a kill switch request; the message says which field is wrong."""

    @classmethod
    def from_validation(cls, error: ValidationError) -> InvalidKillSwitchRequest:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'request'}: {item['msg']}" for item in error.errors()
        )
        return cls(f"invalid kill switch request: {problems}")


class HandoffPurgeFailed(RuntimeError):
    """The handoffs of an ended execution could not all be deleted; raised so that Lambda retries the event."""


class ManagementApiFailed(Exception):
    """The Management API refused a call; the message is Auth0's `errorCode` and short message, never a body."""

    def __init__(self, status_code: int, what: str, error_code: str = "", message: str = "") -> None:
        detail = " ".join(part for part in (error_code, message[:200]) if part)
        super().__init__(f"{what}: HTTP {status_code}" + (f" {detail}" if detail else ""))
        self.status_code = status_code


class Auth0Unreachable(ProviderUnavailable):
    """A call not attempted because Auth0 already failed to answer (or refused the token) in this operation."""


class MemberWorkRefused(RuntimeError):
    """A member account's roles were left as they were because a check made just before refused the change (a re-arm
    while the halt flag is engaged again); `code` is what the member is listed with."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
