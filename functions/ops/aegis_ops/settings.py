"""The ops function's settings, read once from the environment the template sets (docs/CONTRACTS.md). An invalid
setting names the variable, never its value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aegis.catalogue.base import ACCOUNT_ID_PATTERN
from aegis.cis import CIS_VERSIONS, DEFAULT_CIS_VERSION, CisVersion, InvalidCisVersion, cis_version
from aegis.settings import Environment
from aegis_ops.errors import InvalidSettings

# The template's ApprovalTimeoutSeconds bounds: how long a change may wait for its approver.
APPROVAL_TIMEOUT_RANGE = range(60, 604_801)
DEFAULT_APPROVAL_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class OpsSettings:
    missions_table: str
    audit_table: str
    control_table: str
    # Callers' tokens: issued by this issuer for this audience (the ops API's, shared with the kill switch).
    auth0_issuer: str
    ops_api_audience: str
    # This deployment's account: an undo must name a change the executor applied in it.
    account_id: str
    # Whether the deployment configures an undo connection (and so an UndoRole); without one, undo is refused.
    undo_enabled: bool
    # Where `POST /scans` and `POST /changes/{id}/undo` put their events.
    event_bus_name: str = "default"
    # How far back a pending approval can have been requested: the state machine's approval timeout.
    approval_timeout_seconds: int = DEFAULT_APPROVAL_TIMEOUT_SECONDS
    # The CIS AWS Foundations version `GET /findings` groups by unless the caller asks for another (`?cis=`).
    cis_version: CisVersion = DEFAULT_CIS_VERSION

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OpsSettings:
        env = Environment(InvalidSettings, environ)
        issuer = env.required("AUTH0_ISSUER")
        if not re.fullmatch(r"^https?://[^/\s]+(/[^\s]*)?/$", issuer):
            raise env.invalid("AUTH0_ISSUER must be the issuer URL, with its trailing slash")
        account_id = env.required("ACCOUNT_ID")
        if not re.fullmatch(ACCOUNT_ID_PATTERN, account_id):
            raise env.invalid("ACCOUNT_ID must be a 12-digit account id")
        timeout = env.number("APPROVAL_TIMEOUT_SECONDS", int, DEFAULT_APPROVAL_TIMEOUT_SECONDS)
        if timeout not in APPROVAL_TIMEOUT_RANGE:
            raise env.invalid(
                f"APPROVAL_TIMEOUT_SECONDS must be {APPROVAL_TIMEOUT_RANGE.start} to {APPROVAL_TIMEOUT_RANGE.stop - 1}"
            )
        return cls(
            missions_table=env.required("MISSIONS_TABLE"),
            audit_table=env.required("AUDIT_TABLE"),
            control_table=env.required("CONTROL_TABLE"),
            auth0_issuer=issuer,
            ops_api_audience=env.required("OPS_API_AUDIENCE"),
            account_id=account_id,
            undo_enabled=env.flag("UNDO_ENABLED"),
            event_bus_name=env.optional("EVENT_BUS_NAME", "default"),
            approval_timeout_seconds=timeout,
            cis_version=_cis_version(env),
        )


def _cis_version(env: Environment) -> CisVersion:
    try:
        return cis_version(env.optional("CIS_VERSION"))
    except InvalidCisVersion:
        raise env.invalid("CIS_VERSION must be one of " + ", ".join(CIS_VERSIONS)) from None
