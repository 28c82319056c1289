"""Verification of the provider's JWTs (access tokens and ID tokens) with python-jose.

The rules are deliberately narrow: RS256 only; exactly one key, the one the token's `kid` names in the provider's
JWKS (refetched once when the kid is unknown, for key rotation); `iss` always equal to the provider's issuer; `aud`
always checked (a token's `aud` may be a list); `exp`, `iat`, `iss`, `aud` and `sub` required; a small leeway.
ID tokens for several audiences must name us in `azp`; `require_authorized_party` checks which client an access token
was issued to. Time checks use an injectable clock, so tests can move time without sleeping.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from jose import jwt
from jose.exceptions import JOSEError

from aegis_jwt.discovery import ProviderMetadata, default_http_client, require_secure_url
from aegis_jwt.errors import TokenInvalid

Clock = Callable[[], float]

ALGORITHM = "RS256"
DEFAULT_LEEWAY_SECONDS = 30
JWKS_MAX_AGE_SECONDS = 600
# An unknown kid triggers one refetch (key rotation). The approval and the executor verify tokens that come only from
# the provider's own token endpoint or a sealed handoff, so by default the refetch is not rate limited; verifiers of
# tokens that anyone may send (aegis_jwt.callers) set a minimum interval.
JWKS_MIN_REFETCH_SECONDS = 0.0
_MAX_TOKEN_CHARS = 16 * 1024
# A JWKS fetch that got no answer (transport error or 5xx) is sent again after each of these waits: one lost answer
# must not cost an approval a human already gave. One retry: two read timeouts (aegis_jwt.discovery.HTTP_TIMEOUT)
# and the wait stay under the shortest approval heartbeat the template allows (30 s).
JWKS_RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0,)
# JWS and JWE algorithm names (RFC 7518: "RS256", "none", "RSA-OAEP", "ES256K"): too short to be a credential.
_ALGORITHM_NAME = re.compile(r"[A-Za-z0-9+\-]{1,16}")


class JwksCache:
    """The provider's signing keys, fetched from `jwks_uri`, cached for `max_age` seconds."""

    def __init__(
        self,
        jwks_uri: str,
        http: httpx.Client | None = None,
        *,
        clock: Clock = time.time,
        max_age: float = JWKS_MAX_AGE_SECONDS,
        min_refetch_interval: float = JWKS_MIN_REFETCH_SECONDS,
        retry_delays: Sequence[float] = JWKS_RETRY_DELAYS_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.jwks_uri = require_secure_url(jwks_uri, "jwks_uri")
        self._http = http or default_http_client()
        self._clock = clock
        self._retry_delays = tuple(retry_delays)
        self._sleep = sleep
        self._max_age = max_age
        self._min_refetch_interval = min_refetch_interval
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> dict[str, Any]:
        """The single JWK whose `kid` is `kid`; refetches the set once if it is unknown or stale."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
            if stale:
                self._refresh()
            key = self._keys.get(kid)
            if key is None and not stale and self._may_refetch(now):
                self._refresh()
                key = self._keys.get(kid)
        if key is None:
            raise TokenInvalid("the token's kid names no key in the provider's JWKS")
        return key

    def _may_refetch(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._min_refetch_interval

    def _fetch(self) -> httpx.Response:
        """The JWKS response, asked again after each retry delay while it gets no answer or a 5xx."""
        delays = iter(self._retry_delays)
        while True:
            try:
                response = self._http.get(self.jwks_uri, headers={"Accept": "application/json"})
            except httpx.TransportError as exc:
                unanswered = f"the provider's JWKS is unreachable ({type(exc).__name__})"
            else:
                if response.status_code < 500:
                    return response
                unanswered = f"the provider's JWKS answered HTTP {response.status_code}"
            delay = next(delays, None)
            if delay is None:
                raise TokenInvalid(unanswered)
            self._sleep(delay)

    def _refresh(self) -> None:
        response = self._fetch()
        if response.status_code != 200:
            raise TokenInvalid(f"the provider's JWKS answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise TokenInvalid("the provider's JWKS is not JSON") from None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise TokenInvalid("the provider's JWKS has no keys array")
        usable: dict[str, dict[str, Any]] = {}
        for key in keys:
            if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
                continue
            if key.get("kty") != "RSA" or key.get("use", "sig") != "sig" or key.get("alg", ALGORITHM) != ALGORITHM:
                continue
            usable[key["kid"]] = key
        self._keys = usable
        self._fetched_at = self._clock()


class TokenVerifier:
    """Verifies JWTs issued by one provider."""

    def __init__(
        self,
        issuer: str,
        jwks: JwksCache,
        *,
        clock: Clock = time.time,
        leeway: float = DEFAULT_LEEWAY_SECONDS,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        self.issuer = issuer
        self.jwks = jwks
        self._clock = clock
        self._leeway = leeway

    @classmethod
    def for_provider(
        cls,
        metadata: ProviderMetadata,
        http: httpx.Client | None = None,
        *,
        clock: Clock = time.time,
        leeway: float = DEFAULT_LEEWAY_SECONDS,
    ) -> TokenVerifier:
        return cls(metadata.issuer, JwksCache(metadata.jwks_uri, http, clock=clock), clock=clock, leeway=leeway)

    def verify(
        self,
        token: str,
        audience: str | Sequence[str],
        *,
        access_token: str | None = None,
    ) -> dict[str, Any]:
        """Verify `token` and return its claims. Raises TokenInvalid with a reason safe to log.

        `audience` is the expected audience, or several acceptable ones; the token's `aud` (a string or a list) must
        contain at least one of them. Pass `access_token` when verifying an ID token, so that an `at_hash` claim is
        checked against it.
        """
        expected_audiences = [audience] if isinstance(audience, str) else list(audience)
        if not expected_audiences or not all(isinstance(a, str) and a for a in expected_audiences):
            raise ValueError("at least one non-empty expected audience is required")
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            raise TokenInvalid("the token is missing or too long")
        header = self._header(token)
        key = self.jwks.key_for(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                access_token=access_token,
                options={
                    # jose's `require_x` switches `verify_x` on, and its time checks read the wall clock: exp, iat,
                    # nbf and aud are therefore required and checked below (injectable clock, several audiences).
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": True,
                    "require_iss": True,
                    "require_sub": True,
                    "verify_signature": True,
                    "verify_at_hash": access_token is not None,
                },
            )
        except JOSEError as exc:
            raise TokenInvalid(f"token rejected: {_jose_reason(exc)}") from None
        self._check_audience(claims, expected_audiences)
        self._check_times(claims)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenInvalid("token rejected: sub is not a non-empty string")
        return dict(claims)

    def verify_id_token(self, token: str, client_id: str, *, access_token: str | None = None) -> dict[str, Any]:
        """Verify an ID token issued to `client_id` and return its claims (OpenID Connect Core §3.1.3.7).

        Beyond `verify` with `client_id` as the audience: an ID token naming several audiences must name the one it
        was issued to in `azp`, and an `azp` that is present must be `client_id`. Otherwise a token issued to another
        client, which merely lists ours among its audiences, would pass as ours.
        """
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("client_id is required")
        claims = self.verify(token, client_id, access_token=access_token)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if azp is None and len(set(audiences)) > 1:
            raise TokenInvalid("token rejected: an ID token for several audiences names no azp")
        if azp is not None and azp != client_id:
            raise TokenInvalid("token rejected: the ID token's azp is another client")
        return claims

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise TokenInvalid("the token is not a JWS compact serialization") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            # Covers "none" and HS256 signed with the public key: the alg header is never trusted.
            # Named only when it reads as an algorithm name: the header is the sender's text, and may hold anything.
            named = repr(alg) if isinstance(alg, str) and _ALGORITHM_NAME.fullmatch(alg) else "(not an algorithm name)"
            raise TokenInvalid(f"token rejected: algorithm {named} is not {ALGORITHM}")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise TokenInvalid("token rejected: the header names no kid")
        if "jku" in header or "jwk" in header or "x5u" in header:
            raise TokenInvalid("token rejected: keys are only taken from the provider's JWKS")
        return dict(header)

    @staticmethod
    def _check_audience(claims: Mapping[str, Any], expected: list[str]) -> None:
        aud = claims.get("aud")
        if isinstance(aud, str):
            present = [aud]
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            present = aud
        else:
            raise TokenInvalid("token rejected: aud is neither a string nor a list of strings")
        if not set(present) & set(expected):
            raise TokenInvalid("token rejected: the audience is not ours")

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp, iat, nbf = _numeric(claims, "exp"), _numeric(claims, "iat"), _numeric(claims, "nbf")
        if exp is None or iat is None:
            raise TokenInvalid("token rejected: exp and iat must be numbers")
        if now > exp + self._leeway:
            raise TokenInvalid("token rejected: expired")
        if iat > now + self._leeway:
            raise TokenInvalid("token rejected: issued in the future")
        if nbf is not None and nbf > now + self._leeway:
            raise TokenInvalid("token rejected: not yet valid")


AUTHORIZED_PARTY_CLAIMS = ("azp", "client_id")


def require_authorized_party(claims: Mapping[str, Any], client_id: str) -> None:
    """Raise TokenInvalid unless the verified access token was issued to `client_id`.

    Auth0 names the client a token was issued to in `azp`; RFC 9068 access tokens name it in `client_id`. At least
    one must be present, and every one present must be `client_id`: an audience check alone accepts a token any
    client of the tenant obtained for the same API.
    """
    if not isinstance(client_id, str) or not client_id:
        raise ValueError("client_id is required")
    named = [claims[name] for name in AUTHORIZED_PARTY_CLAIMS if name in claims]
    if not named:
        raise TokenInvalid("token rejected: it names no authorized party (azp or client_id)")
    if any(value != client_id for value in named):
        raise TokenInvalid("token rejected: it was issued to another client (azp or client_id)")


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid(f"token rejected: {name} is not a number")
    return float(value)


def _jose_reason(exc: JOSEError) -> str:
    # jose messages name the failed check ("Signature verification failed.", "Invalid issuer"); they never echo the
    # token, but cap them anyway.
    return (str(exc) or type(exc).__name__)[:120]
