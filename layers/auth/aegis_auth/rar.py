"""Rich Authorization Requests (RFC 9396) for one catalogue change, in the shape the Auth0 Guardian app displays.

Guardian shows exactly one `authorization_details` object of type `urn:auth0:schemas:authorization-details:v1:<name>`
with an `instruction` and `properties`, each property an object `{display, name, display_order, value}`. The change
digest is always one of the properties: approval binds to the digest, and the executor later checks that the token
it was given carries the digest of the change it is about to apply ("approve X, execute X").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aegis.catalogue import ChangeBase
from aegis_auth.errors import ApprovalMismatch

AEGIS_CHANGE_DETAILS_TYPE = "urn:auth0:schemas:authorization-details:v1:aegis-change"
DIGEST_PROPERTY = "digest"
INSTRUCTION_MAX_CHARS = 255
MAX_PROPERTIES = 10

# Shown top to bottom on the phone: what changes first, identifiers last.
_LABELS: dict[str, str] = {
    "resource": "Resource",
    "kind": "Change",
    "before": "Now",
    "after": "After approval",
    "risk": "Risk",
    "region": "Region",
    "check": "CIS check",
    "change_id": "Change id",
    DIGEST_PROPERTY: "Digest (SHA-256)",
}


def instruction_for(change: ChangeBase) -> str:
    text = f"Approve exactly this AWS change: {change.summary()}"
    return text if len(text) <= INSTRUCTION_MAX_CHARS else text[: INSTRUCTION_MAX_CHARS - 1] + "…"


def change_authorization_details(
    change: ChangeBase, details_type: str = AEGIS_CHANGE_DETAILS_TYPE
) -> list[dict[str, Any]]:
    """The `authorization_details` array for approving `change`: exactly one object, always carrying its digest."""
    values = dict(change.approval_properties())
    values[DIGEST_PROPERTY] = change.digest
    names = [name for name in _LABELS if name in values] + sorted(set(values) - set(_LABELS))
    if len(names) > MAX_PROPERTIES:
        raise ValueError(f"a change yields {len(names)} approval properties; Auth0 allows {MAX_PROPERTIES}")
    properties = {
        name: {"display": True, "name": _LABELS.get(name, name), "display_order": order, "value": values[name]}
        for order, name in enumerate(names, start=1)
    }
    return [{"type": details_type, "instruction": instruction_for(change), "properties": properties}]


def _property_value(detail: Mapping[str, Any], name: str) -> Any:
    properties = detail.get("properties")
    if not isinstance(properties, Mapping):
        return None
    value = properties.get(name)
    if isinstance(value, Mapping):
        return value.get("value")
    return value


def carried_digests(details: Any, details_type: str = AEGIS_CHANGE_DETAILS_TYPE) -> list[Any]:
    """The digest values of every object of `details_type` in an authorization_details array (None where absent)."""
    if not isinstance(details, list):
        return []
    return [
        _property_value(detail, DIGEST_PROPERTY)
        for detail in details
        if isinstance(detail, Mapping) and detail.get("type") == details_type
    ]


def require_change_digest(details: Any, digest: str, details_type: str = AEGIS_CHANGE_DETAILS_TYPE) -> None:
    """Raise ApprovalMismatch unless `details` holds exactly one object of `details_type`, and it carries `digest`.

    Exactly one, because that is what the approval asks for (`change_authorization_details`): a grant holding a second
    object of our type approves something the approver was not shown as this one change, even when both carry the
    same digest. Objects of other types are not ours to judge and are left alone."""
    digests = carried_digests(details, details_type)
    if not digests:
        raise ApprovalMismatch("the granted authorization_details hold no aegis-change object")
    if len(digests) > 1:
        raise ApprovalMismatch(
            f"the granted authorization_details hold {len(digests)} aegis-change objects; exactly one is allowed"
        )
    if digests[0] != digest:
        raise ApprovalMismatch("the granted authorization_details carry another change digest")


def require_granted_digest(
    access_claims: Mapping[str, Any],
    digest: str,
    details_type: str = AEGIS_CHANGE_DETAILS_TYPE,
) -> None:
    """Check the grant the verified access token states in its own `authorization_details` claim (RFC 9396 §9.2).

    The token response's `authorization_details` (§7) is never consulted, not even as a fallback: it is not signed,
    so whoever could write the response (or a sealed handoff) could state any grant there, while the claim is covered
    by the provider's signature and is what the token actually carries to Token Vault."""
    details = access_claims.get("authorization_details")
    if details is None:
        raise ApprovalMismatch("the access token states no authorization_details")
    require_change_digest(details, digest, details_type)
