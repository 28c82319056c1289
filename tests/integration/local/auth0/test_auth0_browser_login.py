"""Browser login at the emulated tenant, as the console's spa-js speaks it: `/authorize` with PKCE S256, the login
page, the session behind `prompt=none`, web_message, the authorization code grant for a public client, refresh-token
rotation, CORS for the console's origin, logout, and the My Account API with the user's own token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jose import jwt

from aegis_local.auth0 import (
    AUDIT_SCOPE,
    DEFAULT_ACCOUNTS_EMAIL,
    DEFAULT_ACCOUNTS_SUB,
    DEFAULT_CLI_CLIENT_ID,
    DEFAULT_CONNECTION,
    DEFAULT_CONSOLE_CLIENT_ID,
    DEFAULT_OPERATOR_EMAIL,
    DEFAULT_OPERATOR_SUB,
    DEFAULT_OPS_API_AUDIENCE,
    DEFAULT_VIEWER_EMAIL,
    OPS_API_SCOPES,
    READ_SCOPE,
    Auth0Emulator,
    ManualClock,
)
from tests.support.auth0_wire import DisposableUsers, Wire
from tests.support.browser_login import (
    BrowserLogin,
    BrowserLoginFailed,
    PageForm,
    login_with_pkce,
    new_verifier,
    page_errors,
)

CONSOLE_ORIGIN = "http://127.0.0.1:5173"
CALLBACK = f"{CONSOLE_ORIGIN}/callback"
OTHER_ORIGIN = "http://127.0.0.1:6666"
CLI_CALLBACK = "http://127.0.0.1:7777/callback"
ALL_OPS = " ".join(OPS_API_SCOPES)


@pytest.fixture(scope="module", autouse=True)
def console_urls(emulator: Auth0Emulator) -> None:
    # The console's address is known only once it is served: the stack registers it at run time, as here.
    emulator.register_application_urls(
        DEFAULT_CONSOLE_CLIENT_ID,
        callbacks=(CALLBACK,),
        web_origins=(CONSOLE_ORIGIN,),
        logout_urls=(f"{CONSOLE_ORIGIN}/",),
    )
    # A callback for the CLI, which holds no authorization-code grant: /authorize must refuse it for that reason.
    emulator.register_application_urls(DEFAULT_CLI_CLIENT_ID, callbacks=(CLI_CALLBACK,))


@pytest.fixture
def browser(emulator: Auth0Emulator) -> Iterator[BrowserLogin]:
    with BrowserLogin(emulator.issuer) as fresh:
        yield fresh


def password(emulator: Auth0Emulator, email: str) -> str:
    return emulator.user_password(email)


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    return response.status_code, body["error"]


def issued_code(browser: BrowserLogin, emulator: Auth0Emulator, verifier: str, **params: str) -> str:
    """A code for the operator, logging in on the way if this browser has no session yet."""
    response = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=verifier, state="s-1", **params)
    if "/u/login" in response.headers.get("location", ""):
        response = browser.submit_login(response, DEFAULT_OPERATOR_EMAIL, password(emulator, DEFAULT_OPERATOR_EMAIL))
    return browser.code(response, CALLBACK, "s-1")


def redirected_error(response: httpx.Response) -> tuple[str, str | None]:
    params = BrowserLogin.redirect_params(response, CALLBACK)
    assert "code" not in params
    return params["error"], params.get("state")


# --------------------------------------------------------------------------------------------- the round trip


def test_an_operator_logs_in_with_pkce_and_gets_ops_api_and_id_tokens(emulator: Auth0Emulator, wire: Wire) -> None:
    with BrowserLogin(emulator.issuer) as browser:
        tokens = browser.login(
            DEFAULT_CONSOLE_CLIENT_ID,
            CALLBACK,
            DEFAULT_OPERATOR_EMAIL,
            password(emulator, DEFAULT_OPERATOR_EMAIL),
            audience=DEFAULT_OPS_API_AUDIENCE,
            scope=f"openid profile email offline_access {ALL_OPS}",
            nonce="n-0123456789",
        )
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0
    assert tokens["scope"].split() == ["openid", "profile", "email", "offline_access", *OPS_API_SCOPES]
    assert tokens["refresh_token"]
    # The access token is what the ops API's JWT authorizer checks: issuer, audience, scope.
    access = wire.verify(tokens["access_token"], audience=DEFAULT_OPS_API_AUDIENCE)
    assert access["iss"] == emulator.issuer
    assert access["sub"] == DEFAULT_OPERATOR_SUB
    assert access["azp"] == DEFAULT_CONSOLE_CLIENT_ID
    assert set(access["scope"].split()) >= set(OPS_API_SCOPES)
    assert access["permissions"] == list(OPS_API_SCOPES)
    # The ID token is what spa-js checks: RS256, iss, aud = its client id, the nonce it sent, exp and iat numbers.
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "RS256"
    identity = wire.verify(tokens["id_token"], audience=DEFAULT_CONSOLE_CLIENT_ID)
    assert identity["iss"] == emulator.issuer
    assert identity["nonce"] == "n-0123456789"
    assert (identity["sub"], identity["email"], identity["name"]) == (
        DEFAULT_OPERATOR_SUB,
        DEFAULT_OPERATOR_EMAIL,
        "Aegis Operator",
    )
    assert isinstance(identity["exp"], int)
    assert isinstance(identity["iat"], int)
    # /userinfo accepts it (the token's second audience).
    userinfo = wire.http.get("userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.json() == {"sub": DEFAULT_OPERATOR_SUB, "email": DEFAULT_OPERATOR_EMAIL, "name": "Aegis Operator"}
    assert {tokens["access_token"], tokens["id_token"], tokens["refresh_token"]} <= emulator.issued_secrets()


def test_a_token_carries_the_asked_scopes_the_user_holds_and_all_their_permissions(
    emulator: Auth0Emulator, wire: Wire
) -> None:
    def claims(email: str, scope: str) -> dict[str, Any]:
        tokens = login_with_pkce(
            emulator.issuer,
            DEFAULT_CONSOLE_CLIENT_ID,
            CALLBACK,
            email,
            password(emulator, email),
            DEFAULT_OPS_API_AUDIENCE,
            scope,
        )
        return wire.verify(tokens["access_token"], audience=DEFAULT_OPS_API_AUDIENCE)

    viewer = claims(DEFAULT_VIEWER_EMAIL, f"openid {ALL_OPS}")
    assert viewer["scope"].split() == ["openid", READ_SCOPE, AUDIT_SCOPE]
    assert viewer["permissions"] == [READ_SCOPE, AUDIT_SCOPE]
    operator = claims(DEFAULT_OPERATOR_EMAIL, f"openid {READ_SCOPE}")
    assert operator["scope"].split() == ["openid", READ_SCOPE]
    assert operator["permissions"] == list(OPS_API_SCOPES)
    # Without offline_access, no refresh token; an unknown scope is simply not granted.
    tokens = login_with_pkce(
        emulator.issuer,
        DEFAULT_CONSOLE_CLIENT_ID,
        CALLBACK,
        DEFAULT_VIEWER_EMAIL,
        password(emulator, DEFAULT_VIEWER_EMAIL),
        DEFAULT_OPS_API_AUDIENCE,
        "openid aegis:killswitch made:up",
    )
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "openid"


# --------------------------------------------------------------------------------------------- the login page


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_login_page_is_server_rendered_html_without_inline_script(
    emulator: Auth0Emulator, browser: BrowserLogin
) -> None:
    started = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier())
    assert started.status_code == 302
    assert "set-cookie" not in started.headers
    page = browser.http.get(started.headers["location"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert f"form-action 'self' {CONSOLE_ORIGIN}" in policy
    assert "frame-ancestors 'none'" in policy
    markup = _Markup()
    markup.feed(page.text)
    tags = markup.tags
    assert not [t for t in tags if t[0] == "script"]
    assert not [t for t in tags if "style" in t[1] or any(name.startswith("on") for name in t[1])]
    form = PageForm(page.text, str(page.url))
    assert (form.method, urlsplit(form.action).path) == ("post", "/u/login")
    assert set(form.fields) == {"state"}
    inputs = {a.get("name"): a.get("type") for tag, a in tags if tag == "input"}
    assert inputs["email"] == "email"
    assert inputs["password"] == "password"
    stylesheet = next(a["href"] for tag, a in tags if tag == "link")
    assert stylesheet is not None
    css = browser.http.get(stylesheet)
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert browser.http.get("u/assets/nope.js").status_code == 404


def test_a_wrong_password_shows_the_page_again_and_never_tells_which_emails_exist(
    emulator: Auth0Emulator, browser: BrowserLogin
) -> None:
    verifier = new_verifier()
    started = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=verifier, state="s-1")
    wrong_password = browser.submit_login(started, DEFAULT_OPERATOR_EMAIL, "not-the-password")
    unknown_email = browser.submit_login(started, "nobody@aegis.local", "not-the-password")
    for response in (wrong_password, unknown_email):
        assert response.status_code == 400
        assert page_errors(response.text) == ["Wrong email or password."]
        assert "set-cookie" not in response.headers
    assert wrong_password.text.replace(DEFAULT_OPERATOR_EMAIL, "") == unknown_email.text.replace(
        "nobody@aegis.local", ""
    )
    # The same login goes through with the right password.
    right = browser.submit_login(started, DEFAULT_OPERATOR_EMAIL, password(emulator, DEFAULT_OPERATOR_EMAIL))
    assert browser.code(right, CALLBACK, "s-1")
    # A finished (or unknown) login cannot be shown or posted again, even with the right password.
    finished = browser.http.get(started.headers["location"])
    assert finished.status_code == 400
    assert "unknown or has expired" in finished.text
    transaction = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    credentials = {"email": DEFAULT_OPERATOR_EMAIL, "password": password(emulator, DEFAULT_OPERATOR_EMAIL)}
    for state in (transaction, "unknown"):
        again = browser.http.post("u/login", data={"state": state, **credentials})
        assert again.status_code == 400
        assert "location" not in again.headers


def test_the_session_answers_at_once_and_prompt_none_needs_one(emulator: Auth0Emulator, browser: BrowserLogin) -> None:
    with BrowserLogin(emulator.issuer) as stranger:
        silent = stranger.authorize(
            DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), state="s-9", prompt="none"
        )
        assert redirected_error(silent) == ("login_required", "s-9")
    verifier = new_verifier()
    started = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=verifier, state="s-1")
    logged_in = browser.submit_login(started, DEFAULT_OPERATOR_EMAIL, password(emulator, DEFAULT_OPERATOR_EMAIL))
    cookie = logged_in.headers["set-cookie"]
    assert cookie.startswith(f"{emulator.tenant.session_cookie_name}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= attributes
    assert "secure" not in attributes  # the emulator speaks http on 127.0.0.1
    # With the session, /authorize answers with a code at once, silently or not.
    for prompt in ("none", ""):
        again = browser.authorize(
            DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), state="s-2", prompt=prompt
        )
        assert browser.code(again, CALLBACK, "s-2")
    # prompt=login asks again even with a session.
    forced = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), prompt="login")
    assert urlsplit(forced.headers["location"]).path == "/u/login"


def test_web_message_posts_the_answer_to_the_application_window(emulator: Auth0Emulator, browser: BrowserLogin) -> None:
    def message(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200
        assert response.headers["content-security-policy"].count(f"frame-ancestors {CONSOLE_ORIGIN}") == 1
        body = re.search(r'<body data-response="([^"]*)" data-target-origin="([^"]*)"', response.text)
        assert body is not None
        assert body.group(2) == CONSOLE_ORIGIN
        script = re.findall(r'<script src="([^"]+)"></script>', response.text)
        assert script == ["/u/assets/web-message.js"]
        parsed: dict[str, Any] = json.loads(body.group(1).replace("&quot;", '"'))
        return parsed

    silent = {"response_mode": "web_message", "prompt": "none", "state": "s-3"}
    without_session = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CONSOLE_ORIGIN, verifier=new_verifier(), **silent)
    # The web_message redirect_uri is the origin itself (spa-js sends window.location.origin): not registered yet.
    assert without_session.status_code == 400
    emulator.register_application_urls(DEFAULT_CONSOLE_CLIENT_ID, callbacks=(CONSOLE_ORIGIN,))
    without_session = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CONSOLE_ORIGIN, verifier=new_verifier(), **silent)
    assert message(without_session) == {
        "error": "login_required",
        "error_description": "Login required",
        "state": "s-3",
    }
    issued_code(browser, emulator, new_verifier())
    with_session = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CONSOLE_ORIGIN, verifier=new_verifier(), **silent)
    answer = message(with_session)
    assert set(answer) == {"code", "state"}
    assert answer["state"] == "s-3"
    script = browser.http.get("u/assets/web-message.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert 'type: "authorization_response"' in script.text
    assert "postMessage" in script.text
    # An origin the application did not register as a web origin gets no message.
    emulator.register_application_urls(DEFAULT_CLI_CLIENT_ID, callbacks=(OTHER_ORIGIN,))
    foreign = browser.authorize(DEFAULT_CLI_CLIENT_ID, OTHER_ORIGIN, verifier=new_verifier(), **silent)
    assert foreign.status_code == 400
    assert "not an allowed web origin" in foreign.text


# --------------------------------------------------------------------------------------------- /authorize refusals


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"client_id": ""}, "Missing required parameter: client_id"),
        ({"client_id": "nope"}, "Unknown client: nope"),
        ({"redirect_uri": ""}, "Missing required parameter: redirect_uri"),
        ({"redirect_uri": f"{CALLBACK}/elsewhere"}, "Callback URL mismatch"),
        ({"redirect_uri": "http://127.0.0.1:5173/"}, "Callback URL mismatch"),
    ],
)
def test_an_untrusted_client_or_redirect_gets_an_error_page_and_no_redirect(
    browser: BrowserLogin, overrides: dict[str, str], reason: str
) -> None:
    params: dict[str, str] = {"client_id": DEFAULT_CONSOLE_CLIENT_ID, "redirect_uri": CALLBACK, **overrides}
    client_id, redirect_uri = params.pop("client_id"), params.pop("redirect_uri")
    response = browser.authorize(client_id, redirect_uri, verifier=new_verifier(), **params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert reason in response.text


def test_a_repeated_authorize_parameter_is_refused(emulator: Auth0Emulator, browser: BrowserLogin) -> None:
    response = browser.http.get(
        f"authorize?client_id={DEFAULT_CONSOLE_CLIENT_ID}&client_id={DEFAULT_CONSOLE_CLIENT_ID}&redirect_uri={CALLBACK}"
    )
    assert response.status_code == 400
    assert "must not be repeated" in response.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"audience": "https://unknown.example/api"}, "access_denied"),
        ({"audience": "management"}, "access_denied"),
    ],
)
def test_refusals_after_the_redirect_is_trusted_go_back_to_the_application(
    emulator: Auth0Emulator, browser: BrowserLogin, overrides: dict[str, str], error: str
) -> None:
    if overrides.get("audience") == "management":
        overrides = {"audience": emulator.management_audience}
    response = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), state="s-4", **overrides)
    assert redirected_error(response) == (error, "s-4")


def test_a_client_without_the_authorization_code_grant_cannot_start_a_login(browser: BrowserLogin) -> None:
    response = browser.authorize(DEFAULT_CLI_CLIENT_ID, CLI_CALLBACK, verifier=new_verifier(), state="s-5")
    params = BrowserLogin.redirect_params(response, CLI_CALLBACK)
    assert (params["error"], params["state"]) == ("unauthorized_client", "s-5")


def test_a_blocked_user_gets_access_denied_after_the_login(
    emulator: Auth0Emulator, browser: BrowserLogin, disposable_users: DisposableUsers
) -> None:
    sub = disposable_users.take()
    email = f"{sub.split('|')[1]}@aegis.local"
    emulator.tenant.patch_user(sub, {"blocked": True})
    started = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), state="s-6")
    response = browser.submit_login(started, email, emulator.user_password(email))
    assert redirected_error(response) == ("access_denied", "s-6")


# --------------------------------------------------------------------------------------------- the code grant


def test_a_code_exchange_with_a_wrong_verifier_redirect_or_client_is_invalid_grant(
    emulator: Auth0Emulator, browser: BrowserLogin, clock: ManualClock
) -> None:
    verifier = new_verifier()
    wrong_verifier = browser.exchange(
        DEFAULT_CONSOLE_CLIENT_ID, issued_code(browser, emulator, verifier), new_verifier(), CALLBACK
    )
    assert error_of(wrong_verifier) == (400, "invalid_grant")
    # A code is presented once: after a failed attempt, not even the right verifier redeems it.
    code = issued_code(browser, emulator, verifier)
    assert error_of(browser.exchange(DEFAULT_CONSOLE_CLIENT_ID, code, "short", CALLBACK)) == (400, "invalid_grant")
    assert error_of(browser.exchange(DEFAULT_CONSOLE_CLIENT_ID, code, verifier, CALLBACK)) == (400, "invalid_grant")
    wrong_redirect = browser.exchange(
        DEFAULT_CONSOLE_CLIENT_ID, issued_code(browser, emulator, verifier), verifier, f"{CALLBACK}/x"
    )
    assert error_of(wrong_redirect) == (400, "invalid_grant")
    other_client = browser.http.post(
        "oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEFAULT_CLI_CLIENT_ID,
            "code": issued_code(browser, emulator, verifier),
            "code_verifier": verifier,
            "redirect_uri": CALLBACK,
        },
    )
    # The CLI holds no authorization-code grant; the grant check comes first.
    assert error_of(other_client) == (403, "unauthorized_client")
    expired = issued_code(browser, emulator, verifier)
    clock.advance(emulator.config.authorization_code_lifetime_seconds + 1)
    assert error_of(browser.exchange(DEFAULT_CONSOLE_CLIENT_ID, expired, verifier, CALLBACK)) == (400, "invalid_grant")
    assert error_of(browser.exchange(DEFAULT_CONSOLE_CLIENT_ID, "made-up", verifier, CALLBACK)) == (
        400,
        "invalid_grant",
    )
    missing = browser.http.post(
        "oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEFAULT_CONSOLE_CLIENT_ID,
            "code": "x",
            "redirect_uri": CALLBACK,
        },
    )
    assert error_of(missing) == (400, "invalid_request")


def test_a_reused_code_is_refused_and_revokes_what_it_yielded(emulator: Auth0Emulator, browser: BrowserLogin) -> None:
    verifier = new_verifier()
    code = issued_code(browser, emulator, verifier, scope="openid offline_access", audience=DEFAULT_OPS_API_AUDIENCE)
    first = browser.exchange(DEFAULT_CONSOLE_CLIENT_ID, code, verifier, CALLBACK)
    assert first.status_code == 200, first.text
    refresh_token = first.json()["refresh_token"]
    assert error_of(browser.exchange(DEFAULT_CONSOLE_CLIENT_ID, code, verifier, CALLBACK)) == (400, "invalid_grant")
    refreshed = browser.http.post(
        "oauth/token",
        data={"grant_type": "refresh_token", "client_id": DEFAULT_CONSOLE_CLIENT_ID, "refresh_token": refresh_token},
    )
    assert error_of(refreshed) == (403, "invalid_grant")


def test_a_public_client_sends_no_secret(emulator: Auth0Emulator, browser: BrowserLogin) -> None:
    verifier = new_verifier()
    response = browser.http.post(
        "oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEFAULT_CONSOLE_CLIENT_ID,
            "client_secret": emulator.client_secret(DEFAULT_CONSOLE_CLIENT_ID),
            "code": issued_code(browser, emulator, verifier),
            "code_verifier": verifier,
            "redirect_uri": CALLBACK,
        },
    )
    assert error_of(response) == (401, "invalid_client")
    # And a confidential client still cannot go without its secret.
    no_secret = browser.http.post(
        "oauth/token", data={"grant_type": "client_credentials", "client_id": "aegis-killswitch-operator"}
    )
    assert error_of(no_secret) == (401, "invalid_client")


def test_refresh_tokens_of_a_public_client_rotate_and_a_replay_ends_the_family(
    emulator: Auth0Emulator, browser: BrowserLogin, wire: Wire
) -> None:
    tokens = browser.login(
        DEFAULT_CONSOLE_CLIENT_ID,
        CALLBACK,
        DEFAULT_OPERATOR_EMAIL,
        password(emulator, DEFAULT_OPERATOR_EMAIL),
        audience=DEFAULT_OPS_API_AUDIENCE,
        scope=f"openid offline_access {READ_SCOPE}",
    )

    def refresh(token: str, **extra: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "client_id": DEFAULT_CONSOLE_CLIENT_ID, "refresh_token": token}
        return browser.http.post("oauth/token", data={**data, "redirect_uri": CALLBACK, **extra})

    first = refresh(tokens["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] not in (None, tokens["refresh_token"])
    access = wire.verify(rotated["access_token"], audience=DEFAULT_OPS_API_AUDIENCE)
    assert access["scope"].split() == ["openid", "offline_access", READ_SCOPE]
    assert access["permissions"] == list(OPS_API_SCOPES)
    second = refresh(rotated["refresh_token"], audience=DEFAULT_OPS_API_AUDIENCE)
    assert second.status_code == 200, second.text
    assert error_of(refresh(second.json()["refresh_token"], audience=emulator.my_account_audience)) == (
        403,
        "invalid_grant",
    )
    # Presenting a rotated token again is a replay: it fails, and so does the family's newest token.
    assert error_of(refresh(tokens["refresh_token"])) == (403, "invalid_grant")
    assert error_of(refresh(second.json()["refresh_token"])) == (403, "invalid_grant")


# --------------------------------------------------------------------------------------------- CORS


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("oauth/token", "POST", "content-type, auth0-client"),
        ("userinfo", "GET", "authorization"),
        ("me/v1/connected-accounts/accounts", "GET", "authorization"),
        ("me/v1/connected-accounts/accounts/cac_1", "DELETE", "authorization"),
    ],
)
def test_cors_preflight_answers_the_console_origin_only(wire: Wire, path: str, method: str, headers: str) -> None:
    def preflight(origin: str) -> httpx.Response:
        return wire.http.options(
            path,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )

    allowed = preflight(CONSOLE_ORIGIN)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    assert method in allowed.headers["access-control-allow-methods"]
    assert {h.strip() for h in headers.split(",")} <= {
        h.strip() for h in allowed.headers["access-control-allow-headers"].split(",")
    }
    assert "Origin" in allowed.headers["vary"]
    refused = preflight(OTHER_ORIGIN)
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def test_cors_headers_go_on_answers_to_the_console_origin_errors_included(wire: Wire) -> None:
    token = wire.http.post("oauth/token", data={"grant_type": "nope"}, headers={"Origin": CONSOLE_ORIGIN})
    assert token.status_code == 400
    assert token.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    elsewhere = wire.http.post("oauth/token", data={"grant_type": "nope"}, headers={"Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in elsewhere.headers
    # Only the endpoints a browser application calls; never the Management API.
    management = wire.http.get("api/v2/users/x", headers={"Origin": CONSOLE_ORIGIN})
    assert "access-control-allow-origin" not in management.headers


# --------------------------------------------------------------------------------------------- logout


def test_logout_ends_the_session_and_returns_only_to_a_registered_url(
    emulator: Auth0Emulator, browser: BrowserLogin
) -> None:
    issued_code(browser, emulator, new_verifier())
    session_id = browser.http.cookies[emulator.tenant.session_cookie_name]
    refused = browser.http.get("v2/logout", params={"client_id": DEFAULT_CONSOLE_CLIENT_ID, "returnTo": OTHER_ORIGIN})
    assert refused.status_code == 400
    assert "location" not in refused.headers
    logout = browser.http.get(
        "v2/logout", params={"client_id": DEFAULT_CONSOLE_CLIENT_ID, "returnTo": f"{CONSOLE_ORIGIN}/"}
    )
    assert (logout.status_code, logout.headers["location"]) == (302, f"{CONSOLE_ORIGIN}/")
    assert emulator.tenant.session_cookie_name in logout.headers["set-cookie"]
    silent = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), state="s-7", prompt="none")
    assert redirected_error(silent) == ("login_required", "s-7")
    # The tenant ended the session itself: a browser that kept the old cookie is logged out as well.
    browser.http.cookies.set(emulator.tenant.session_cookie_name, session_id)
    kept = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), state="s-7", prompt="none")
    assert redirected_error(kept) == ("login_required", "s-7")
    plain = browser.http.get("v2/logout")
    assert plain.status_code == 200
    assert "Logged out" in plain.text


def test_the_management_api_ending_sessions_logs_the_user_out_of_the_browser(
    emulator: Auth0Emulator, browser: BrowserLogin, wire: Wire
) -> None:
    issued_code(browser, emulator, new_verifier())
    token = wire.management_token()
    ended = wire.http.delete(
        f"api/v2/users/{DEFAULT_OPERATOR_SUB}/sessions", headers={"Authorization": f"Bearer {token}"}
    )
    assert ended.status_code == 202
    silent = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, verifier=new_verifier(), state="s-8", prompt="none")
    assert redirected_error(silent) == ("login_required", "s-8")


# --------------------------------------------------------------------------------------------- My Account


def test_the_accounts_user_lists_and_deletes_their_connected_account_with_their_own_token(
    emulator: Auth0Emulator, wire: Wire
) -> None:
    scope = "openid read:me:connected_accounts delete:me:connected_accounts create:me:connected_accounts"
    tokens = login_with_pkce(
        emulator.issuer,
        DEFAULT_CONSOLE_CLIENT_ID,
        CALLBACK,
        DEFAULT_ACCOUNTS_EMAIL,
        password(emulator, DEFAULT_ACCOUNTS_EMAIL),
        emulator.my_account_audience,
        scope,
    )
    # The console's client grant on the My Account API covers reading and deleting, not creating.
    assert tokens["scope"].split() == ["openid", "read:me:connected_accounts", "delete:me:connected_accounts"]
    claims = wire.verify(tokens["access_token"], audience=emulator.my_account_audience)
    assert claims["sub"] == DEFAULT_ACCOUNTS_SUB
    assert "permissions" not in claims
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "Origin": CONSOLE_ORIGIN}
    listed = wire.http.get("me/v1/connected-accounts/accounts", headers=headers)
    assert listed.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    (account,) = listed.json()["accounts"]
    assert account["connection"] == DEFAULT_CONNECTION
    assert wire.http.delete(f"me/v1/connected-accounts/accounts/{account['id']}", headers=headers).status_code == 204
    assert wire.http.get("me/v1/connected-accounts/accounts", headers=headers).json() == {"accounts": []}
    # An ops API token is not a My Account token.
    ops = login_with_pkce(
        emulator.issuer,
        DEFAULT_CONSOLE_CLIENT_ID,
        CALLBACK,
        DEFAULT_ACCOUNTS_EMAIL,
        password(emulator, DEFAULT_ACCOUNTS_EMAIL),
        DEFAULT_OPS_API_AUDIENCE,
        f"openid {READ_SCOPE}",
    )
    denied = wire.http.get(
        "me/v1/connected-accounts/accounts", headers={"Authorization": f"Bearer {ops['access_token']}"}
    )
    assert denied.status_code == 401


def test_the_helper_reports_a_refused_login(emulator: Auth0Emulator) -> None:
    with pytest.raises(BrowserLoginFailed, match="Wrong email or password"):
        login_with_pkce(emulator.issuer, DEFAULT_CONSOLE_CLIENT_ID, CALLBACK, DEFAULT_OPERATOR_EMAIL, "wrong")
    with pytest.raises(BrowserLoginFailed, match="Callback URL mismatch"):
        login_with_pkce(emulator.issuer, DEFAULT_CONSOLE_CLIENT_ID, f"{CALLBACK}/x", DEFAULT_OPERATOR_EMAIL, "wrong")


def test_redirect_params_keep_a_callback_query(emulator: Auth0Emulator) -> None:
    with_query = f"{CALLBACK}?tab=missions"
    emulator.register_application_urls(DEFAULT_CONSOLE_CLIENT_ID, callbacks=(with_query,))
    with BrowserLogin(emulator.issuer) as browser:
        started = browser.authorize(DEFAULT_CONSOLE_CLIENT_ID, with_query, verifier=new_verifier(), state="s-q")
        answer = browser.submit_login(started, DEFAULT_OPERATOR_EMAIL, password(emulator, DEFAULT_OPERATOR_EMAIL))
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["tab"] == ["missions"]
    assert query["state"] == ["s-q"]
    assert query["code"]
