"""The scopes of the kill switch's HTTP routes: one to halt, another to re-arm, so that a token allowed to stop
everything need not be allowed to start it again. Both are scopes of the ops API's audience (OpsApiAudience)."""

from __future__ import annotations

KILL_SCOPE = "aegis:killswitch"
REARM_SCOPE = "aegis:rearm"
