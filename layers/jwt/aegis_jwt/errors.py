"""Named errors of token verification and provider discovery, and of refusing an HTTP caller.

Messages never contain a token or a response body: they name what failed and why, so they are safe to log, to audit
and to answer a refused caller with.
"""

from __future__ import annotations

from aegis.named_errors import ConfigurationError


class AuthError(Exception):
    """Base class of every error raised by aegis_jwt and aegis_auth."""


# --- configuration and discovery ------------------------------------------------------------------------------------
class ClientConfigurationError(AuthError, ConfigurationError):
    """The configuration is unusable (bad issuer URL, empty audience, unsupported client authentication method)."""


class InsecureEndpoint(ClientConfigurationError):
    """An issuer or endpoint is not HTTPS and not on the loopback interface."""


class DiscoveryError(AuthError):
    """The issuer's discovery document is unreachable, malformed, for another issuer, or lacks an endpoint."""


# --- talking to the provider ----------------------------------------------------------------------------------------
class ProviderUnavailable(AuthError):
    """A transport error or a 5xx answer: the request may be retried (only if retrying it is safe)."""


class DiscoveryUnavailable(DiscoveryError, ProviderUnavailable):
    """The discovery document could not be fetched (transport error or 5xx): retrying may help."""


# --- token verification ---------------------------------------------------------------------------------------------
class TokenInvalid(AuthError):
    """A JWT failed verification: bad signature, wrong algorithm, unknown key, wrong issuer/audience, expired."""


# --- HTTP callers ---------------------------------------------------------------------------------------------------
class Unauthenticated(AuthError):
    """No usable bearer token: missing, malformed, badly signed, expired, for another issuer or audience. HTTP 401."""


class Forbidden(AuthError):
    """A valid token that lacks the scope the operation requires. HTTP 403."""

    def __init__(self, required_scope: str) -> None:
        super().__init__(f"the token lacks the scope {required_scope}")
        self.required_scope = required_scope
