"""`GET /me`: who the caller is, for the console's scopes radar: the subject, the scopes the verified token grants,
every scope of the API, and the token's claims that are safe to show. Never the token itself, and only the listed
claims: a provider may add others (profile data, custom claims) that the console has no need for."""

from __future__ import annotations

from typing import Any

from aegis_jwt.callers import Caller
from aegis_ops.scopes import API_SCOPES

SHOWN_CLAIMS = ("iss", "sub", "aud", "azp", "client_id", "gty", "iat", "nbf", "exp", "scope", "scp", "permissions")


def describe_caller(caller: Caller) -> dict[str, Any]:
    return {
        "sub": caller.sub,
        "scopes": sorted(caller.scopes),
        "api_scopes": list(API_SCOPES),
        "claims": {name: caller.claims[name] for name in SHOWN_CLAIMS if name in caller.claims},
    }
