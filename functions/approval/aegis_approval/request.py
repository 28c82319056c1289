"""The backchannel authentication request for one approval request: a single change, or a batch.

A single request carries the change's binding message and its aegis-change authorization details (the change digest
among them); a batch carries one aegis-batch object (mission, count, counts by kind, highest risk, account, review
URL, Merkle root of its change digests) and the binding message `Approve <n> changes #<root prefix>`
(aegis_auth.rar). Either way the phone shows exactly one authorization_details object.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aegis.approvals.requests import ApprovalRequest
from aegis.catalogue import ChangeBase
from aegis_approval.settings import LoginHintFormat
from aegis_auth.rar import batch_authorization_details, batch_binding_message, change_authorization_details


def login_hint(issuer: str, approver_sub: str, hint_format: LoginHintFormat) -> str:
    """Auth0's `login_hint`: an RFC 9493 `iss_sub` subject identifier as JSON; or the approver value as-is."""
    if hint_format == "opaque":
        return approver_sub
    return json.dumps({"format": "iss_sub", "iss": issuer, "sub": approver_sub}, separators=(",", ":"))


def _is_absolute_uri(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not parts.fragment


def _form(
    binding_message: str,
    authorization_details: list[dict[str, Any]],
    *,
    issuer: str,
    approver_sub: str,
    scope: tuple[str, ...],
    audience: str,
    requested_expiry: int,
    login_hint_format: LoginHintFormat,
) -> dict[str, str]:
    # The API is named with Auth0's `audience` and, when it is an absolute URI, also with the standard `resource`
    # (RFC 8707) that other providers use; providers ignore the parameter they do not know.
    form = {
        "scope": " ".join(scope),
        "login_hint": login_hint(issuer, approver_sub, login_hint_format),
        "binding_message": binding_message,
        "authorization_details": json.dumps(authorization_details, separators=(",", ":")),
        "requested_expiry": str(requested_expiry),
        "audience": audience,
    }
    if _is_absolute_uri(audience):
        form["resource"] = audience
    return form


def backchannel_form(
    change: ChangeBase,
    *,
    issuer: str,
    approver_sub: str,
    scope: tuple[str, ...],
    audience: str,
    requested_expiry: int,
    login_hint_format: LoginHintFormat = "iss_sub",
    analyst: str | None = None,
) -> dict[str, str]:
    """The form fields of the bc-authorize request for one change (client authentication is added by the
    OidcClient). `analyst` is the analyst's note (`P<priority>: <rationale>`): one more property of the change's
    object, labelled advisory; the binding message stays the change's own, built from identifiers."""
    return _form(
        change.binding_message(),
        change_authorization_details(change, analyst=analyst),
        issuer=issuer,
        approver_sub=approver_sub,
        scope=scope,
        audience=audience,
        requested_expiry=requested_expiry,
        login_hint_format=login_hint_format,
    )


def batch_backchannel_form(
    mission_id: str,
    request: ApprovalRequest,
    *,
    issuer: str,
    approver_sub: str,
    scope: tuple[str, ...],
    audience: str,
    requested_expiry: int,
    login_hint_format: LoginHintFormat = "iss_sub",
) -> dict[str, str]:
    """The form fields of the bc-authorize request for a batch: one aegis-batch object naming its Merkle root.
    ValueError when a property would not fit (the planner cuts batches before that; nothing is ever truncated)."""
    return _form(
        batch_binding_message(request),
        batch_authorization_details(mission_id, request),
        issuer=issuer,
        approver_sub=approver_sub,
        scope=scope,
        audience=audience,
        requested_expiry=requested_expiry,
        login_hint_format=login_hint_format,
    )
