"""How much a mission carries through Step Functions, whose every state input and output (and execution input) is
limited to 256 KiB. The validator's answer is the largest: every change once more, inside its request, with a Merkle
proof per change of a batch. Measured with the catalogue's largest change (strengthen-password-policy) at the
template's upper bounds, and the reason MaxChangesPerMission stops at 100."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.policy import ApprovalPolicy
from aegis.approvals.requests import plan_requests
from aegis.catalogue import ChangeBase
from aegis.models import Risk
from aegis_validator.settings import MAX_CHANGES_RANGE
from tests.support.approval_plans import variable_kinds, variants

STEP_FUNCTIONS_LIMIT = 256 * 1024
MISSION_ID = "m-0123456789abcdef0123"
EXECUTION_ARN = f"arn:aws:states:us-east-1:123456789012:execution:aegis-mission:{MISSION_ID}"
SETTINGS = {"max_concurrency": 40, "approval_heartbeat_seconds": 3600, "approval_timeout_seconds": 604800}
LARGEST_KIND = "strengthen-password-policy"


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def largest_state(changes: list[ChangeBase], policy: ApprovalPolicy) -> dict[str, int]:
    """The sizes, in bytes, of the execution input and of the largest states of a mission of `changes`."""
    requests = [r.model_dump(mode="json") for r in plan_requests(MISSION_ID, changes, policy)]
    results = [
        [
            {"change_id": i["change"]["change_id"], "decision": "approved", "outcome": "applied", "reason": "x" * 40}
            for i in r["items"]
        ]
        for r in requests
    ]
    answer = {"mission_id": MISSION_ID, "verdict": "accepted", "changes": len(changes), "plan_digest": "0" * 64}
    return {
        "execution input": size({"mission_id": MISSION_ID, "changes": [c.model_dump(mode="json") for c in changes]}),
        # What the validator's task returns (Lambda wraps it), before ResultSelector keeps {mission_id, requests}.
        "validator result": size({"StatusCode": 200, "Payload": answer | {"requests": requests}}),
        # ResumeAgent's input: the requests, the settings and every result (the outer Map's ResultPath $.results).
        "before resume": size(
            {"mission_id": MISSION_ID, "requests": requests, "settings": SETTINGS, "results": results}
        ),
        "request iteration": max(
            size({"request": r, "mission_id": MISSION_ID, "execution_arn": EXECUTION_ARN, "settings": SETTINGS})
            for r in requests
        ),
    }


def test_the_largest_mission_the_template_allows_stays_well_under_the_step_functions_limit() -> None:
    most = MAX_CHANGES_RANGE.stop - 1
    assert kinds_are_measured()
    for batch_max_changes in (25, 100):  # the default and the template's upper bound
        policy = ApprovalPolicy(approver_subs=("auth0|approver",), batch_max_changes=batch_max_changes)
        sizes = largest_state(variants(LARGEST_KIND, most), policy)
        assert max(sizes.values()) < 0.6 * STEP_FUNCTIONS_LIMIT, sizes
    # Unbatched (every change its own request, two approvers each): no proofs, but a request per change.
    two = ApprovalPolicy(approver_subs=("auth0|a", "auth0|b"), batch_max_risk=None)
    sizes = largest_state(variants(LARGEST_KIND, most, risk=Risk.HIGH), two)
    assert max(sizes.values()) < 0.6 * STEP_FUNCTIONS_LIMIT, sizes


def test_two_hundred_changes_would_not_fit_which_is_why_the_bound_is_not_raised() -> None:
    policy = ApprovalPolicy(approver_subs=("auth0|approver",))
    sizes = largest_state(variants(LARGEST_KIND, 200), policy)
    assert sizes["before resume"] > STEP_FUNCTIONS_LIMIT, sizes


def kinds_are_measured() -> bool:
    """The largest kind measured is still the largest the catalogue has."""
    largest = {kind: size(variants(kind, 1)[0].model_dump(mode="json")) for kind in variable_kinds()}
    return max(largest, key=lambda kind: largest[kind]) == LARGEST_KIND


def _at_the_carry_bound(kind: str, n: int) -> ChangeBase:
    """The `n`th change of a kind that carries the statements it removes, padded to as many bytes of statements as one
    change may carry (CARRIED_STATEMENTS_MAX): the largest such a change can be."""
    base = variants(kind, 1, start=n)[0]
    fields = base.model_dump(mode="json", exclude={"change_id", "kind"})
    removed = (
        fields["before"]["policies"][0]["admin_statements"][0]
        if kind == "remove-inline-policy-admin-statements"
        else fields["before"]["statements"][0]
    )
    while True:
        try:
            padded = type(base).propose(**fields)
        except ValueError:
            removed["statement"]["Sid"] = removed["statement"]["Sid"][:-8]
            return type(base).propose(**fields)
        removed["statement"]["Sid"] = removed["statement"].get("Sid", "") + "S" * 8
        del padded


@pytest.mark.parametrize("kind", ["remove-inline-policy-admin-statements", "remove-bucket-policy-public-statements"])
def test_changes_carrying_statements_fit_the_largest_mission_too(kind: str) -> None:
    changes = [_at_the_carry_bound(kind, n) for n in range(MAX_CHANGES_RANGE.stop - 1)]
    assert len(changes[0].model_dump_json()) > len(variants(kind, 1)[0].model_dump_json()) + 250
    sizes = largest_state(changes, ApprovalPolicy(approver_subs=("auth0|approver",), batch_max_changes=100))
    assert max(sizes.values()) < 0.6 * STEP_FUNCTIONS_LIMIT, sizes
