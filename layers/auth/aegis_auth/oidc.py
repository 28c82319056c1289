"""An OpenID Connect client core: discovery, client authentication and form posts to the provider's endpoints.

Every endpoint comes from the issuer's discovery document (OpenID Connect Discovery 1.0), so the same code talks to
Auth0 or to any other conformant provider given only its issuer URL. The client secret is read from Secrets Manager
(Powertools Parameters, cached) and only ever placed in the request that needs it.

Nothing here logs, and no error message carries a request or response body.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, cast
from urllib.parse import quote_plus, urlsplit

import boto3
import httpx
from aws_lambda_powertools.utilities import parameters
from pydantic import SecretStr

from aegis_auth.errors import (
    ClientConfigurationError,
    DiscoveryError,
    DiscoveryUnavailable,
    InsecureEndpoint,
    OAuthProtocolError,
    ProviderUnavailable,
    SecretUnavailable,
)

Clock = Callable[[], float]
ClientAuthMethod = Literal["client_secret_post", "client_secret_basic"]
CLIENT_AUTH_METHODS: tuple[ClientAuthMethod, ...] = ("client_secret_post", "client_secret_basic")

CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"

DISCOVERY_MAX_AGE_SECONDS = 3600
SECRET_MAX_AGE_SECONDS = 300
# Connect fast, but give the provider time to answer: a CIBA poll or a token exchange is a small request.
HTTP_TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=3.0)
_MAX_BODY_BYTES = 256 * 1024


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
    """Forget discovery documents, the HTTP client and cached secrets (tests and the local stack call this)."""
    _DISCOVERY_CACHE.clear()
    if default_http_client.cache_info().currsize:
        default_http_client().close()
    default_http_client.cache_clear()
    _secrets_provider.cache_clear()
    parameters.clear_caches()


def retry_after_seconds(value: str | None, clock: Clock = time.time) -> float | None:
    """RFC 9110 Retry-After: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock())


@dataclass(frozen=True)
class OAuthResponse:
    """A provider's answer below 500. `body` may hold tokens: it is excluded from repr and never logged."""

    status_code: int
    body: Mapping[str, Any] = field(repr=False)
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def error(self) -> str | None:
        value = self.body.get("error")
        return value if isinstance(value, str) else None

    @property
    def error_description(self) -> str:
        value = self.body.get("error_description")
        return value if isinstance(value, str) else ""

    def protocol_error(self) -> OAuthProtocolError:
        return OAuthProtocolError(self.status_code, self.error or "unexpected_response", self.error_description)

    def json_or_raise(self) -> Mapping[str, Any]:
        """The body of a success answer; an OAuthProtocolError for anything else."""
        if not self.ok:
            raise self.protocol_error()
        return self.body


# --- client authentication ------------------------------------------------------------------------------------------
@cache
def _secrets_provider() -> parameters.SecretsProvider:
    """Powertools' Secrets Manager provider, on boto3's default session.

    `parameters.get_secret` would build its provider on a boto3 session of its own, which loads the endpoint rules
    and service data a second time: about 80 ms more on a cold start, where every other client of the function comes
    from the default session and finds them loaded."""
    return parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))


def load_client_secret(secret_id: str, *, max_age: int = SECRET_MAX_AGE_SECONDS) -> SecretStr:
    """Read the client secret from Secrets Manager through Powertools Parameters (cached for `max_age` seconds).

    The secret string is either the client secret itself or a JSON object with a `client_secret` member.
    """
    try:
        raw = _secrets_provider().get(secret_id, max_age=max_age)
    except parameters.exceptions.GetParameterError:
        raise SecretUnavailable("the client secret could not be read from Secrets Manager") from None
    if not isinstance(raw, str):
        raise SecretUnavailable("the client secret is not a string secret")
    value = raw.strip()
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            raise SecretUnavailable("the client secret looks like JSON but does not parse") from None
        member = document.get("client_secret") if isinstance(document, dict) else None
        if not isinstance(member, str):
            raise SecretUnavailable("the client secret JSON has no string member client_secret")
        value = member.strip()
    if not value:
        raise SecretUnavailable("the client secret is empty")
    return SecretStr(value)


@dataclass(frozen=True)
class ClientAuthentication:
    """How the client proves itself at the token, backchannel and revocation endpoints (RFC 6749 §2.3.1)."""

    client_id: str
    method: ClientAuthMethod
    secret_source: Callable[[], SecretStr] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ClientConfigurationError("the client id is empty")
        if self.method not in CLIENT_AUTH_METHODS:
            raise ClientConfigurationError(f"client authentication method must be one of {CLIENT_AUTH_METHODS}")

    @classmethod
    def from_secret_arn(
        cls, client_id: str, secret_arn: str, method: str, *, max_age: int = SECRET_MAX_AGE_SECONDS
    ) -> ClientAuthentication:
        if method not in CLIENT_AUTH_METHODS:
            raise ClientConfigurationError(f"client authentication method must be one of {CLIENT_AUTH_METHODS}")
        return cls(client_id, cast(ClientAuthMethod, method), lambda: load_client_secret(secret_arn, max_age=max_age))

    def apply(self, form: dict[str, str], headers: dict[str, str]) -> None:
        secret = self.secret_source().get_secret_value()
        if self.method == "client_secret_basic":
            # RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined and base64-encoded.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            form.pop("client_secret", None)
        else:
            form["client_id"] = self.client_id
            form["client_secret"] = secret


# --- the client -----------------------------------------------------------------------------------------------------
class OidcClient:
    """A confidential client of one OpenID provider.

    `post_token`, `post_backchannel_authentication` and `post_revocation` send one authenticated form POST each and
    return the provider's answer. They never retry: whether a retry is safe depends on the request (a CIBA poll
    whose answer was lost may have consumed the grant), so callers decide. Transport errors and 5xx answers raise
    ProviderUnavailable; everything else is returned as an OAuthResponse.
    """

    def __init__(
        self,
        issuer: str,
        auth: ClientAuthentication,
        *,
        http: httpx.Client | None = None,
        clock: Clock = time.time,
        discovery_max_age: float = DISCOVERY_MAX_AGE_SECONDS,
    ) -> None:
        self.configured_issuer = normalize_issuer(issuer)
        self.auth = auth
        self.http = http or default_http_client()
        self.clock = clock
        self._discovery_max_age = discovery_max_age

    @property
    def metadata(self) -> ProviderMetadata:
        metadata = _DISCOVERY_CACHE.get(self.configured_issuer, self.http, self.clock, self._discovery_max_age)
        if not metadata.supports_auth_method(self.auth.method):
            raise ClientConfigurationError(
                f"the provider does not list {self.auth.method} in token_endpoint_auth_methods_supported"
            )
        return metadata

    @property
    def issuer(self) -> str:
        """The issuer exactly as the provider publishes it: the value tokens must carry in `iss`."""
        return self.metadata.issuer

    def post_token(self, form: Mapping[str, str]) -> OAuthResponse:
        return self.post_authenticated(self.metadata.token_endpoint, form, "token endpoint")

    def post_backchannel_authentication(self, form: Mapping[str, str]) -> OAuthResponse:
        return self.post_authenticated(
            self.metadata.require_backchannel_endpoint(), form, "backchannel authentication endpoint"
        )

    def post_revocation(self, form: Mapping[str, str]) -> OAuthResponse:
        return self.post_authenticated(self.metadata.require_revocation_endpoint(), form, "revocation endpoint")

    def post_authenticated(self, url: str, form: Mapping[str, str], what: str) -> OAuthResponse:
        """One form POST to `url` with client authentication applied."""
        fields = dict(form)
        headers = {"Accept": "application/json"}
        self.auth.apply(fields, headers)
        try:
            response = self.http.post(url, data=fields, headers=headers)
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"{type(exc).__name__} talking to the {what}") from None
        if response.status_code >= 500:
            raise ProviderUnavailable(f"HTTP {response.status_code} from the {what}")
        return OAuthResponse(
            status_code=response.status_code,
            body=_json_object(response),
            retry_after=retry_after_seconds(response.headers.get("Retry-After"), self.clock),
        )


def _json_object(response: httpx.Response) -> Mapping[str, Any]:
    if len(response.content) > _MAX_BODY_BYTES:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
