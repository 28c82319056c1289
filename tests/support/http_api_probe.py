"""A machine client probing the local stack's HTTP APIs through their JWT authorizers: registered at the Auth0
emulator with the scopes it may ask for, valid tokens from the emulator's token endpoint, tokens signed with the
tenant's own key so that exactly one claim is wrong, and the gateway's 401 that must name that claim.

Shared by the tests of the gateway emulation and of every route template.yaml declares."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx

from aegis_local.auth0 import CLIENT_CREDENTIALS_GRANT, ClientConfig, EmulatorConfig
from aegis_local.aws.stack import LocalStack

TIMEOUT = 30.0


def with_probe_client(
    config: EmulatorConfig, client_id: str, audience: str, scopes: tuple[str, ...], **fields: Any
) -> EmulatorConfig:
    """`config` with one more client-credentials application, granted `scopes` on `audience`."""
    probe = ClientConfig(
        client_id=client_id, grant_types=(CLIENT_CREDENTIALS_GRANT,), api_scopes={audience: scopes}, **fields
    )
    return config.model_copy(update={"clients": (*config.clients, probe)})


def probe_token(stack: LocalStack, client_id: str, audience: str, scopes: Iterable[str]) -> str:
    """An access token the running stack's emulator issues the probe client for `audience` with `scopes`."""
    emulator = stack.emulator
    answer = httpx.post(
        f"{emulator.issuer}oauth/token",
        data={
            "grant_type": CLIENT_CREDENTIALS_GRANT,
            "client_id": client_id,
            "client_secret": emulator.client_secret(client_id),
            "audience": audience,
            "scope": " ".join(scopes),
        },
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def tenant_signed_token(stack: LocalStack, client_id: str, audience: str, scope: str, /, **claims: Any) -> str:
    """A token of the probe client for `audience` with `scope`, signed with the tenant's own key, valid but for
    `claims`, which replace the good ones (positional-only parameters, so that `scope=` or `client_id=` is a claim)."""
    now = int(time.time())
    good = {
        "iss": stack.emulator.issuer,
        "sub": f"{client_id}@clients",
        "aud": audience,
        "iat": now - 5,
        "exp": now + 600,
        "scope": scope,
    }
    return str(stack.emulator.tenant.keys.sign({**good, **claims}))


def assert_unauthorized(response: httpx.Response, reason: str) -> None:
    """The gateway's 401, whose www-authenticate names why the token was refused."""
    assert response.status_code == 401, response.text
    assert response.json() == {"message": "Unauthorized"}
    assert reason in response.headers.get("www-authenticate", ""), response.headers
