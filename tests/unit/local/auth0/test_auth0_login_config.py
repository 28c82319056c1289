"""The tenant configuration of browser and CLI login: public clients, their URLs, users' passwords and RBAC
permissions, and who the deployment names an approver."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from aegis_local.auth0 import (
    AUTHORIZATION_CODE_GRANT,
    CLIENT_CREDENTIALS_GRANT,
    DEFAULT_ACCOUNTS_EMAIL,
    DEFAULT_ACCOUNTS_SUB,
    DEFAULT_APPROVER_EMAIL,
    DEFAULT_APPROVER_SUB,
    DEFAULT_CLI_CLIENT_ID,
    DEFAULT_CONNECTION,
    DEFAULT_CONSOLE_CLIENT_ID,
    DEFAULT_OPERATOR_CLIENT_ID,
    DEFAULT_OPERATOR_EMAIL,
    DEFAULT_OPS_API_AUDIENCE,
    DEFAULT_VIEWER_EMAIL,
    DEVICE_CODE_GRANT,
    OPS_API_SCOPES,
    READ_SCOPE,
    REFRESH_TOKEN_GRANT,
    ClientConfig,
    ConnectedAccountConfig,
    ConnectionConfig,
    EmulatorConfig,
    ResourceServerConfig,
    UnknownUserEmail,
    UserConfig,
)


def test_the_default_tenant_has_the_console_the_cli_and_their_users() -> None:
    config = EmulatorConfig.default()
    console, cli = config.client(DEFAULT_CONSOLE_CLIENT_ID), config.client(DEFAULT_CLI_CLIENT_ID)
    assert (console.app_type, console.is_public) == ("spa", True)
    assert console.grant_types == (AUTHORIZATION_CODE_GRANT, REFRESH_TOKEN_GRANT)
    assert (console.callbacks, console.web_origins, console.logout_urls) == ((), (), ())
    assert set(console.my_account_scopes) == {"read:me:connected_accounts", "delete:me:connected_accounts"}
    assert (cli.app_type, cli.is_public, cli.grant_types) == ("native", True, (DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT))
    # The kill switch's tests keep their client-credentials operator, now with every ops scope.
    operator_client = config.client(DEFAULT_OPERATOR_CLIENT_ID)
    assert not operator_client.is_public
    assert operator_client.api_scopes == {DEFAULT_OPS_API_AUDIENCE: OPS_API_SCOPES}
    permissions = {u.email: u.api_permissions.get(DEFAULT_OPS_API_AUDIENCE) for u in config.users if u.email}
    assert permissions[DEFAULT_OPERATOR_EMAIL] == OPS_API_SCOPES
    assert permissions[DEFAULT_VIEWER_EMAIL] == (READ_SCOPE, "aegis:audit")
    assert permissions[DEFAULT_ACCOUNTS_EMAIL] == (READ_SCOPE,)
    assert permissions[DEFAULT_APPROVER_EMAIL] == (READ_SCOPE,)
    accounts = config.user_by_email(DEFAULT_ACCOUNTS_EMAIL)
    assert accounts.sub == DEFAULT_ACCOUNTS_SUB
    assert [a.connection for a in accounts.connected_accounts] == [DEFAULT_CONNECTION]
    # The accounts user's own Token Vault account makes them no approver: the approver stays the only one.
    assert [u.sub for u in config.approvers()] == [DEFAULT_APPROVER_SUB]


def test_console_urls_are_parameters() -> None:
    config = EmulatorConfig.default(
        console_callbacks=("http://127.0.0.1:5173/",),
        console_web_origins=("http://127.0.0.1:5173",),
        console_logout_urls=("http://127.0.0.1:5173/",),
    )
    console = config.client(DEFAULT_CONSOLE_CLIENT_ID)
    assert console.callbacks == ("http://127.0.0.1:5173/",)
    assert console.web_origins == ("http://127.0.0.1:5173",)


def test_passwords_are_generated_per_run_readable_by_email_and_hidden_from_repr() -> None:
    first, second = EmulatorConfig.default(), EmulatorConfig.default()
    password = first.user_password(DEFAULT_OPERATOR_EMAIL)
    assert len(password) >= 20
    assert password != second.user_password(DEFAULT_OPERATOR_EMAIL)
    assert first.user_password(DEFAULT_OPERATOR_EMAIL.upper()) == password
    assert password not in repr(first)
    assert password not in str(first.user_by_email(DEFAULT_OPERATOR_EMAIL))
    with pytest.raises(UnknownUserEmail):
        first.user_password("nobody@aegis.local")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"app_type": "spa"}, "only spa and native applications are public clients"),
        ({"token_endpoint_auth_method": "none"}, "only spa and native applications are public clients"),
        (
            {"app_type": "native", "token_endpoint_auth_method": "none", "grant_types": (CLIENT_CREDENTIALS_GRANT,)},
            "a public client cannot hold",
        ),
        ({"my_account_scopes": ("update:me:everything",)}, "unknown My Account scopes"),
        ({"callbacks": ("/relative",)}, "must be an absolute http(s) URL"),
        ({"callbacks": ("http://127.0.0.1:1/cb#frag",)}, "must not have a fragment"),
        ({"logout_urls": ("javascript:alert(1)",)}, "must be an absolute http(s) URL"),
        ({"web_origins": ("http://127.0.0.1:1/path",)}, "scheme://host[:port] only"),
        ({"web_origins": ("127.0.0.1:1",)}, "must be an http(s) origin"),
    ],
)
def test_a_misconfigured_client_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ClientConfig(client_id="app", **fields)


API = ResourceServerConfig(identifier="https://api.example", scopes=("read",))


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ((UserConfig(sub="auth0|a", api_permissions={"https://nope.example": ("read",)}),), "unknown API"),
        ((UserConfig(sub="auth0|a", api_permissions={API.identifier: ("write",)}),), "defines no permission"),
        (
            (UserConfig(sub="auth0|a", email="x@aegis.local"), UserConfig(sub="auth0|b", email="X@aegis.local")),
            "duplicate user email",
        ),
    ],
)
def test_users_permissions_and_emails_are_checked(users: tuple[UserConfig, ...], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EmulatorConfig(resource_servers=(API,), users=users)


def test_an_approver_is_who_has_a_token_vault_account_unless_said_otherwise() -> None:
    account = (ConnectedAccountConfig(connection="c"),)
    config = EmulatorConfig(
        connections=(ConnectionConfig(name="c", provider_audience="aud"),),
        users=(
            UserConfig(sub="auth0|with-account", connected_accounts=account),
            UserConfig(sub="auth0|own-account", connected_accounts=account, approver=False),
            UserConfig(sub="auth0|named", approver=True),
            UserConfig(sub="auth0|nobody"),
        ),
    )
    assert [u.sub for u in config.approvers()] == ["auth0|with-account", "auth0|named"]
