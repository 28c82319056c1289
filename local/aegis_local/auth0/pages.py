"""The tenant's own pages, rendered on the server: the login page (Universal Login's stand-in), the device
activation pages, the page that posts an answer to the application's window (response_mode web_message), and error
and logout pages.

No page carries inline script or style: everything a page loads comes from `/u/assets/`, and each response sets a
Content-Security-Policy allowing only that (`page_headers`). Every value placed in a page is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

ASSETS_PREFIX = "/u/assets/"
STYLESHEET = "emulator.css"
WEB_MESSAGE_SCRIPT = "web-message.js"

_CSS = """\
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0; display: flex; min-height: 100vh; align-items: center; justify-content: center; }
main { width: min(22rem, 100% - 2rem); padding: 1.5rem; border: 1px solid #8884; border-radius: 0.75rem; }
h1 { font-size: 1.25rem; margin: 0 0 0.25rem; }
p.note { margin: 0 0 1rem; opacity: 0.8; font-size: 0.9rem; }
label { display: block; margin: 0.75rem 0 0.25rem; font-size: 0.9rem; }
input[type=email], input[type=password], input[type=text] {
  box-sizing: border-box; width: 100%; padding: 0.6rem; font-size: 1rem; border-radius: 0.4rem; border: 1px solid #888;
}
button { margin-top: 1rem; width: 100%; padding: 0.7rem; font-size: 1rem; border-radius: 0.4rem; border: 0;
  background: #3451b2; color: #fff; cursor: pointer; }
button.secondary { background: transparent; color: inherit; border: 1px solid #888; }
.error { color: #c62828; margin: 0.75rem 0 0; }
code { font-size: 1.1rem; letter-spacing: 0.1em; }
ul.scopes { padding-left: 1.2rem; }
"""

# Posts the answer of an /authorize to the window that opened this page (a popup) or holds it (the silent iframe),
# like Auth0's web_message response mode; the data comes from the page's own data attributes.
_WEB_MESSAGE_JS = """\
(function () {
  var data = document.body.dataset;
  var response = JSON.parse(data.response);
  var target = window.opener || window.parent;
  target.postMessage({ type: "authorization_response", response: response }, data.targetOrigin);
})();
"""

ASSETS: Mapping[str, tuple[str, str]] = {
    STYLESHEET: (_CSS, "text/css; charset=utf-8"),
    WEB_MESSAGE_SCRIPT: (_WEB_MESSAGE_JS, "text/javascript; charset=utf-8"),
}


def page_headers(*, form_targets: tuple[str, ...] = (), frame_ancestors: tuple[str, ...] = ()) -> dict[str, str]:
    """Security headers of a tenant page. `form_targets` are the origins a form's post may be redirected to besides
    the tenant (Chromium applies form-action to the redirect); `frame_ancestors` who may frame the page."""
    form_action = " ".join(("'self'", *form_targets))
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'self'; style-src 'self'; form-action {form_action}; "
            f"frame-ancestors {ancestors}; base-uri 'none'"
        ),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def _document(title: str, body: str, *, body_attributes: str = "", script: str | None = None) -> str:
    script_tag = f'<script src="{ASSETS_PREFIX}{script}"></script>' if script else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{ASSETS_PREFIX}{STYLESHEET}"></head>'
        f"<body{body_attributes}><main>{body}</main>{script_tag}</body></html>\n"
    )


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in fields.items()
    )


def _error(message: str | None) -> str:
    return f'<p class="error" role="alert">{escape(message)}</p>' if message else ""


def login_page(*, action: str, hidden: Mapping[str, str], application: str, error: str | None, email: str = "") -> str:
    """Email and password, posted to `action` with the hidden fields (the login's transaction)."""
    body = (
        "<h1>Log in</h1>"
        f'<p class="note">to continue to {escape(application)} (AegisCloud local Auth0 emulator)</p>'
        f'<form method="post" action="{escape(action)}">{_hidden(hidden)}'
        '<label for="email">Email address</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" required value="{escape(email)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        f"{_error(error)}"
        '<button type="submit" name="action" value="login">Continue</button></form>'
    )
    return _document("Log in", body)


def error_page(error: str, description: str) -> str:
    body = f"<h1>Something went wrong</h1><p><code>{escape(error)}</code></p><p>{escape(description)}</p>"
    return _document("Error", body)


def web_message_page(response_json: str, target_origin: str) -> str:
    """The answer as data attributes, posted by the stylesheet-free script asset."""
    attributes = f' data-response="{escape(response_json)}" data-target-origin="{escape(target_origin)}"'
    return _document(
        "Authorization response",
        "<p>Returning to the application…</p>",
        body_attributes=attributes,
        script=WEB_MESSAGE_SCRIPT,
    )


def activate_entry_page(error: str | None = None, user_code: str = "") -> str:
    body = (
        "<h1>Activate a device</h1>"
        '<p class="note">Enter the code shown on your device.</p>'
        '<form method="get" action="/activate">'
        '<label for="user_code">Code</label>'
        f'<input id="user_code" name="user_code" type="text" autocomplete="off" required value="{escape(user_code)}">'
        f"{_error(error)}"
        '<button type="submit">Continue</button></form>'
    )
    return _document("Activate a device", body)


def activate_confirm_page(
    *, user_code: str, form_token: str, application: str, audience: str | None, scope: tuple[str, ...], user: str
) -> str:
    scopes = "".join(f"<li><code>{escape(s)}</code></li>" for s in scope) or "<li>none</li>"
    hidden = _hidden({"user_code": user_code, "form_token": form_token})
    body = (
        "<h1>Confirm the device</h1>"
        f'<p class="note">Logged in as {escape(user)}. {escape(application)} asks for access'
        f"{' to ' + escape(audience) if audience else ''} with the code <code>{escape(user_code)}</code>.</p>"
        f'<ul class="scopes">{scopes}</ul>'
        f'<form method="post" action="/activate/confirm">{hidden}'
        '<button type="submit" name="action" value="confirm">Confirm</button>'
        '<button type="submit" name="action" value="deny" class="secondary">Deny</button></form>'
    )
    return _document("Confirm the device", body)


def activate_done_page(*, approved: bool) -> str:
    if approved:
        body = "<h1>Device connected</h1><p>You can return to your device.</p>"
    else:
        body = "<h1>Access denied</h1><p>The device was not given access.</p>"
    return _document("Device activation", body)


def logged_out_page() -> str:
    return _document("Logged out", "<h1>Logged out</h1><p>You have been logged out of the tenant.</p>")
