"""Changes for approval-planning tests: many distinct, valid catalogue members of chosen kind, risk, account and check,
built from the static change of each kind (tests/support/changes.py) so they stay real members as the catalogue grows.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.models import Risk
from tests.support.changes import ACCOUNT, one_of_each_kind

OTHER_ACCOUNT = "210987654321"
# Kinds whose resource ARN is fixed by what they change, so they cannot be varied by ARN: the new trail's ARN (derived
# from its after-state), a region's configuration recorders.
_FIXED_ARN_KINDS = frozenset({"create-multi-region-trail", "enable-config-recorder"})


def static_change(kind: str) -> ChangeBase:
    for change in one_of_each_kind():
        if change.kind == kind:
            return change
    raise KeyError(kind)


def variable_kinds() -> list[str]:
    """The kinds whose changes `variant` can make many distinct ones of, in catalogue order."""
    return [change.kind for change in one_of_each_kind() if change.kind not in _FIXED_ARN_KINDS]


def variant(
    kind: str,
    n: int,
    *,
    risk: Risk = Risk.LOW,
    account_id: str = ACCOUNT,
    check_id: str | None = None,
) -> ChangeBase:
    """The `n`th distinct change of `kind`: the static change about a resource of its own (its ARN suffixed by `n`)."""
    if kind in _FIXED_ARN_KINDS:
        raise ValueError(f"{kind} changes cannot be varied by resource")
    base = static_change(kind)
    fields = base.model_dump(exclude={"change_id", "kind"})
    return type(base).propose(
        **{
            **fields,
            "resource_arn": base.resource_arn.replace(ACCOUNT, account_id) + str(n),
            "account_id": account_id,
            "risk": risk,
            "check_id": check_id or base.check_id,
        }
    )


def variants(
    kind: str,
    count: int,
    *,
    start: int = 0,
    risk: Risk = Risk.LOW,
    account_id: str = ACCOUNT,
    check_id: str | None = None,
) -> list[ChangeBase]:
    """`count` distinct changes of `kind` (`variant` `start`, `start + 1`, ...)."""
    return [variant(kind, n, risk=risk, account_id=account_id, check_id=check_id) for n in range(start, start + count)]
