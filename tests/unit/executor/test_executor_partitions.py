"""The executor in any partition: it takes the executions of its partition's state machine, and the session policy
of a change names the change's partition's ARNs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.checks.base import as_list
from aegis.partitions import arn_partition
from aegis_executor.credentials import session_policy
from aegis_executor.errors import InvalidRequest
from aegis_executor.execute import parse_request
from tests.support.changes import ACCOUNT, one_of_each_kind
from tests.support.partitions import PARTITION_IDS, PARTITIONS, moved_to

MISSION_ID = "m-0123456789abcdef0123"


def payload(execution_arn: str, change: dict[str, Any]) -> dict[str, Any]:
    return {
        "execution_arn": execution_arn,
        "mission_id": MISSION_ID,
        "change": change,
        "approval": {
            "decision": "approved",
            "approvals": [
                {
                    "decision": "approved",
                    "approver_sub": "auth0|approver-1",
                    "approved_at": "2026-01-01T00:00:00Z",
                    "handoffs": {change["change_id"]: "hnd-1"},
                }
            ],
        },
    }


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_a_request_of_the_partition_is_taken_and_its_session_policy_stays_in_the_partition(
    partition: str, region: str
) -> None:
    execution_arn = f"arn:{partition}:states:{region}:{ACCOUNT}:execution:aegis-mission:{MISSION_ID}"
    for static in one_of_each_kind():
        change = moved_to(static, region)
        request, parsed = parse_request(payload(execution_arn, change.model_dump(mode="json")))
        assert (request.execution_arn, parsed) == (execution_arn, change)
        resources = [
            resource
            for statement in json.loads(session_policy(parsed))["Statement"]
            for resource in as_list(statement["Resource"])
            if resource != "*"
        ]
        assert all(arn_partition(resource) == partition for resource in resources), change.kind


@pytest.mark.parametrize("prefix", ["arn:awsx", "arn:", "arn:aws-", "arn:AWS"])
def test_an_execution_arn_of_no_partition_is_refused(prefix: str) -> None:
    change = one_of_each_kind()[0].model_dump(mode="json")
    with pytest.raises(InvalidRequest, match="execution_arn"):
        parse_request(payload(f"{prefix}:states:us-east-1:{ACCOUNT}:execution:aegis-mission:{MISSION_ID}", change))
