"""The device authorization grant, as the aegis-local CLI uses it: `/oauth/device/code`, the activation page (code
entry, login, confirm or deny) and the polling grant with Auth0's error table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aegis_local.auth0 import (
    DEFAULT_CLI_CLIENT_ID,
    DEFAULT_CONSOLE_CLIENT_ID,
    DEFAULT_OPERATOR_EMAIL,
    DEFAULT_OPERATOR_SUB,
    DEFAULT_OPS_API_AUDIENCE,
    DEFAULT_VIEWER_EMAIL,
    DEFAULT_VIEWER_SUB,
    DEVICE_CODE_GRANT,
    OPS_API_SCOPES,
    READ_SCOPE,
    Auth0Emulator,
    EmulatorConfig,
    ManualClock,
)
from aegis_local.auth0.errors import OAuthError
from aegis_local.auth0.tenant import Tenant
from tests.support.auth0_wire import Wire
from tests.support.browser_login import (
    BrowserLogin,
    BrowserLoginFailed,
    PageForm,
    approve_device_code,
    page_errors,
)

ALL_OPS = " ".join(OPS_API_SCOPES)


@pytest.fixture
def browser(emulator: Auth0Emulator) -> Iterator[BrowserLogin]:
    with BrowserLogin(emulator.issuer) as fresh:
        yield fresh


def start(wire: Wire, client_id: str = DEFAULT_CLI_CLIENT_ID, **fields: str) -> httpx.Response:
    data = {"client_id": client_id, "scope": f"openid offline_access {ALL_OPS}", "audience": DEFAULT_OPS_API_AUDIENCE}
    data.update(fields)
    return wire.http.post("oauth/device/code", data={k: v for k, v in data.items() if v})


def started(wire: Wire, **fields: str) -> dict[str, Any]:
    response = start(wire, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(wire: Wire, device_code: str, client_id: str = DEFAULT_CLI_CLIENT_ID) -> httpx.Response:
    return wire.http.post(
        "oauth/token", data={"grant_type": DEVICE_CODE_GRANT, "device_code": device_code, "client_id": client_id}
    )


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    return response.status_code, body["error"]


def test_a_device_code_confirmed_on_the_activation_page_yields_the_users_tokens(
    emulator: Auth0Emulator, wire: Wire, clock: ManualClock
) -> None:
    device = started(wire)
    assert set(device) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert device["verification_uri"] == f"{emulator.issuer}activate"
    assert device["verification_uri_complete"] == f"{emulator.issuer}activate?user_code={device['user_code']}"
    assert (device["expires_in"], device["interval"]) == (900, 5)
    assert len(device["user_code"]) == 9
    assert device["user_code"][4] == "-"
    assert device["device_code"] in emulator.issued_secrets()
    # The first poll may come at once; then the person has not answered yet.
    assert error_of(poll(wire, device["device_code"])) == (403, "authorization_pending")
    approve_device_code(
        emulator.issuer, device["user_code"], DEFAULT_VIEWER_EMAIL, emulator.user_password(DEFAULT_VIEWER_EMAIL)
    )
    clock.advance(device["interval"])
    response = poll(wire, device["device_code"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert tokens["token_type"] == "Bearer"
    # The viewer asked for every ops scope and holds read and audit.
    assert tokens["scope"].split() == ["openid", "offline_access", READ_SCOPE, "aegis:audit"]
    assert tokens["refresh_token"]
    access = wire.verify(tokens["access_token"], audience=DEFAULT_OPS_API_AUDIENCE)
    assert access["azp"] == DEFAULT_CLI_CLIENT_ID
    assert access["permissions"] == [READ_SCOPE, "aegis:audit"]
    identity = wire.verify(tokens["id_token"], audience=DEFAULT_CLI_CLIENT_ID)
    assert identity["sub"] == DEFAULT_VIEWER_SUB
    assert "email" not in identity  # the CLI asked for no email scope
    # Once the tokens went out, the device code is spent.
    clock.advance(device["interval"])
    assert error_of(poll(wire, device["device_code"])) == (403, "invalid_grant")
    # The CLI refreshes without a secret, and its refresh token rotates.
    refreshed = wire.http.post(
        "oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": DEFAULT_CLI_CLIENT_ID,
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]


def test_polling_faster_than_the_interval_is_slowed_down(wire: Wire, clock: ManualClock) -> None:
    device = started(wire)
    assert error_of(poll(wire, device["device_code"])) == (403, "authorization_pending")
    clock.advance(device["interval"] - 1)
    slow = poll(wire, device["device_code"])
    assert error_of(slow) == (429, "slow_down")
    # RFC 8628: the interval grows by 5 seconds for this and every later poll.
    assert slow.headers["retry-after"] == str(device["interval"] + 5)
    clock.advance(device["interval"])
    assert error_of(poll(wire, device["device_code"])) == (429, "slow_down")
    clock.advance(device["interval"] + 10)
    assert error_of(poll(wire, device["device_code"])) == (403, "authorization_pending")


def test_a_denied_device_gets_access_denied_then_invalid_grant(
    emulator: Auth0Emulator, wire: Wire, clock: ManualClock
) -> None:
    device = started(wire)
    approve_device_code(
        emulator.issuer,
        device["user_code"],
        DEFAULT_OPERATOR_EMAIL,
        emulator.user_password(DEFAULT_OPERATOR_EMAIL),
        approve=False,
    )
    assert error_of(poll(wire, device["device_code"])) == (403, "access_denied")
    clock.advance(device["interval"])
    assert error_of(poll(wire, device["device_code"])) == (403, "invalid_grant")


def test_an_expired_device_code_says_so_once_then_invalid_grant(
    emulator: Auth0Emulator, wire: Wire, clock: ManualClock
) -> None:
    device = started(wire)
    clock.advance(device["expires_in"])
    assert error_of(poll(wire, device["device_code"])) == (403, "expired_token")
    clock.advance(device["interval"])
    assert error_of(poll(wire, device["device_code"])) == (403, "invalid_grant")
    # Its user code is no longer accepted on the activation page either.
    with pytest.raises(BrowserLoginFailed, match="not valid"):
        approve_device_code(
            emulator.issuer, device["user_code"], DEFAULT_OPERATOR_EMAIL, emulator.user_password(DEFAULT_OPERATOR_EMAIL)
        )


def test_device_requests_and_polls_that_are_refused(wire: Wire) -> None:
    # Only a client holding the device grant may start one (the console holds authorization code).
    assert error_of(start(wire, client_id=DEFAULT_CONSOLE_CLIENT_ID)) == (403, "unauthorized_client")
    assert error_of(start(wire, client_id="")) == (401, "invalid_client")
    assert error_of(start(wire, client_id="nope")) == (401, "invalid_client")
    assert error_of(start(wire, audience="https://unknown.example/api")) == (403, "access_denied")
    assert error_of(start(wire, audience=wire.emulator.management_audience)) == (403, "access_denied")
    assert error_of(poll(wire, "made-up")) == (403, "invalid_grant")
    missing = wire.http.post("oauth/token", data={"grant_type": DEVICE_CODE_GRANT, "client_id": DEFAULT_CLI_CLIENT_ID})
    assert error_of(missing) == (400, "invalid_request")
    # A device code polled by another client is not theirs.
    device = started(wire)
    assert error_of(poll(wire, device["device_code"], client_id=DEFAULT_CONSOLE_CLIENT_ID)) == (
        403,
        "unauthorized_client",
    )


# --------------------------------------------------------------------------------------------- the activation page


def test_the_activation_page_asks_for_the_code_then_a_login_then_a_confirmation(
    emulator: Auth0Emulator, wire: Wire, browser: BrowserLogin, clock: ManualClock
) -> None:
    device = started(wire)
    entry = browser.http.get("activate")
    assert entry.status_code == 200
    assert "script" not in entry.text
    assert "script-src 'self'" in entry.headers["content-security-policy"]
    assert PageForm(entry.text, emulator.issuer).action.endswith("/activate")
    unknown = browser.http.get("activate", params={"user_code": "BBBB-BBBB"})
    assert unknown.status_code == 400
    assert page_errors(unknown.text) == ["That code is not valid, has expired, or was already used."]
    # Case, spaces and the dash do not matter.
    typed = device["user_code"].lower().replace("-", " ")
    login = browser.http.get("activate", params={"user_code": typed})
    form = PageForm(login.text, emulator.issuer)
    assert form.action.endswith("/activate/login")
    assert form.fields == {"user_code": device["user_code"]}
    wrong = browser.http.post(form.action, data={**form.fields, "email": DEFAULT_OPERATOR_EMAIL, "password": "nope"})
    assert wrong.status_code == 400
    assert page_errors(wrong.text) == ["Wrong email or password."]
    assert "set-cookie" not in wrong.headers
    right = browser.http.post(
        form.action,
        data={
            **form.fields,
            "email": DEFAULT_OPERATOR_EMAIL,
            "password": emulator.user_password(DEFAULT_OPERATOR_EMAIL),
        },
    )
    assert right.status_code == 200
    assert emulator.tenant.session_cookie_name in right.headers["set-cookie"]
    confirm = PageForm(right.text, emulator.issuer, "/activate/confirm")
    assert set(confirm.fields) == {"user_code", "form_token"}
    assert DEFAULT_OPS_API_AUDIENCE in right.text
    # A forged confirmation (another form token) is refused and leaves the request pending.
    forged = browser.http.post(confirm.action, data={**confirm.fields, "form_token": "forged", "action": "confirm"})
    assert forged.status_code == 403
    assert error_of(poll(wire, device["device_code"])) == (403, "authorization_pending")
    done = browser.http.post(confirm.action, data={**confirm.fields, "action": "confirm"})
    assert (done.status_code, "Device connected" in done.text) == (200, True)
    # Confirming again finds nothing pending.
    again = browser.http.post(confirm.action, data={**confirm.fields, "action": "confirm"})
    assert again.status_code == 400
    clock.advance(device["interval"])
    tokens = poll(wire, device["device_code"]).json()
    assert wire.verify(tokens["access_token"], audience=DEFAULT_OPS_API_AUDIENCE)["sub"] == DEFAULT_OPERATOR_SUB
    # With the session, the next device goes straight to the confirmation.
    second = started(wire)
    page = browser.http.get("activate", params={"user_code": second["user_code"]})
    assert PageForm(page.text, emulator.issuer).action.endswith("/activate/confirm")


def test_a_confirmation_without_a_session_is_refused(emulator: Auth0Emulator, wire: Wire) -> None:
    device = started(wire)
    with BrowserLogin(emulator.issuer) as anonymous:
        response = anonymous.http.post(
            "activate/confirm", data={"user_code": device["user_code"], "form_token": "x", "action": "confirm"}
        )
    assert response.status_code == 403
    assert error_of(poll(wire, device["device_code"])) == (403, "authorization_pending")


def test_interval_and_expiry_are_configurable(clock: ManualClock) -> None:
    config = EmulatorConfig.default().model_copy(
        update={"device_code_interval_seconds": 1, "device_code_expiry_seconds": 30}
    )
    tenant = Tenant(config, "http://127.0.0.1:1/", clock)
    cli = config.client(DEFAULT_CLI_CLIENT_ID)
    device = tenant.device_authorize(cli, {"scope": "openid"})
    assert (device["interval"], device["expires_in"]) == (1, 30)
    session = tenant.password_login(DEFAULT_OPERATOR_EMAIL, config.user_password(DEFAULT_OPERATOR_EMAIL))
    tenant.decide_device(device["user_code"], session.session_id, session.form_token, approve=True)
    tokens = tenant.poll_device_code(cli, {"device_code": device["device_code"]})
    assert tokens["scope"] == "openid"
    late = tenant.device_authorize(cli, {"scope": "openid"})
    clock.advance(30)
    with pytest.raises(OAuthError, match="expired_token"):
        tenant.poll_device_code(cli, {"device_code": late["device_code"]})
