"""Rich Authorization Requests (RFC 9396) for one catalogue change or a batch of them, in the shape the Auth0 Guardian
app displays.

Guardian shows exactly one `authorization_details` object of type `urn:auth0:schemas:authorization-details:v1:<name>`
with an `instruction` and `properties`, each property an object `{display, name, display_order, value}`. The change
digest is always one of the properties: approval binds to the digest, and the executor later checks that the token
it was given carries the digest of the change it is about to apply ("approve X, execute X").

A batch (`aegis.approvals.requests`) is one aegis-batch object instead, carrying the Merkle root of its changes'
digests: the executor checks each change's inclusion proof against the root the token carries, so every execution is
still bound to exactly one approved change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aegis.approvals.requests import APPROVAL_PROPERTIES_MAX, BATCH_PROPERTY_NAMES, ApprovalRequest
from aegis.catalogue import ChangeBase
from aegis.catalogue.base import BINDING_MESSAGE_MAX, PROPERTY_VALUE_MAX
from aegis.secrets_guard import display_text
from aegis_auth.errors import ApprovalMismatch

AEGIS_CHANGE_DETAILS_TYPE = "urn:auth0:schemas:authorization-details:v1:aegis-change"
AEGIS_BATCH_DETAILS_TYPE = "urn:auth0:schemas:authorization-details:v1:aegis-batch"
DIGEST_PROPERTY = "digest"
MERKLE_ROOT_PROPERTY = "merkle_root"
COUNT_PROPERTY = "count"
INSTRUCTION_MAX_CHARS = 255
MAX_PROPERTIES = APPROVAL_PROPERTIES_MAX

# Shown top to bottom on the phone: what changes first, identifiers last.
_LABELS: dict[str, str] = {
    "resource": "Resource",
    "kind": "Change",
    "before": "Now",
    "after": "After approval",
    "risk": "Risk",
    "account": "Account",
    "region": "Region",
    "check": "CIS check",
    "change_id": "Change id",
    DIGEST_PROPERTY: "Digest (SHA-256)",
}
# The analyst's advisory note (aegis.approvals.requests.AnalystNote), when one ran: model-written, never bound.
ANALYST_PROPERTY = "analyst"
ANALYST_LABEL = "AI analyst (advisory)"
# Auth0 shows at most MAX_PROPERTIES, and a change already fills them: the note takes the change id's place. The
# change id is an internal name; the digest beside it identifies the change exactly and is what approval binds to.
_GIVES_WAY_TO_ANALYST = "change_id"


def instruction_for(change: ChangeBase) -> str:
    text = f"Approve exactly this AWS change: {change.summary()}"
    return text if len(text) <= INSTRUCTION_MAX_CHARS else text[: INSTRUCTION_MAX_CHARS - 1] + "…"


def analyst_value(text: str) -> str:
    """The analyst's note as the phone shows it: invisible characters spelled out, secret-shaped values withheld,
    and cut to PROPERTY_VALUE_MAX (advisory text, unlike the change's own properties, which are never cut)."""
    shown = display_text(text)
    return shown if len(shown) <= PROPERTY_VALUE_MAX else shown[: PROPERTY_VALUE_MAX - 1] + "…"


def change_authorization_details(
    change: ChangeBase, details_type: str = AEGIS_CHANGE_DETAILS_TYPE, *, analyst: str | None = None
) -> list[dict[str, Any]]:
    """The `authorization_details` array for approving `change`: exactly one object, always carrying its digest.
    `analyst` (`P<priority>: <rationale>`) adds the analyst's note, labelled advisory, in the change id's place; it
    is never part of the binding message, and no check of a grant reads it (only the digest binds)."""
    values = dict(change.approval_properties())
    values[DIGEST_PROPERTY] = change.digest
    order = list(_LABELS)
    if analyst:
        values.pop(_GIVES_WAY_TO_ANALYST, None)
        order[order.index(_GIVES_WAY_TO_ANALYST)] = ANALYST_PROPERTY
        values[ANALYST_PROPERTY] = analyst_value(analyst)
    labels = {**_LABELS, ANALYST_PROPERTY: ANALYST_LABEL}
    names = [name for name in order if name in values] + sorted(set(values) - set(order))
    if len(names) > MAX_PROPERTIES:
        raise ValueError(f"a change yields {len(names)} approval properties; Auth0 allows {MAX_PROPERTIES}")
    properties = {
        name: {"display": True, "name": labels.get(name, name), "display_order": position, "value": values[name]}
        for position, name in enumerate(names, start=1)
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


# --- a batch ---------------------------------------------------------------------------------------------------------
# Labels of the batch properties, shown in the order of BATCH_PROPERTY_NAMES: what the batch is first, the root last.
_BATCH_LABELS: dict[str, str] = {
    "mission": "Mission",
    COUNT_PROPERTY: "Changes",
    "kinds": "By kind",
    "risk": "Highest risk",
    "account": "Account",
    "review_url": "Review",
    MERKLE_ROOT_PROPERTY: "Merkle root (SHA-256)",
}
# Auth0's binding_message character set (the same as ChangeBase.binding_message keeps to).
_BINDING_MESSAGE = re.compile(r"[A-Za-z0-9 +\-_.,:#]+")
_ROOT = re.compile(r"[0-9a-f]{64}")


def batch_instruction(count: int) -> str:
    return f"Approve these {count} AWS changes as reviewed in the console"


def batch_authorization_details(mission_id: str, request: ApprovalRequest) -> list[dict[str, Any]]:
    """The `authorization_details` array for approving a batch request: exactly one aegis-batch object carrying its
    Merkle root. ValueError for a request that is not a batch, or a value over 255 characters: nothing is ever cut
    (the planner splits a batch whose summary would not fit, so this never happens for a planned request)."""
    values = request.batch_properties(mission_id)
    names = [name for name in BATCH_PROPERTY_NAMES if name in values]
    if len(names) > MAX_PROPERTIES or set(names) != set(values):
        raise ValueError(f"a batch yields {len(values)} approval properties; Auth0 allows {MAX_PROPERTIES}")
    instruction = batch_instruction(len(request.items))
    if len(instruction) > INSTRUCTION_MAX_CHARS or any(len(values[name]) > PROPERTY_VALUE_MAX for name in names):
        raise ValueError(f"a batch approval text exceeds {PROPERTY_VALUE_MAX} characters")
    properties = {
        name: {"display": True, "name": _BATCH_LABELS[name], "display_order": order, "value": values[name]}
        for order, name in enumerate(names, start=1)
    }
    return [{"type": AEGIS_BATCH_DETAILS_TYPE, "instruction": instruction, "properties": properties}]


def batch_binding_message(request: ApprovalRequest) -> str:
    """`Approve 12 changes #<first 6 hex of the root>`: what the phone shows next to the console's own root prefix."""
    if request.kind != "batch" or request.root is None:
        raise ValueError("only a batch request has a batch binding message")
    text = f"Approve {len(request.items)} changes #{request.root[:6]}"
    if len(text) > BINDING_MESSAGE_MAX or not _BINDING_MESSAGE.fullmatch(text):
        raise ValueError("the batch binding message does not fit Auth0's binding_message rules")
    return text


@dataclass(frozen=True)
class BatchGrant:
    """What the one aegis-batch object of a verified token grants: the Merkle root and the count it was shown."""

    root: str
    count: int


def _details_of(access_claims: Mapping[str, Any]) -> list[Any]:
    details = access_claims.get("authorization_details")
    if details is None:
        raise ApprovalMismatch("the access token states no authorization_details")
    return details if isinstance(details, list) else []


def granted_batch(access_claims: Mapping[str, Any]) -> BatchGrant:
    """The batch the verified access token's own `authorization_details` claim grants (never the token response's,
    see `require_granted_digest`). ApprovalMismatch unless it holds exactly one aegis-batch object, with a root of 64
    lowercase hex and a positive count."""
    batches = [
        detail
        for detail in _details_of(access_claims)
        if isinstance(detail, Mapping) and detail.get("type") == AEGIS_BATCH_DETAILS_TYPE
    ]
    if not batches:
        raise ApprovalMismatch("the granted authorization_details hold no aegis-batch object")
    if len(batches) > 1:
        raise ApprovalMismatch(
            f"the granted authorization_details hold {len(batches)} aegis-batch objects; exactly one is allowed"
        )
    root = _property_value(batches[0], MERKLE_ROOT_PROPERTY)
    count = _property_value(batches[0], COUNT_PROPERTY)
    if not isinstance(root, str) or not _ROOT.fullmatch(root):
        raise ApprovalMismatch("the granted aegis-batch object carries no well-formed Merkle root")
    if not isinstance(count, str) or not count.isascii() or not count.isdigit() or int(count) < 1:
        raise ApprovalMismatch("the granted aegis-batch object carries no well-formed count")
    return BatchGrant(root=root, count=int(count))


def require_granted_root(access_claims: Mapping[str, Any], root: str) -> None:
    """ApprovalMismatch unless the verified token's claim holds exactly one aegis-batch object, carrying `root`."""
    if granted_batch(access_claims).root != root:
        raise ApprovalMismatch("the granted authorization_details carry another Merkle root")


def granted_kind(access_claims: Mapping[str, Any]) -> Literal["single", "batch"]:
    """Whether the verified token grants one change (aegis-change) or a batch (aegis-batch); ApprovalMismatch when
    its claim holds neither of our types, or both (a grant must be exactly what one request asked for)."""
    types = {detail.get("type") for detail in _details_of(access_claims) if isinstance(detail, Mapping)} & {
        AEGIS_CHANGE_DETAILS_TYPE,
        AEGIS_BATCH_DETAILS_TYPE,
    }
    if types == {AEGIS_CHANGE_DETAILS_TYPE}:
        return "single"
    if types == {AEGIS_BATCH_DETAILS_TYPE}:
        return "batch"
    if not types:
        raise ApprovalMismatch(
            "the granted authorization_details hold neither an aegis-change nor an aegis-batch object"
        )
    raise ApprovalMismatch("the granted authorization_details hold both an aegis-change and an aegis-batch object")
