"""OpenID Connect discovery: the provider's endpoints from its issuer URL alone (OpenID Connect Discovery 1.0).

Everything a verifier of the provider's tokens needs and nothing that authenticates to it: the issuer URL rules
(HTTPS, or plain HTTP on loopback for the local stack), the validated discovery document, cached per issuer per
process, and the one HTTP client of the process. The credential-holding OIDC client (aegis_auth.oidc) builds on it.

Nothing here logs, and no error message carries a response body.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from aegis_jwt.errors import ClientConfigurationError, DiscoveryError, DiscoveryUnavailable, InsecureEndpoint

Clock = Callable[[], float]

CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"

DISCOVERY_MAX_AGE_SECONDS = 3600
# Connect fast, but give the provider time to answer: a CIBA poll or a token exchange is a small request.
HTTP_TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=3.0)


# --- URLs -----------------------------------------------------------------------------------------------------------
def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, what: str) -> str:
    """Return `url` if it is HTTPS, or plain HTTP on the loopback interface (the local stack); else raise."""
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise InsecureEndpoint(f"{what} must be an absolute http(s) URL")
    if parts.fragment:
        raise ClientConfigurationError(f"{what} must not carry a fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InsecureEndpoint(f"{what} must use https (plain http is accepted on loopback only)")
    return url


def normalize_issuer(value: str) -> str:
    """An issuer URL from configuration: a full URL, or a bare Auth0 domain (`tenant.eu.auth0.com`)."""
    text = value.strip()
    if not text:
        raise ClientConfigurationError("the issuer is empty")
    if "://" not in text:
        text = f"https://{text}/"
    if urlsplit(text).query:
        raise ClientConfigurationError("an issuer URL has no query component")
    return require_secure_url(text, "the issuer")


def discovery_url(issuer: str) -> str:
    # OpenID Connect Discovery 1.0 §4: remove a terminating "/" before appending the well-known path.
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _same_issuer(configured: str, published: str) -> bool:
    # Discovery requires identical issuers; a single trailing "/" is forgiven because operators write Auth0 domains
    # both ways. The published value is the one tokens must then carry.
    return configured == published or configured.rstrip("/") == published.rstrip("/")


# --- discovery ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a discovery document this project uses (all endpoints already checked to be secure)."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    backchannel_authentication_endpoint: str | None = None
    revocation_endpoint: str | None = None
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    backchannel_token_delivery_modes_supported: tuple[str, ...] | None = None
    grant_types_supported: tuple[str, ...] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: Any, configured_issuer: str) -> ProviderMetadata:
        if not isinstance(document, Mapping):
            raise DiscoveryError("the discovery document is not a JSON object")
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or not _same_issuer(configured_issuer, issuer):
            raise DiscoveryError("the discovery document names another issuer than the one configured")

        def endpoint(name: str, required: bool) -> str | None:
            value = document.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                raise DiscoveryError(f"the discovery document has no usable {name}")
            try:
                return require_secure_url(value, name)
            except ClientConfigurationError as exc:
                raise DiscoveryError(str(exc)) from None

        def string_list(name: str) -> tuple[str, ...] | None:
            value = document.get(name)
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise DiscoveryError(f"the discovery document's {name} is not a list of strings")
            return tuple(value)

        return cls(
            issuer=issuer,
            token_endpoint=cast(str, endpoint("token_endpoint", required=True)),
            jwks_uri=cast(str, endpoint("jwks_uri", required=True)),
            backchannel_authentication_endpoint=endpoint("backchannel_authentication_endpoint", required=False),
            revocation_endpoint=endpoint("revocation_endpoint", required=False),
            token_endpoint_auth_methods_supported=string_list("token_endpoint_auth_methods_supported"),
            backchannel_token_delivery_modes_supported=string_list("backchannel_token_delivery_modes_supported"),
            grant_types_supported=string_list("grant_types_supported"),
            raw=dict(document),
        )

    def require_backchannel_endpoint(self) -> str:
        if self.backchannel_authentication_endpoint is None:
            raise DiscoveryError("the provider publishes no backchannel_authentication_endpoint (no CIBA)")
        return self.backchannel_authentication_endpoint

    def require_ciba_poll_mode(self) -> str:
        """The backchannel endpoint, after checking what the document says about CIBA poll mode (absent lists are
        not held against the provider: both fields are optional)."""
        endpoint = self.require_backchannel_endpoint()
        modes = self.backchannel_token_delivery_modes_supported
        if modes is not None and "poll" not in modes:
            raise DiscoveryError("the provider does not offer CIBA poll mode")
        if self.grant_types_supported is not None and CIBA_GRANT_TYPE not in self.grant_types_supported:
            raise DiscoveryError("the provider does not list the CIBA grant type")
        return endpoint

    def require_revocation_endpoint(self) -> str:
        if self.revocation_endpoint is None:
            raise DiscoveryError("the provider publishes no revocation_endpoint")
        return self.revocation_endpoint

    def supports_auth_method(self, method: str) -> bool:
        # Absent means the default of OpenID Connect Discovery: client_secret_basic only.
        supported = self.token_endpoint_auth_methods_supported or ("client_secret_basic",)
        return method in supported


def fetch_provider_metadata(issuer: str, http: httpx.Client) -> ProviderMetadata:
    """GET the discovery document of `issuer` (already normalized) and validate it."""
    try:
        response = http.get(discovery_url(issuer), headers={"Accept": "application/json"})
    except httpx.TransportError as exc:
        raise DiscoveryUnavailable(f"discovery document unreachable ({type(exc).__name__})") from None
    if response.status_code >= 500:
        raise DiscoveryUnavailable(f"discovery document answered HTTP {response.status_code}")
    if response.status_code != 200:
        raise DiscoveryError(f"discovery document answered HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise DiscoveryError("the discovery document is not JSON") from None
    return ProviderMetadata.from_document(document, issuer)


class _DiscoveryCache:
    """Discovery documents per issuer, per process (so per Lambda container), for `max_age` seconds."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[ProviderMetadata, float]] = {}
        self._lock = threading.Lock()

    def get(
        self, issuer: str, http: httpx.Client, clock: Clock, max_age: float, force: bool = False
    ) -> ProviderMetadata:
        with self._lock:
            entry = self._entries.get(issuer)
            if entry is not None and not force and clock() - entry[1] < max_age:
                return entry[0]
        metadata = fetch_provider_metadata(issuer, http)
        with self._lock:
            self._entries[issuer] = (metadata, clock())
        return metadata

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_DISCOVERY_CACHE = _DiscoveryCache()


def provider_metadata(
    issuer: str,
    http: httpx.Client | None = None,
    *,
    clock: Clock = time.time,
    max_age: float = DISCOVERY_MAX_AGE_SECONDS,
    force: bool = False,
) -> ProviderMetadata:
    """The (cached) discovery metadata of `issuer`, which may be given as a URL or a bare Auth0 domain."""
    return _DISCOVERY_CACHE.get(normalize_issuer(issuer), http or default_http_client(), clock, max_age, force)


# --- HTTP -----------------------------------------------------------------------------------------------------------
@cache
def default_http_client() -> httpx.Client:
    """One pooled client per process: timeouts on every phase, no redirects (a token request is never redirected)."""
    return httpx.Client(
        timeout=HTTP_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": "AegisCloud/0.1"},
    )


def clear_caches() -> None:
    """Forget discovery documents and the HTTP client (tests and the local stack call this)."""
    _DISCOVERY_CACHE.clear()
    if default_http_client.cache_info().currsize:
        default_http_client().close()
    default_http_client.cache_clear()
