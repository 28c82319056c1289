"""disable-rds-public-access: turns PubliclyAccessible off for one DB instance, and only while nothing else is pending
for it (ApplyImmediately would apply that too)."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.catalogue.kinds.disable_rds_public_access import (
    DbInstancePublicAccess,
    DisableRdsPublicAccess,
    pending_modification_names,
)
from tests.support.changes import ACCOUNT, COMMON, DB_RESOURCE_ID, REGION, rds_public_access_change

DB_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-db"
PUBLIC = DbInstancePublicAccess(resource_id=DB_RESOURCE_ID, publicly_accessible=True)
PRIVATE = DbInstancePublicAccess(resource_id=DB_RESOURCE_ID, publicly_accessible=False)


def _propose(**fields: Any) -> DisableRdsPublicAccess:
    return DisableRdsPublicAccess.propose(
        **{
            "check_id": "rds-instance-publicly-accessible",
            "resource_arn": DB_ARN,
            "before": PUBLIC,
            "after": PRIVATE,
            **COMMON,
            **fields,
        }
    )


@pytest.mark.parametrize(
    "resource_arn",
    [
        f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:orders",  # a cluster, not an instance
        f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-db",  # another region than the change's
        f"arn:aws:rds:{REGION}:210987654321:db:orders-db",  # another account than the change's
        f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders db",  # not an RDS identifier
        f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders--db",
        f"arn:aws:rds:{REGION}:{ACCOUNT}:db:",
    ],
)
def test_a_resource_that_is_not_a_db_instance_of_the_change_is_refused(resource_arn: str) -> None:
    with pytest.raises(ValueError, match="DB instance"):
        _propose(resource_arn=resource_arn)


@pytest.mark.parametrize(
    ("before", "after", "refusal"),
    [
        (PRIVATE, PUBLIC, "from on to off"),
        (PUBLIC, PUBLIC, "from on to off"),
        (PUBLIC, PRIVATE.model_copy(update={"resource_id": "db-OTHER"}), "same DB instance"),
        (PUBLIC.model_copy(update={"resource_id": ""}), PRIVATE.model_copy(update={"resource_id": ""}), "same DB"),
        (PUBLIC.model_copy(update={"pending_modifications": ("DBInstanceClass",)}), PRIVATE, "no modification"),
        (PUBLIC, PRIVATE.model_copy(update={"pending_modifications": ("MultiAZ",)}), "no modification"),
        (DbInstancePublicAccess(exists=False, publicly_accessible=True), PRIVATE, "existing DB instance"),
    ],
)
def test_anything_but_turning_public_access_off_alone_is_refused(
    before: DbInstancePublicAccess, after: DbInstancePublicAccess, refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        _propose(before=before, after=after)


def test_the_approver_sees_the_instance_and_what_clients_lose() -> None:
    change = rds_public_access_change()
    assert isinstance(change, DisableRdsPublicAccess)
    assert change.db_instance_id == "orders-db"
    assert change.summary() == "Make rds db orders-db private"
    shown = change.approval_properties()
    assert shown["before"] == f"publicly accessible ({DB_RESOURCE_ID})"
    assert (
        shown["after"] == f"not publicly accessible ({DB_RESOURCE_ID}); clients outside the VPC can no longer connect"
    )
    assert change.split_for_approval() == (change,)


def test_the_session_may_touch_that_instance_only() -> None:
    change = rds_public_access_change()
    for phase in ("apply", "undo"):
        [statement] = change.session_policy_statements(phase)
        assert (statement["Resource"], statement["Action"]) == (
            [DB_ARN],
            ["rds:DescribeDBInstances", "rds:ModifyDBInstance"],
        )
    assert type(change).REGION_SCOPE == "scanned"


def test_pending_modifications_are_named_never_valued() -> None:
    instance = {
        "PendingModifiedValues": {
            "MasterUserPassword": "****",
            "DBInstanceClass": "db.m5.large",
            "MultiAZ": False,
            "ProcessorFeatures": [],
            "PendingCloudwatchLogsExports": {},
        }
    }
    assert pending_modification_names(instance) == ("DBInstanceClass", "MasterUserPassword", "MultiAZ")
    assert pending_modification_names({}) == pending_modification_names({"PendingModifiedValues": None}) == ()
