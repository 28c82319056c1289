"""An OpenID Connect client core: client authentication and form posts to the provider's endpoints.

Every endpoint comes from the issuer's discovery document (aegis_jwt.discovery, OpenID Connect Discovery 1.0), so the
same code talks to Auth0 or to any other conformant provider given only its issuer URL. The client secret is read
from Secrets Manager (Powertools Parameters, cached) and only ever placed in the request that needs it.

Nothing here logs, and no error message carries a request or response body.
"""

from __future__ import annotations

import base64
import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, cast
from urllib.parse import quote_plus

import boto3
import httpx
from aws_lambda_powertools.utilities import parameters
from pydantic import SecretStr

from aegis_auth.errors import OAuthProtocolError, SecretUnavailable
from aegis_jwt.discovery import (
    DISCOVERY_MAX_AGE_SECONDS,
    ProviderMetadata,
    default_http_client,
    normalize_issuer,
    provider_metadata,
)
from aegis_jwt.discovery import clear_caches as clear_discovery_caches
from aegis_jwt.errors import ClientConfigurationError, ProviderUnavailable

Clock = Callable[[], float]
ClientAuthMethod = Literal["client_secret_post", "client_secret_basic"]
CLIENT_AUTH_METHODS: tuple[ClientAuthMethod, ...] = ("client_secret_post", "client_secret_basic")

TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"

SECRET_MAX_AGE_SECONDS = 300
_MAX_BODY_BYTES = 256 * 1024


# --- HTTP -----------------------------------------------------------------------------------------------------------
def clear_caches() -> None:
    """Forget discovery documents, the HTTP client and cached secrets (tests and the local stack call this)."""
    clear_discovery_caches()
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
        metadata = provider_metadata(
            self.configured_issuer, self.http, clock=self.clock, max_age=self._discovery_max_age
        )
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
