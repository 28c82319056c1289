"""What makes a policy statement administrator access, in one place for both IAM checks (a customer-managed
policy's default version, an entity's inline policies): an Allow whose Action includes `*` or `*:*` and whose
Resource includes `*`. Conditions are not weighed: a conditional `*` on `*` is still flagged, and removing it only
narrows. `NotAction`/`NotResource` statements are not recognised (CIS names `"Action": "*"` on `"Resource": "*"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aegis.catalogue.policy_documents import statements_of
from aegis.checks.base import as_list

# IAM matches action names case-insensitively; "*:*" is the service-qualified spelling of every action.
_EVERY_ACTION = frozenset({"*", "*:*"})


def is_admin_statement(statement: Any) -> bool:
    """An Allow of every action on every resource."""
    if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
        return False
    actions = {str(action).lower() for action in as_list(statement.get("Action", []))}
    resources = {str(resource) for resource in as_list(statement.get("Resource", []))}
    return bool(actions & _EVERY_ACTION) and "*" in resources


def admin_statement_indices(document: Mapping[str, Any]) -> list[int]:
    """Indices of the document's administrator statements (see `statements_of` for how statements are counted)."""
    return [index for index, statement in enumerate(statements_of(document)) if is_admin_statement(statement)]
