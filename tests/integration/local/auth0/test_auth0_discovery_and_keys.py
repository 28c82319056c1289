from __future__ import annotations

import httpx
import pytest
from jose import jwt

from aegis_local.auth0 import (
    AEGIS_BATCH_TYPE,
    AEGIS_CHANGE_TYPE,
    AUTHORIZATION_CODE_GRANT,
    CIBA_GRANT,
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVAL_CLIENT_ID,
    DEFAULT_APPROVER_SUB,
    DEFAULT_CLI_CLIENT_ID,
    DEFAULT_CONNECTION,
    DEFAULT_CONSOLE_CLIENT_ID,
    DEFAULT_EXECUTOR_CLIENT_ID,
    DEFAULT_M2M_CLIENT_ID,
    DEFAULT_OPERATOR_CLIENT_ID,
    DEFAULT_OPS_API_AUDIENCE,
    DEFAULT_PROVIDER_AUDIENCE,
    DEFAULT_SECOND_USER_SUB,
    DEFAULT_UNDO_CONNECTION,
    DEFAULT_UNDO_PROVIDER_AUDIENCE,
    DEVICE_CODE_GRANT,
    KILLSWITCH_SCOPE,
    OPS_API_SCOPES,
    REARM_SCOPE,
    TOKEN_VAULT_GRANT,
    Auth0Emulator,
    ClientConfig,
    ConnectedAccountConfig,
    EmulatorConfig,
    EmulatorNotRunning,
    UserConfig,
)
from tests.support.auth0_wire import Wire


def test_discovery_names_the_endpoints_a_ciba_client_needs(wire: Wire) -> None:
    doc = wire.http.get(".well-known/openid-configuration").json()
    issuer = wire.issuer
    assert issuer.startswith("http://127.0.0.1:")
    assert issuer.endswith("/")
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == f"{issuer}oauth/token"
    assert doc["backchannel_authentication_endpoint"] == f"{issuer}bc-authorize"
    assert doc["revocation_endpoint"] == f"{issuer}oauth/revoke"
    assert doc["jwks_uri"] == f"{issuer}.well-known/jwks.json"
    assert {CIBA_GRANT, TOKEN_VAULT_GRANT, "client_credentials", "refresh_token"} <= set(doc["grant_types_supported"])
    assert doc["backchannel_token_delivery_modes_supported"] == ["poll"]
    # "none": the console and the CLI are public clients.
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_post", "client_secret_basic", "none"}
    assert AEGIS_CHANGE_TYPE in doc["authorization_details_types_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {AUTHORIZATION_CODE_GRANT, DEVICE_CODE_GRANT} <= set(doc["grant_types_supported"])
    # Every advertised endpoint exists.
    for endpoint in (
        "token_endpoint",
        "backchannel_authentication_endpoint",
        "revocation_endpoint",
        "device_authorization_endpoint",
    ):
        assert wire.http.post(doc[endpoint], data={}).status_code != 404
    for endpoint in ("authorization_endpoint", "end_session_endpoint"):
        assert doc[endpoint].startswith(issuer)
        assert wire.http.get(doc[endpoint]).status_code != 404


def test_jwks_publishes_rs256_public_keys_only(wire: Wire) -> None:
    keys = wire.http.get(".well-known/jwks.json").json()["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert {"n", "e", "kid", "x5c"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_rotation_publishes_old_and_new_kid_and_old_tokens_keep_verifying(wire: Wire, emulator: Auth0Emulator) -> None:
    before = wire.management_token()
    old_kid = jwt.get_unverified_header(before)["kid"]
    new_kid = emulator.rotate_keys()
    try:
        after = wire.management_token()
        assert jwt.get_unverified_header(after)["kid"] == new_kid != old_kid
        published = [k["kid"] for k in wire.http.get(".well-known/jwks.json").json()["keys"]]
        assert published == [new_kid, old_kid]
        for token in (before, after):
            assert (
                wire.verify(token, audience=emulator.management_audience)["sub"] == f"{DEFAULT_M2M_CLIENT_ID}@clients"
            )
        # The tenant itself still honours a token signed before the rotation ...
        headers = {"Authorization": f"Bearer {before}"}
        assert wire.http.get(f"api/v2/users/{DEFAULT_APPROVER_SUB}", headers=headers).status_code == 200
        # ... until the old key is retired.
        emulator.retire_key(old_kid)
        assert [k["kid"] for k in wire.http.get(".well-known/jwks.json").json()["keys"]] == [new_kid]
        assert wire.http.get(f"api/v2/users/{DEFAULT_APPROVER_SUB}", headers=headers).status_code == 401
    finally:
        assert emulator.signing_kid() == new_kid


def test_a_second_rotation_drops_the_oldest_key(wire: Wire, emulator: Auth0Emulator) -> None:
    first = emulator.signing_kid()
    second = emulator.rotate_keys()
    third = emulator.rotate_keys()
    published = [k["kid"] for k in wire.http.get(".well-known/jwks.json").json()["keys"]]
    assert published == [third, second]
    assert first not in published
    with pytest.raises(ValueError, match="current signing key"):
        emulator.retire_key(third)


def test_provider_discovery_and_jwks_are_separate_from_the_tenant(wire: Wire, emulator: Auth0Emulator) -> None:
    provider_issuer = emulator.provider_issuer(DEFAULT_CONNECTION)
    assert provider_issuer == f"{wire.issuer}provider/{DEFAULT_CONNECTION}/"
    doc = wire.http.get(f"{provider_issuer}.well-known/openid-configuration").json()
    assert doc["issuer"] == provider_issuer
    provider_kids = {k["kid"] for k in wire.http.get(doc["jwks_uri"]).json()["keys"]}
    tenant_kids = {k["kid"] for k in wire.http.get(".well-known/jwks.json").json()["keys"]}
    assert provider_kids
    assert not provider_kids & tenant_kids
    assert wire.http.get("provider/nope/.well-known/jwks.json").status_code == 404


def test_lifecycle_with_the_default_project_tenant() -> None:
    emulator = Auth0Emulator()
    with pytest.raises(EmulatorNotRunning):
        emulator.pending(DEFAULT_APPROVER_SUB)
    with emulator:
        issuer = emulator.issuer
        assert httpx.get(f"{issuer}.well-known/openid-configuration").status_code == 200
        assert emulator.endpoints()["token"] == f"{issuer}oauth/token"
        # The default tenant: the approver can get an AWS provider token, the second user cannot.
        assert emulator.pending(DEFAULT_APPROVER_SUB) == []
        assert emulator.pending(DEFAULT_SECOND_USER_SUB) == []
        config = emulator.config
        assert {c.client_id for c in config.clients} == {
            DEFAULT_APPROVAL_CLIENT_ID,
            DEFAULT_EXECUTOR_CLIENT_ID,
            DEFAULT_M2M_CLIENT_ID,
            DEFAULT_OPERATOR_CLIENT_ID,
            DEFAULT_CONSOLE_CLIENT_ID,
            DEFAULT_CLI_CLIENT_ID,
        }
        api, killswitch_api = config.resource_servers
        assert api.identifier == DEFAULT_API_AUDIENCE
        assert api.authorization_details_types == (AEGIS_CHANGE_TYPE, AEGIS_BATCH_TYPE)
        assert killswitch_api.identifier == DEFAULT_OPS_API_AUDIENCE
        assert killswitch_api.scopes == OPS_API_SCOPES
        # The operator client gets a token for the ops API carrying every scope of it.
        operator = httpx.post(
            f"{issuer}oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_OPERATOR_CLIENT_ID,
                "client_secret": emulator.client_secret(DEFAULT_OPERATOR_CLIENT_ID),
                "audience": DEFAULT_OPS_API_AUDIENCE,
            },
        )
        assert operator.status_code == 200, operator.text
        claims = jwt.get_unverified_claims(operator.json()["access_token"])
        assert claims["aud"] == DEFAULT_OPS_API_AUDIENCE
        assert tuple(claims["scope"].split()) == OPS_API_SCOPES
        assert {KILLSWITCH_SCOPE, REARM_SCOPE} <= set(claims["scope"].split())
        # Two clients of one provider: the remediation connection and the undo connection, each its own audience.
        forward, undo = config.connections
        assert (forward.name, forward.provider_audience) == (DEFAULT_CONNECTION, DEFAULT_PROVIDER_AUDIENCE)
        assert (undo.name, undo.provider_audience) == (DEFAULT_UNDO_CONNECTION, DEFAULT_UNDO_PROVIDER_AUDIENCE)
        assert emulator.provider_issuer(undo.name) == emulator.provider_issuer(forward.name)
        assert "sts.amazonaws.com" not in {forward.provider_audience, undo.provider_audience}
        # One grant each: the approval application asks, the executor application exchanges.
        assert config.client(DEFAULT_APPROVAL_CLIENT_ID).grant_types == (CIBA_GRANT,)
        assert config.client(DEFAULT_EXECUTOR_CLIENT_ID).grant_types == (TOKEN_VAULT_GRANT,)
        assert api.token_exchange_client_ids == (DEFAULT_EXECUTOR_CLIENT_ID,)
        with pytest.raises(RuntimeError, match="starts once"):
            emulator.start()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{issuer}.well-known/openid-configuration", timeout=1)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::1"])
def test_the_emulator_listens_on_ipv4_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Auth0Emulator(host=host)


def test_client_secrets_are_generated_per_run_and_hidden_from_repr() -> None:
    first, second = EmulatorConfig.default(), EmulatorConfig.default()
    secret = first.client(DEFAULT_APPROVAL_CLIENT_ID).client_secret.get_secret_value()
    assert len(secret) >= 40
    assert secret != second.client(DEFAULT_APPROVAL_CLIENT_ID).client_secret.get_secret_value()
    assert secret not in repr(first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clients": (ClientConfig(client_id="a"), ClientConfig(client_id="a"))}, "duplicate client_id"),
        (
            {"users": (UserConfig(sub="auth0|x", connected_accounts=(ConnectedAccountConfig(connection="nope"),)),)},
            "unknown connection",
        ),
        ({"clients": (ClientConfig(client_id="a", api_scopes={"https://nope": ("x",)}),)}, "unknown API"),
        ({"default_audience": "https://nope"}, "not a registered API"),
    ],
)
def test_inconsistent_configurations_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatorConfig(**kwargs)


def test_unknown_grant_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported grant types"):
        ClientConfig(client_id="a", grant_types=("password",))
