"""An audit append whose `seq` is already taken (a conditional-check failure: nothing was written) is written again
under a fresh `seq`, so the record is not lost; nothing is ever overwritten, and other errors are not retried."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis.audit import APPEND_ATTEMPTS, AuditLog, read_trail
from tests.support.stack import create_declared_tables


@pytest.fixture
def audit(aws: boto3.Session) -> Any:
    return create_declared_tables(aws.resource("dynamodb"), {"audit": "AuditTable"})["audit"]


def refuse_puts(audit: Any, code: str, times: int) -> list[str]:
    """The table's next `times` PutItem calls are refused with `code` before reaching moto; returns the `seq` of
    every PutItem attempted."""
    attempted: list[str] = []

    def refuse(params: dict[str, Any], **_: Any) -> None:
        attempted.append(params["Item"]["seq"])
        if len(attempted) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "refused by the test"}}, "PutItem")

    audit.meta.client.meta.events.register("provide-client-params.dynamodb.PutItem", refuse)
    return attempted


def test_a_taken_seq_is_written_again_under_a_fresh_one(audit: Any) -> None:
    attempted = refuse_puts(audit, "ConditionalCheckFailedException", times=APPEND_ATTEMPTS - 1)

    written = AuditLog(audit, actor="executor").append("m-1", "executor.applied", "applied", change_id="c-1")

    assert len(attempted) == APPEND_ATTEMPTS
    assert len(set(attempted)) == APPEND_ATTEMPTS
    assert [(item["action"], item["seq"]) for item in read_trail(audit, "m-1")] == [
        ("executor.applied", written["seq"])
    ]


def test_an_append_refused_every_time_raises_and_writes_nothing(audit: Any) -> None:
    attempted = refuse_puts(audit, "ConditionalCheckFailedException", times=APPEND_ATTEMPTS)

    with pytest.raises(ClientError, match="ConditionalCheckFailedException"):
        AuditLog(audit, actor="executor").append("m-2", "executor.applied", "applied")

    assert len(attempted) == APPEND_ATTEMPTS
    assert read_trail(audit, "m-2") == []


def test_other_errors_are_not_retried_by_the_audit_log(audit: Any) -> None:
    attempted = refuse_puts(audit, "AccessDeniedException", times=1)

    with pytest.raises(ClientError, match="AccessDeniedException"):
        AuditLog(audit, actor="executor").append("m-3", "executor.applied", "applied")

    assert len(attempted) == 1
