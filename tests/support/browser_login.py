"""A person at a browser, played with httpx: log in through the Auth0 emulator's `/authorize` and login page
(authorization code with PKCE), or confirm a CLI's device code on its activation page.

`login_with_pkce` and `approve_device_code` are what other tests need (the CLI's and the console's); `BrowserLogin`
exposes each step, for the tests of the protocol itself. Pages are read the way a browser would: the form's action
and hidden fields come from the HTML, nothing is built by hand.
"""

from __future__ import annotations

import secrets
from html.parser import HTMLParser
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from aegis_local.auth0 import s256_challenge

DEFAULT_SCOPE = "openid profile email"


class BrowserLoginFailed(AssertionError):
    """The login or the activation did not go through: the tenant's page or answer says why."""


class PageForm:
    """The first form of a tenant page (or the one posting to `action_suffix`): its action, method and fields."""

    def __init__(self, page: str, base_url: str, action_suffix: str | None = None) -> None:
        parser = _FormParser()
        parser.feed(page)
        forms = [f for f in parser.forms if action_suffix is None or f["action"].endswith(action_suffix)]
        if not forms:
            raise BrowserLoginFailed(f"no form{' for ' + action_suffix if action_suffix else ''} on the page: {page}")
        form = forms[0]
        self.action = urljoin(base_url, form["action"])
        self.method = form["method"]
        self.fields: dict[str, str] = dict(form["fields"])
        self.errors = parser.errors


def page_errors(page: str) -> list[str]:
    """The error messages a tenant page shows (its role=alert paragraphs)."""
    parser = _FormParser()
    parser.feed(page)
    return parser.errors


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {"action": attributes.get("action", ""), "method": attributes.get("method", "get"), "fields": []}
            )
        elif tag == "input" and self.forms and attributes.get("type") == "hidden":
            self.forms[-1]["fields"].append((attributes["name"], attributes.get("value", "")))
        elif tag == "p" and attributes.get("role") == "alert":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.errors.append(data)


def new_verifier() -> str:
    """A PKCE code verifier (RFC 7636: 43 to 128 unreserved characters)."""
    return secrets.token_urlsafe(48)


class BrowserLogin:
    """One browser (one cookie jar) at the emulated tenant."""

    def __init__(self, issuer: str, *, timeout: float = 10.0) -> None:
        self.issuer = issuer if issuer.endswith("/") else f"{issuer}/"
        self.http = httpx.Client(base_url=self.issuer, follow_redirects=False, timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.http.close()

    # ------------------------------------------------------------------ authorization code with PKCE

    def authorize(
        self,
        client_id: str,
        redirect_uri: str,
        *,
        verifier: str,
        audience: str | None = None,
        scope: str = DEFAULT_SCOPE,
        state: str = "",
        nonce: str = "",
        **extra: str,
    ) -> httpx.Response:
        """GET /authorize as spa-js sends it; `extra` adds or overrides parameters (an empty value drops one)."""
        params = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "response_mode": "query",
            "scope": scope,
            "state": state or secrets.token_urlsafe(16),
            "nonce": nonce or secrets.token_urlsafe(16),
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if audience:
            params["audience"] = audience
        params.update(extra)
        return self.http.get("authorize", params={k: v for k, v in params.items() if v})

    def submit_login(self, authorize_response: httpx.Response, email: str, password: str) -> httpx.Response:
        """Follow /authorize to the login page and post the credentials on its form."""
        if authorize_response.status_code != 302:
            raise BrowserLoginFailed(f"/authorize answered {authorize_response.status_code}: {authorize_response.text}")
        page = self.http.get(authorize_response.headers["location"])
        if page.status_code != 200:
            raise BrowserLoginFailed(f"the login page answered {page.status_code}: {page.text}")
        return self._post_credentials(PageForm(page.text, str(page.url)), email, password)

    def _post_credentials(self, form: PageForm, email: str, password: str) -> httpx.Response:
        """Fill a tenant login form (the login page's, or the activation page's) and post it."""
        return self.http.post(form.action, data={**form.fields, "email": email, "password": password})

    @staticmethod
    def redirect_params(response: httpx.Response, redirect_uri: str) -> dict[str, str]:
        """The parameters an answer carries back to the application at `redirect_uri` (code&state or error)."""
        if response.status_code != 302:
            errors = page_errors(response.text)
            raise BrowserLoginFailed(f"no redirect ({response.status_code}): {errors or response.text}")
        location = response.headers["location"]
        if location.split("?", 1)[0] != redirect_uri.split("?", 1)[0]:
            raise BrowserLoginFailed(f"redirected to {location}, not to {redirect_uri}")
        return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}

    def code(self, response: httpx.Response, redirect_uri: str, state: str) -> str:
        params = self.redirect_params(response, redirect_uri)
        if "error" in params:
            raise BrowserLoginFailed(f"{params['error']}: {params.get('error_description')}")
        if params.get("state") != state:
            raise BrowserLoginFailed(f"state {params.get('state')!r} came back for {state!r}")
        return params["code"]

    def exchange(self, client_id: str, code: str, verifier: str, redirect_uri: str) -> httpx.Response:
        return self.http.post(
            "oauth/token",
            data={
                "grant_type": "authorization_code",
                "client_id": client_id,
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
            },
        )

    def login(
        self,
        client_id: str,
        redirect_uri: str,
        email: str,
        password: str,
        *,
        audience: str | None = None,
        scope: str = DEFAULT_SCOPE,
        nonce: str = "",
    ) -> dict[str, Any]:
        """The whole round trip; with a session already in this browser, /authorize answers at once."""
        verifier, state = new_verifier(), secrets.token_urlsafe(16)
        response = self.authorize(
            client_id, redirect_uri, verifier=verifier, audience=audience, scope=scope, state=state, nonce=nonce
        )
        location = response.headers.get("location", "")
        if response.status_code == 302 and urlsplit(location).path.endswith("/u/login"):
            response = self.submit_login(response, email, password)
        tokens = self.exchange(client_id, self.code(response, redirect_uri, state), verifier, redirect_uri)
        if tokens.status_code != 200:
            raise BrowserLoginFailed(f"the token endpoint answered {tokens.status_code}: {tokens.text}")
        body: dict[str, Any] = tokens.json()
        return body

    # ------------------------------------------------------------------ the device activation page

    def activate(self, user_code: str, email: str, password: str, *, approve: bool = True) -> httpx.Response:
        """Enter the code, log in if the page asks, then confirm (or deny). Returns the final page."""
        page = self.http.get("activate", params={"user_code": user_code})
        if page.status_code != 200:
            raise BrowserLoginFailed(f"the activation page answered {page.status_code}: {page_errors(page.text)}")
        form = PageForm(page.text, str(page.url))
        if form.action.endswith("/activate/login"):
            page = self._post_credentials(form, email, password)
            if page.status_code != 200:
                raise BrowserLoginFailed(f"the activation login answered {page.status_code}: {page_errors(page.text)}")
        form = PageForm(page.text, str(page.url), "/activate/confirm")
        done = self.http.post(form.action, data={**form.fields, "action": "confirm" if approve else "deny"})
        if done.status_code != 200:
            raise BrowserLoginFailed(f"the confirmation answered {done.status_code}: {done.text}")
        return done


def login_with_pkce(
    issuer: str,
    client_id: str,
    redirect_uri: str,
    email: str,
    password: str,
    audience: str | None = None,
    scope: str = DEFAULT_SCOPE,
) -> dict[str, Any]:
    """Log in as `email` in a fresh browser and return the token response (access_token, id_token, ...)."""
    with BrowserLogin(issuer) as browser:
        return browser.login(client_id, redirect_uri, email, password, audience=audience, scope=scope)


def approve_device_code(issuer: str, user_code: str, email: str, password: str, *, approve: bool = True) -> None:
    """Confirm (or deny) a device code on the activation page, logged in as `email` in a fresh browser."""
    with BrowserLogin(issuer) as browser:
        browser.activate(user_code, email, password, approve=approve)
