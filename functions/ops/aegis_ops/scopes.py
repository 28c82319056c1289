"""The ops API's scopes: one per kind of operation, defined on the Auth0 API whose identifier is `OpsApiAudience`.
The template's JWT authorizer requires them per route (`AuthorizationScopes`), and the function checks them again in
the token it verified itself."""

from __future__ import annotations

READ = "aegis:read"
AUDIT = "aegis:audit"
SCAN = "aegis:scan"
UNDO = "aegis:undo"
KILLSWITCH = "aegis:killswitch"
REARM = "aegis:rearm"

# Every scope of the API, for the console's scopes radar (`GET /me`).
API_SCOPES = (READ, AUDIT, SCAN, UNDO, KILLSWITCH, REARM)
