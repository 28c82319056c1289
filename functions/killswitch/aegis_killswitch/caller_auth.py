"""Who may pull (or re-arm) the kill switch over HTTP: a caller with an Auth0 access token for the kill switch's
audience carrying the operation's scope. Verification is `aegis_auth.jwt_verify` (RS256 only, the one JWK named by
`kid`, issuer, audience, expiry); this module adds the bearer parsing and the scope check.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from aegis_auth.errors import AuthError
from aegis_auth.oidc import provider_metadata
from aegis_killswitch.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from aegis_auth.jwt_verify import TokenVerifier

KILL_SCOPE = "aegis:killswitch"
REARM_SCOPE = "aegis:rearm"
# Tokens here come from anyone on the internet (the function URL has AuthType NONE): an unknown kid may make the
# JWKS be fetched again at most this often, so random kids cannot turn the kill switch into a JWKS flooder.
CALLER_JWKS_MIN_REFETCH_SECONDS = 30.0


@dataclass(frozen=True)
class Caller:
    sub: str
    scopes: frozenset[str]


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
    """OAuth `scope` (space-separated) plus Auth0 RBAC `permissions`, when the API adds them to tokens."""
    scopes: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        scopes.update(scope.split())
    permissions = claims.get("permissions")
    if isinstance(permissions, list):
        scopes.update(p for p in permissions if isinstance(p, str))
    return frozenset(scopes)


class CallerVerifier:
    """Verifies callers' access tokens for one issuer and audience. The discovery document and JWKS are fetched on
    first use and cached for the life of the process (one Lambda container)."""

    def __init__(self, issuer: str, audience: str, *, http: httpx.Client | None = None) -> None:
        if not audience:
            raise ValueError("the kill switch audience is required")
        self._issuer = issuer
        self._audience = audience
        self._http = http
        self._verifier: TokenVerifier | None = None
        self._lock = threading.Lock()

    def _token_verifier(self) -> TokenVerifier:
        # JWT verification (python-jose and the cryptography bindings under it) is imported by the first HTTP call,
        # so that direct invocations, which IAM authorises, do not load it on their cold start.
        from aegis_auth.jwt_verify import JwksCache, TokenVerifier

        with self._lock:
            if self._verifier is None:
                metadata = provider_metadata(self._issuer, self._http)
                jwks = JwksCache(metadata.jwks_uri, self._http, min_refetch_interval=CALLER_JWKS_MIN_REFETCH_SECONDS)
                self._verifier = TokenVerifier(metadata.issuer, jwks)
            return self._verifier

    def authorize(self, headers: Mapping[str, str] | None, required_scope: str) -> Caller:
        token = bearer_token(headers)
        try:
            claims = self._token_verifier().verify(token, self._audience)
        except AuthError as error:
            # TokenInvalid, and also an unreachable provider: without keys no token can be trusted.
            raise Unauthenticated(str(error)) from None
        scopes = granted_scopes(claims)
        if required_scope not in scopes:
            raise Forbidden(required_scope)
        return Caller(sub=str(claims["sub"]), scopes=scopes)
