"""The test tenant and a plain OAuth client of the emulator, shared by the Auth0 emulator tests."""

from __future__ import annotations

import json
from typing import Any

import httpx
from jose import jwt

from aegis_local.auth0 import (
    AEGIS_CHANGE_TYPE,
    CIBA_GRANT,
    CLIENT_CREDENTIALS_GRANT,
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVER_SUB,
    DEFAULT_CONNECTION,
    DEFAULT_M2M_CLIENT_ID,
    REFRESH_TOKEN_GRANT,
    TOKEN_VAULT_GRANT,
    Auth0Emulator,
    ClientConfig,
    ConnectedAccountConfig,
    ConnectionConfig,
    EmulatorConfig,
    ManualClock,
    ResourceServerConfig,
    UserConfig,
)

OTHER_API = "https://billing.example/api"
OTHER_RAR_TYPE = "urn:auth0:schemas:authorization-details:v1:payment"
BASIC_ONLY_CLIENT = "basic-only-client"
NO_CIBA_CLIENT = "no-ciba-client"
READER_M2M_CLIENT = "reader-m2m"
UNGRANTED_M2M_CLIENT = "ungranted-m2m"
SECOND_APP_CLIENT = "second-app-client"
# A first-party application with every user grant (CIBA, refresh tokens, Token Vault), the API's exchange client
# beside the project's executor application: the wire tests exercise the protocol through it. The project's own two
# applications, one grant each, are tested as such (test_auth0_tokens.py, test_auth0_discovery_and_keys.py).
PROTOCOL_CLIENT = "protocol-app-client"
GITHUB_CONNECTION = "github"
UNENROLLED_SUB = "auth0|unenrolled"
RATE_LIMITED_SUB = "auth0|rate-limited"
CONCURRENT_SUB = "auth0|concurrent"


def connected_user(sub: str) -> UserConfig:
    return UserConfig(
        sub=sub,
        email=f"{sub.split('|')[1]}@aegis.local",
        connected_accounts=(ConnectedAccountConfig(connection=DEFAULT_CONNECTION, scopes=("sts:AssumeRole",)),),
    )


def build_test_config() -> EmulatorConfig:
    base = EmulatorConfig.default()
    # Tests that change a user's state (block, revoke, disconnect) each get their own user.
    disposable = tuple(connected_user(f"auth0|disposable-{n}") for n in range(12))
    return EmulatorConfig(
        clients=(
            *base.clients,
            ClientConfig(client_id=PROTOCOL_CLIENT, grant_types=(CIBA_GRANT, REFRESH_TOKEN_GRANT, TOKEN_VAULT_GRANT)),
            ClientConfig(
                client_id=BASIC_ONLY_CLIENT,
                grant_types=(CIBA_GRANT,),
                token_endpoint_auth_method="client_secret_basic",
            ),
            ClientConfig(client_id=NO_CIBA_CLIENT, grant_types=(REFRESH_TOKEN_GRANT,)),
            ClientConfig(client_id=SECOND_APP_CLIENT, grant_types=(CIBA_GRANT, REFRESH_TOKEN_GRANT, TOKEN_VAULT_GRANT)),
            ClientConfig(
                client_id=READER_M2M_CLIENT,
                grant_types=(CLIENT_CREDENTIALS_GRANT,),
                management_scopes=("read:users",),
                api_scopes={OTHER_API: ("charge",)},
            ),
            ClientConfig(client_id=UNGRANTED_M2M_CLIENT, grant_types=(CLIENT_CREDENTIALS_GRANT,)),
        ),
        resource_servers=(
            *(
                api.model_copy(update={"token_exchange_client_ids": (*api.token_exchange_client_ids, PROTOCOL_CLIENT)})
                if api.identifier == DEFAULT_API_AUDIENCE
                else api
                for api in base.resource_servers
            ),
            ResourceServerConfig(
                identifier=OTHER_API, scopes=("charge",), authorization_details_types=(OTHER_RAR_TYPE,)
            ),
        ),
        users=(
            *base.users,
            *disposable,
            UserConfig(sub=UNENROLLED_SUB, guardian_enrolled=False),
            UserConfig(sub=RATE_LIMITED_SUB),
            UserConfig(sub=CONCURRENT_SUB),
        ),
        connections=(*base.connections, ConnectionConfig(name=GITHUB_CONNECTION, provider_audience="github")),
    )


class DisposableUsers:
    def __init__(self) -> None:
        self._next = 0

    def take(self) -> str:
        sub = f"auth0|disposable-{self._next}"
        self._next += 1
        return sub


def change_details(**overrides: Any) -> list[dict[str, Any]]:
    detail = {
        "type": AEGIS_CHANGE_TYPE,
        "change_id": "chg-0001",
        "digest": "a" * 64,
        "resource": "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123",
        "risk": "medium",
    }
    detail.update(overrides)
    return [detail]


class Wire:
    """A plain OAuth client of the emulator, built on httpx."""

    def __init__(self, emulator: Auth0Emulator, clock: ManualClock, http: httpx.Client) -> None:
        self.emulator = emulator
        self.clock = clock
        self.http = http
        self.issuer = emulator.issuer

    def client_auth(self, client_id: str, method: str = "post") -> tuple[dict[str, str], httpx.BasicAuth | None]:
        secret = self.emulator.client_secret(client_id)
        if method == "basic":
            return {}, httpx.BasicAuth(client_id, secret)
        return {"client_id": client_id, "client_secret": secret}, None

    def bc_authorize(
        self,
        sub: str = DEFAULT_APPROVER_SUB,
        *,
        client_id: str = PROTOCOL_CLIENT,
        method: str = "post",
        omit: tuple[str, ...] = (),
        **fields: Any,
    ) -> httpx.Response:
        data: dict[str, Any] = {
            "scope": "openid",
            "login_hint": json.dumps({"format": "iss_sub", "iss": self.issuer, "sub": sub}),
            "binding_message": "Approve change 1",
            "audience": DEFAULT_API_AUDIENCE,
            "authorization_details": json.dumps(change_details()),
        }
        data.update({k: v for k, v in fields.items() if v is not None})
        for name in omit:
            data.pop(name, None)
        auth_fields, auth = self.client_auth(client_id, method)
        return self.http.post("bc-authorize", data={**data, **auth_fields}, auth=auth or httpx.USE_CLIENT_DEFAULT)

    def token(self, data: dict[str, str], *, client_id: str = PROTOCOL_CLIENT, method: str = "post") -> httpx.Response:
        auth_fields, auth = self.client_auth(client_id, method)
        return self.http.post("oauth/token", data={**data, **auth_fields}, auth=auth or httpx.USE_CLIENT_DEFAULT)

    def poll(self, auth_req_id: str, *, client_id: str = PROTOCOL_CLIENT) -> httpx.Response:
        return self.token({"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}, client_id=client_id)

    def start_request(self, sub: str = DEFAULT_APPROVER_SUB, **fields: Any) -> dict[str, Any]:
        response = self.bc_authorize(sub, **fields)
        assert response.status_code == 200, response.text
        return response.json()

    def approved_tokens(
        self, sub: str = DEFAULT_APPROVER_SUB, *, client_id: str = PROTOCOL_CLIENT, **fields: Any
    ) -> dict[str, Any]:
        fields.setdefault("scope", "openid offline_access")
        started = self.start_request(sub, client_id=client_id, **fields)
        self.emulator.approve(started["auth_req_id"])
        self.clock.advance(started["interval"])
        response = self.poll(started["auth_req_id"], client_id=client_id)
        assert response.status_code == 200, response.text
        return response.json()

    def management_token(self, client_id: str = DEFAULT_M2M_CLIENT_ID, scope: str | None = None) -> str:
        data = {"grant_type": CLIENT_CREDENTIALS_GRANT, "audience": self.emulator.management_audience}
        if scope:
            data["scope"] = scope
        response = self.token(data, client_id=client_id)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def verify(self, token: str, *, audience: str, issuer: str | None = None) -> dict[str, Any]:
        """Verify as a relying party would: discovery, JWKS, the one key named by kid, RS256 only."""
        issuer = issuer or self.issuer
        discovery = self.http.get(f"{issuer}.well-known/openid-configuration").json()
        assert discovery["issuer"] == issuer
        keys = self.http.get(discovery["jwks_uri"]).json()["keys"]
        kid = jwt.get_unverified_header(token)["kid"]
        (key,) = [k for k in keys if k["kid"] == kid]
        return jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options={"require_exp": True, "require_aud": True, "require_iss": True, "verify_at_hash": False},
        )
