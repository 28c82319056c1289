"""Named errors of the credential-handling code. Its base classes (AuthError, the configuration, discovery,
provider and token errors) are aegis_jwt's, which the verification-only functions ship without this layer.

Messages never contain a token, a secret or a response body: they name what failed and why, so they are safe to log,
to audit and to pass to Step Functions as a failure cause.
"""

from __future__ import annotations

from aegis_jwt.errors import AuthError, TokenInvalid


# --- configuration --------------------------------------------------------------------------------------------------
class SecretUnavailable(AuthError):
    """The client secret could not be read from Secrets Manager, or it is empty or malformed."""


# --- talking to the provider ----------------------------------------------------------------------------------------
class OAuthProtocolError(AuthError):
    """The provider answered with an OAuth error (`{error, error_description}`) or a malformed body."""

    def __init__(self, status_code: int, error: str, description: str = "") -> None:
        # The description comes from the provider; keep it short and never include our request.
        super().__init__(f"HTTP {status_code} {error}" + (f": {description[:200]}" if description else ""))
        self.status_code = status_code
        self.error = error
        self.description = description[:200]


# --- token verification ---------------------------------------------------------------------------------------------
class ApprovalMismatch(TokenInvalid):
    """A verified token does not grant what we asked for (another change digest, another approver)."""


# --- sealed handoffs ------------------------------------------------------------------------------------------------
class HandoffError(AuthError):
    """Base class of sealed-handoff errors."""


class HandoffAlreadyConsumed(HandoffError):
    """The handoff was consumed before (or never existed): an approval releases one execution, once."""


class HandoffContextMismatch(HandoffError):
    """The handoff was sealed for another execution or another change; it is destroyed, not opened."""


class HandoffExpired(HandoffError):
    """The handoff outlived the token it carries (DynamoDB TTL deletes lazily, so this is checked on read)."""


class HandoffCorrupt(HandoffError):
    """The stored item is not a sealed handoff of a format this code can open."""
