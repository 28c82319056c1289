"""Who is calling an HTTP route, and may they: the caller's bearer token verified with `aegis_jwt.verify` (RS256 only,
the one JWK named by `kid`, issuer, audience, expiry), then the route's scope looked up in what the token grants.

Every HTTP entry point of the project (the kill switch, the ops API) verifies the token itself, even behind an API
Gateway JWT authorizer that checked it already: the function does not trust that it is only reachable through the
gateway, and the scopes it acts on come from the token it verified.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from aegis_jwt.discovery import provider_metadata
from aegis_jwt.errors import AuthError, ClientConfigurationError, Forbidden, Unauthenticated

if TYPE_CHECKING:
    from aegis_jwt.verify import TokenVerifier

# Tokens here come from anyone on the internet: an unknown kid may make the JWKS be fetched again at most this often,
# so that random kids cannot turn an HTTP route into a JWKS flooder.
CALLER_JWKS_MIN_REFETCH_SECONDS = 30.0
# Claims that carry granted scopes: OAuth `scope` (space-separated), `scp` (a string or a list, which API Gateway's JWT
# authorizer also reads) and Auth0 RBAC `permissions` (a list, when the API adds them to its tokens).
SCOPE_CLAIMS = ("scope", "scp", "permissions")


@dataclass(frozen=True)
class Caller:
    """A caller whose token verified: its subject, the scopes it was granted, and every verified claim."""

    sub: str
    scopes: frozenset[str]
    # Kept out of repr so that a logged Caller never carries the caller's e-mail or other profile claims.
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def bearer_token(headers: Mapping[str, str] | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (header name and scheme case-insensitive)."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "authorization"), None)
    if not value:
        raise Unauthenticated("no Authorization header")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("the Authorization header is not a Bearer token")
    return token


def granted_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Every scope the claims grant, from `scope`, `scp` and `permissions`; values of any other type are ignored."""
    scopes: set[str] = set()
    for name in SCOPE_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(item for item in value if isinstance(item, str))
    return frozenset(scopes)


class CallerVerifier:
    """Verifies callers' access tokens for one issuer and audience. The discovery document and JWKS are fetched on
    first use and cached for the life of the process (one Lambda container)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        http: httpx.Client | None = None,
        min_jwks_refetch_seconds: float = CALLER_JWKS_MIN_REFETCH_SECONDS,
    ) -> None:
        if not issuer:
            raise ClientConfigurationError("the issuer of callers' tokens is required")
        if not audience:
            raise ClientConfigurationError("the audience of callers' tokens is required")
        self._issuer = issuer
        self.audience = audience
        self._http = http
        self._min_jwks_refetch_seconds = min_jwks_refetch_seconds
        self._verifier: TokenVerifier | None = None
        self._lock = threading.Lock()

    def _token_verifier(self) -> TokenVerifier:
        # JWT verification (python-jose and the cryptography bindings under it) is imported by the first HTTP call,
        # so that a function's other entry points (the kill switch's direct invocations, which IAM authorises) do
        # not load it on their cold start.
        from aegis_jwt.verify import JwksCache, TokenVerifier

        with self._lock:
            if self._verifier is None:
                metadata = provider_metadata(self._issuer, self._http)
                jwks = JwksCache(metadata.jwks_uri, self._http, min_refetch_interval=self._min_jwks_refetch_seconds)
                self._verifier = TokenVerifier(metadata.issuer, jwks)
            return self._verifier

    def authenticate(self, headers: Mapping[str, str] | None) -> Caller:
        """The caller whose bearer token is in `headers`; Unauthenticated (HTTP 401) for anything else."""
        token = bearer_token(headers)
        try:
            claims = self._token_verifier().verify(token, self.audience)
        except AuthError as error:
            # TokenInvalid, and also an unreachable provider or a bad discovery document: without keys no token can
            # be trusted.
            raise Unauthenticated(str(error)) from None
        return Caller(sub=str(claims["sub"]), scopes=granted_scopes(claims), claims=claims)

    def authorize(self, headers: Mapping[str, str] | None, required_scope: str) -> Caller:
        """`authenticate`, then Forbidden (HTTP 403) unless the token grants `required_scope`."""
        if not required_scope:
            raise ValueError("a route's required scope is never empty: use authenticate for routes without one")
        caller = self.authenticate(headers)
        if required_scope not in caller.scopes:
            raise Forbidden(required_scope)
        return caller
