"""The backchannel authentication request for one catalogue change."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from aegis.catalogue import ChangeBase
from aegis_approval.settings import LoginHintFormat
from aegis_auth.rar import change_authorization_details


def login_hint(issuer: str, approver_sub: str, hint_format: LoginHintFormat) -> str:
    """Auth0's `login_hint`: an RFC 9493 `iss_sub` subject identifier as JSON; or the approver value as-is."""
    if hint_format == "opaque":
        return approver_sub
    return json.dumps({"format": "iss_sub", "iss": issuer, "sub": approver_sub}, separators=(",", ":"))


def _is_absolute_uri(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not parts.fragment


def backchannel_form(
    change: ChangeBase,
    *,
    issuer: str,
    approver_sub: str,
    scope: tuple[str, ...],
    audience: str,
    requested_expiry: int,
    login_hint_format: LoginHintFormat = "iss_sub",
) -> dict[str, str]:
    """The form fields of the bc-authorize request (client authentication is added by the OidcClient).

    The API is named with Auth0's `audience` and, when it is an absolute URI, also with the standard `resource`
    (RFC 8707) that other providers use; providers ignore the parameter they do not know.
    """
    form = {
        "scope": " ".join(scope),
        "login_hint": login_hint(issuer, approver_sub, login_hint_format),
        "binding_message": change.binding_message(),
        "authorization_details": json.dumps(change_authorization_details(change), separators=(",", ":")),
        "requested_expiry": str(requested_expiry),
        "audience": audience,
    }
    if _is_absolute_uri(audience):
        form["resource"] = audience
    return form
