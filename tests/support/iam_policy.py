"""IAM's policy evaluation, for the subset of policy language this project writes, so tests can prove what AWS would
allow. moto enforces no trust policy, session policy or condition key, so these documents are evaluated here.

Supported: Allow and Deny (an explicit Deny wins), Action and Resource with `*`/`?` wildcards (actions matched without
regard to case, as IAM does), Principal for trust policies, and the condition operators StringEquals, StringLike,
ArnEquals, ArnLike, Null and DateGreaterThan/DateLessThan with IAM's semantics for multi-valued condition values
(any value may match), their ...IfExists forms, and ForAllValues/ForAnyValue over multi-valued context keys. An
operator or statement element outside that subset fails the test instead of being ignored.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KNOWN_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "Resource", "Condition", "Principal"})


class UnsupportedPolicy(AssertionError):
    """The document uses policy language this evaluator does not model; a test must not silently pass on it."""


@dataclass(frozen=True)
class Request:
    """One API request as IAM sees it: the action, the resource ARN and the request's condition context."""

    action: str
    resource: str = "*"
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    principal: Mapping[str, str] = field(default_factory=dict)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        return fnmatch.fnmatchcase(value.lower(), pattern.lower())
    return fnmatch.fnmatchcase(value, pattern)


def _date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _operator_holds(operator: str, expected: list[str], actual: str | list[str] | None) -> bool:
    """One operator on one condition key. A multi-valued key (a list in the context, such as dynamodb:Attributes)
    takes a set operator: ForAllValues (every value matches; vacuously true when the key is absent, as in IAM) or
    ForAnyValue (some value matches)."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier in {"ForAllValues", "ForAnyValue"}:
        values = [] if actual is None else [actual] if isinstance(actual, str) else list(actual)
        matches = [_operator_holds(base, expected, value) for value in values]
        return all(matches) if qualifier == "ForAllValues" else any(matches)
    if qualifier:
        raise UnsupportedPolicy(f"the evaluator does not model the condition qualifier {qualifier}")
    if isinstance(actual, list):
        raise UnsupportedPolicy(f"{operator} on a multi-valued key needs ForAllValues or ForAnyValue")
    if operator.endswith("IfExists"):
        return actual is None or _operator_holds(operator.removesuffix("IfExists"), expected, actual)
    if operator == "Null":
        wants_absent = [str(e).lower() for e in expected] == ["true"]
        return (actual is None) == wants_absent
    if actual is None:
        return False
    if operator in {"StringEquals", "ArnEquals"}:
        return actual in expected
    if operator in {"StringLike", "ArnLike"}:
        return any(_matches(pattern, actual) for pattern in expected)
    if operator == "DateGreaterThan":
        return any(_date(actual) > _date(e) for e in expected)
    if operator == "DateLessThan":
        return any(_date(actual) < _date(e) for e in expected)
    raise UnsupportedPolicy(f"the evaluator does not model the condition operator {operator}")


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str | list[str]]) -> bool:
    """Every operator and every key of a Condition block must hold (IAM ANDs them)."""
    return all(
        _operator_holds(operator, [str(v) for v in _as_list(expected)], context.get(key))
        for operator, pairs in condition.items()
        for key, expected in pairs.items()
    )


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"unexpected Principal {principal!r}")
    return any(request.principal.get(kind) in _as_list(value) for kind, value in principal.items())


def _statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - KNOWN_STATEMENT_KEYS
    if unknown:
        raise UnsupportedPolicy(f"the evaluator does not model {sorted(unknown)}")
    if not any(_matches(p, request.action, ignore_case=True) for p in _as_list(statement.get("Action"))):
        return False
    if "Resource" in statement and not any(_matches(p, request.resource) for p in _as_list(statement["Resource"])):
        return False
    if "Principal" in statement and not _principal_matches(statement["Principal"], request):
        return False
    return condition_holds(statement.get("Condition") or {}, request.context)


def decision(documents: Iterable[Mapping[str, Any]], request: Request) -> str:
    """ "Deny" (explicit), "Allow" or "ImplicitDeny" for `request` under all `documents` taken together."""
    allowed = False
    for document in documents:
        for statement in _as_list(document.get("Statement")):
            if not _statement_applies(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return "Deny"
            if statement.get("Effect") == "Allow":
                allowed = True
            else:
                raise UnsupportedPolicy(f"Effect {statement.get('Effect')!r}")
    return "Allow" if allowed else "ImplicitDeny"


def allows(documents: Iterable[Mapping[str, Any]], request: Request) -> bool:
    return decision(documents, request) == "Allow"


def session_allows(
    identity_documents: Iterable[Mapping[str, Any]], session_document: Mapping[str, Any], request: Request
) -> bool:
    """What a role session narrowed by a session policy may do: both the role's policies and the session policy must
    allow it, and no explicit Deny in either."""
    return allows(list(identity_documents), request) and allows([session_document], request)
