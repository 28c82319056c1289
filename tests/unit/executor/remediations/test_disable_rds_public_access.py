"""The RDS remediation changes PubliclyAccessible of the approved instance only, and treats a modification queued
since the approval, or an instance gone or re-created, as not the approved before-state."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES, create_db_instance

pytestmark = pytest.mark.usefixtures("aws")


class _StubbedSession:
    """A session whose RDS client answers from a Stubber: what moto cannot show (pending modifications)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, **_: Any) -> Any:
        assert service == "rds"
        return self._client


def test_other_instances_and_other_settings_are_untouched() -> None:
    other = create_db_instance("reporting-db")
    case = CASES["disable-rds-public-access"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    rds = session.client("rds")

    def publicly_accessible(name: str) -> bool:
        return bool(rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["PubliclyAccessible"])

    fix.apply(session, case.change)
    assert publicly_accessible(other["DBInstanceIdentifier"]) is True
    assert case.facts() == case.facts_after
    fix.undo(session, case.change)
    assert publicly_accessible(other["DBInstanceIdentifier"]) is True
    assert case.facts() == case.facts_before


def test_a_deleted_instance_is_neither_before_nor_after() -> None:
    case = CASES["disable-rds-public-access"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    session.client("rds").delete_db_instance(DBInstanceIdentifier="orders-db", SkipFinalSnapshot=True)

    current = fix.read_current(session, case.change)

    assert not current.exists
    assert not fix.is_before(current, case.change)
    assert not fix.is_after(current, case.change)


def _described(change: Any, **fields: Any) -> dict[str, Any]:
    instance = {
        "DBInstanceIdentifier": change.db_instance_id,
        "DBInstanceArn": change.resource_arn,
        "DbiResourceId": change.before.resource_id,
        "PubliclyAccessible": True,
        **fields,
    }
    return {"DBInstances": [instance]}


@pytest.mark.parametrize(
    "fields",
    [
        # A modification queued for the maintenance window: ApplyImmediately would apply it along with the fix.
        {"PendingModifiedValues": {"DBInstanceClass": "db.r6g.4xlarge"}},
        # The same name (the same ARN), another instance.
        {"DbiResourceId": "db-RECREATEDRECREATEDRECREAT"},
    ],
)
def test_a_pending_modification_or_a_re_created_instance_is_drift(fields: dict[str, Any]) -> None:
    case = CASES["disable-rds-public-access"]()
    fix = remediation_for(case.change)
    client = boto3.client("rds", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_instances",
            _described(case.change, **fields),
            {"DBInstanceIdentifier": "orders-db"},
        )
        current = fix.read_current(_StubbedSession(client), case.change)

    assert current.exists
    assert not fix.is_before(current, case.change)


def test_the_call_names_public_accessibility_only_and_applies_it_now() -> None:
    case = CASES["disable-rds-public-access"]()
    fix = remediation_for(case.change)
    client = boto3.client("rds", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "modify_db_instance",
            {"DBInstance": {}},
            {"DBInstanceIdentifier": "orders-db", "PubliclyAccessible": False, "ApplyImmediately": True},
        )
        stub.add_response(
            "modify_db_instance",
            {"DBInstance": {}},
            {"DBInstanceIdentifier": "orders-db", "PubliclyAccessible": True, "ApplyImmediately": True},
        )
        fix.apply(_StubbedSession(client), case.change)
        fix.undo(_StubbedSession(client), case.change)
        stub.assert_no_pending_responses()
