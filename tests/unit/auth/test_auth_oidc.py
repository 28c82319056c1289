"""The OIDC client core: endpoints only from discovery, client authentication, the secret from Secrets Manager."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from email.utils import format_datetime

import boto3
import httpx
import pytest
from pydantic import SecretStr

from aegis_auth.errors import SecretUnavailable
from aegis_auth.oidc import ClientAuthentication, OidcClient, load_client_secret, retry_after_seconds
from aegis_jwt.discovery import ProviderMetadata, discovery_url, normalize_issuer, provider_metadata
from aegis_jwt.errors import (
    ClientConfigurationError,
    DiscoveryError,
    DiscoveryUnavailable,
    InsecureEndpoint,
    ProviderUnavailable,
)
from tests.support.provider_double import CLIENT_ID, ISSUER, ProviderDouble, oauth_error

SECRET = "s3cr3t/with+special=chars"


def fixed_secret() -> SecretStr:
    return SecretStr(SECRET)


def client_for(provider: ProviderDouble, method: str = "client_secret_post", **kwargs: object) -> OidcClient:
    auth = ClientAuthentication(CLIENT_ID, method, fixed_secret)  # type: ignore[arg-type]
    return OidcClient(provider.issuer, auth, http=provider.client(), clock=provider.clock, **kwargs)  # type: ignore[arg-type]


# --- issuer URLs ----------------------------------------------------------------------------------------------------
def test_a_bare_auth0_domain_becomes_an_https_issuer_with_trailing_slash() -> None:
    assert normalize_issuer("tenant.eu.auth0.com") == "https://tenant.eu.auth0.com/"
    assert normalize_issuer("https://idp.example/realms/aegis") == "https://idp.example/realms/aegis"


def test_plain_http_is_accepted_only_on_loopback() -> None:
    assert normalize_issuer("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/"
    assert normalize_issuer("http://localhost:9000/") == "http://localhost:9000/"
    with pytest.raises(InsecureEndpoint):
        normalize_issuer("http://idp.example.com/")
    with pytest.raises(ClientConfigurationError):
        normalize_issuer("   ")


def test_discovery_url_drops_a_terminating_slash_before_the_well_known_path() -> None:
    assert discovery_url("https://t.auth0.com/") == "https://t.auth0.com/.well-known/openid-configuration"
    assert discovery_url("https://idp/realms/a") == "https://idp/realms/a/.well-known/openid-configuration"


# --- discovery ------------------------------------------------------------------------------------------------------
def test_endpoints_come_from_the_discovery_document(provider: ProviderDouble) -> None:
    provider.discovery_overrides["token_endpoint"] = "https://idp.example.test/somewhere/else/token"
    metadata = provider_metadata(provider.issuer, provider.client())
    assert metadata.token_endpoint == "https://idp.example.test/somewhere/else/token"
    assert metadata.require_backchannel_endpoint() == "https://idp.example.test/bc-authorize"
    assert metadata.jwks_uri == "https://idp.example.test/.well-known/jwks.json"


def test_discovery_is_cached_per_issuer_until_max_age(provider: ProviderDouble) -> None:
    now = [1000.0]
    provider.clock = lambda: now[0]
    http = provider.client()
    provider_metadata(provider.issuer, http, clock=provider.clock, max_age=60)
    provider_metadata(provider.issuer, http, clock=provider.clock, max_age=60)
    assert len(provider.requests_to("/.well-known/openid-configuration")) == 1
    now[0] += 61
    provider_metadata(provider.issuer, http, clock=provider.clock, max_age=60)
    assert len(provider.requests_to("/.well-known/openid-configuration")) == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"issuer": "https://evil.example/"}, "another issuer"),
        ({"token_endpoint": None}, "token_endpoint"),
        ({"jwks_uri": None}, "jwks_uri"),
        ({"token_endpoint": "http://idp.example.test/oauth/token"}, "https"),
        ({"token_endpoint_auth_methods_supported": "client_secret_post"}, "list of strings"),
    ],
)
def test_a_bad_discovery_document_is_refused(
    provider: ProviderDouble, override: dict[str, object], message: str
) -> None:
    provider.discovery_overrides.update(override)
    with pytest.raises(DiscoveryError, match=message):
        provider_metadata(provider.issuer, provider.client())


def test_a_provider_without_ciba_is_named_as_such(provider: ProviderDouble) -> None:
    provider.discovery_overrides["backchannel_authentication_endpoint"] = None
    with pytest.raises(DiscoveryError, match="no CIBA"):
        client_for(provider).post_backchannel_authentication({"scope": "openid"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"backchannel_token_delivery_modes_supported": ["ping", "push"]}, "poll mode"),
        ({"grant_types_supported": ["authorization_code"]}, "CIBA grant"),
    ],
)
def test_a_provider_without_ciba_poll_mode_is_named_as_such(
    provider: ProviderDouble, override: dict[str, object], message: str
) -> None:
    provider.discovery_overrides.update(override)
    with pytest.raises(DiscoveryError, match=message):
        provider_metadata(provider.issuer, provider.client()).require_ciba_poll_mode()


def test_ciba_poll_mode_is_assumed_when_the_document_does_not_say(provider: ProviderDouble) -> None:
    provider.discovery_overrides.update(
        {"backchannel_token_delivery_modes_supported": None, "grant_types_supported": None}
    )
    assert provider_metadata(provider.issuer, provider.client()).require_ciba_poll_mode().endswith("/bc-authorize")


def test_the_published_issuer_wins_over_a_configured_one_differing_only_by_a_trailing_slash() -> None:
    metadata = ProviderMetadata.from_document(
        {
            "issuer": "https://t.auth0.com/",
            "token_endpoint": "https://t.auth0.com/oauth/token",
            "jwks_uri": "https://t.auth0.com/jwks",
        },
        "https://t.auth0.com",
    )
    assert metadata.issuer == "https://t.auth0.com/"


def test_unreachable_discovery_is_a_retryable_discovery_error(provider: ProviderDouble) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(DiscoveryUnavailable, match="unreachable") as caught:
        provider_metadata(ISSUER, httpx.Client(transport=httpx.MockTransport(refuse)))
    assert isinstance(caught.value, DiscoveryError)
    assert isinstance(caught.value, ProviderUnavailable)
    provider.discovery_outages = 1
    with pytest.raises(DiscoveryUnavailable, match="HTTP 503"):
        provider_metadata(provider.issuer, provider.client())
    assert provider_metadata(provider.issuer, provider.client()).issuer == provider.issuer


# --- client authentication and posts --------------------------------------------------------------------------------
def test_client_secret_post_puts_the_credentials_in_the_form(provider: ProviderDouble) -> None:
    provider.token_script.append((200, {"access_token": "x", "token_type": "Bearer"}, {}))
    response = client_for(provider).post_token({"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": "r"})
    assert response.ok
    sent = provider.requests_to("/oauth/token")[0]
    assert sent.form == {
        "grant_type": "urn:openid:params:grant-type:ciba",
        "auth_req_id": "r",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    assert "authorization" not in sent.headers


def test_client_secret_basic_form_urlencodes_both_parts_before_base64(provider: ProviderDouble) -> None:
    provider.token_script.append((200, {"access_token": "x"}, {}))
    client_for(provider, "client_secret_basic").post_token({"grant_type": "g"})
    sent = provider.requests_to("/oauth/token")[0]
    assert "client_secret" not in sent.form
    scheme, _, encoded = sent.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{CLIENT_ID}:s3cr3t%2Fwith%2Bspecial%3Dchars"


def test_an_auth_method_the_provider_does_not_list_is_a_configuration_error(provider: ProviderDouble) -> None:
    provider.discovery_overrides["token_endpoint_auth_methods_supported"] = ["private_key_jwt"]
    with pytest.raises(ClientConfigurationError, match="client_secret_post"):
        client_for(provider).post_token({"grant_type": "g"})


def test_an_unknown_auth_method_is_refused_at_construction() -> None:
    with pytest.raises(ClientConfigurationError):
        ClientAuthentication(CLIENT_ID, "private_key_jwt", fixed_secret)  # type: ignore[arg-type]


def test_5xx_and_transport_errors_raise_provider_unavailable(provider: ProviderDouble) -> None:
    provider.token_script.extend(
        [(503, "<html>busy</html>", {}), httpx.ReadTimeout("slow"), (400, {"error": "invalid_grant"}, {})]
    )
    client = client_for(provider)
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        client.post_token({"grant_type": "g"})
    with pytest.raises(ProviderUnavailable, match="ReadTimeout"):
        client.post_token({"grant_type": "g"})
    answer = client.post_token({"grant_type": "g"})
    assert (answer.ok, answer.status_code, answer.error) == (False, 400, "invalid_grant")


def test_oauth_errors_carry_retry_after_and_never_the_request(provider: ProviderDouble) -> None:
    provider.token_script.append(oauth_error(429, "slow_down", {"Retry-After": "15"}))
    answer = client_for(provider).post_token({"grant_type": "g", "auth_req_id": "secret-handle"})
    assert (answer.error, answer.retry_after) == ("slow_down", 15.0)
    assert "secret-handle" not in repr(answer)
    assert SECRET not in repr(answer)
    assert SECRET not in str(answer.protocol_error())


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert retry_after_seconds("7", lambda: now) == 7.0
    http_date = format_datetime(datetime(2030, 1, 1, 0, 0, 12, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(http_date, lambda: now) == 12.0
    assert retry_after_seconds("soon", lambda: now) is None
    assert retry_after_seconds(None) is None


def test_the_default_http_client_has_timeouts_and_no_redirects() -> None:
    from aegis_jwt.discovery import default_http_client

    http = default_http_client()
    assert http.timeout.connect
    assert http.timeout.read
    assert http.timeout.write
    assert http.timeout.pool
    assert http.follow_redirects is False


# --- the client secret ----------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("aws")
def test_the_client_secret_is_read_from_secrets_manager_plain_or_json() -> None:
    sm = boto3.client("secretsmanager")
    plain = sm.create_secret(Name="aegis/plain", SecretString="plain-secret")["ARN"]
    as_json = sm.create_secret(Name="aegis/json", SecretString=json.dumps({"client_secret": "json-secret"}))["ARN"]
    assert load_client_secret(plain).get_secret_value() == "plain-secret"
    assert load_client_secret(as_json).get_secret_value() == "json-secret"
    assert "plain-secret" not in repr(load_client_secret(plain))


@pytest.mark.usefixtures("aws")
def test_the_client_secret_is_cached_for_max_age() -> None:
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name="aegis/cached", SecretString="first")["ARN"]
    assert load_client_secret(arn, max_age=0).get_secret_value() == "first"
    sm.put_secret_value(SecretId=arn, SecretString="second")
    assert load_client_secret(arn, max_age=300).get_secret_value() == "second"  # the first one was not kept
    sm.put_secret_value(SecretId=arn, SecretString="third")
    assert load_client_secret(arn, max_age=300).get_secret_value() == "second"  # kept for 300 s


@pytest.mark.usefixtures("aws")
def test_a_missing_or_malformed_secret_is_secret_unavailable_without_content() -> None:
    sm = boto3.client("secretsmanager")
    with pytest.raises(SecretUnavailable):
        load_client_secret("arn:aws:secretsmanager:eu-west-1:123456789012:secret:absent")
    wrong = sm.create_secret(Name="aegis/wrong", SecretString=json.dumps({"password": "hunter2-value"}))["ARN"]
    with pytest.raises(SecretUnavailable) as caught:
        load_client_secret(wrong)
    assert "hunter2" not in str(caught.value)


@pytest.fixture
def provider() -> ProviderDouble:
    return ProviderDouble()
