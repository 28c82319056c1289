"""Publicly accessible RDS DB instance: CIS v5.0.0 2.2.3 / v7.0.0 3.2.3 (v3.0.0 2.3.3, unsure)."""

from __future__ import annotations

from typing import Any

import pytest

from aegis.catalogue.kinds.disable_rds_public_access import DisableRdsPublicAccess
from aegis.checks import PlanConfig, rds_instance_publicly_accessible
from aegis.checks.base import EXEMPT_TAG
from aegis.models import Risk
from aegis.secrets_guard import WITHHELD

CHECK = rds_instance_publicly_accessible
ARN = "arn:aws:rds:us-east-1:123456789012:db:{}"


@pytest.fixture
def rds(aws):
    return aws.client("rds", region_name="us-east-1")


@pytest.fixture
def db_instance(rds):
    """Create a small PostgreSQL instance; returns its DescribeDBInstances entry."""

    def make(name: str, *, public: bool, encrypted: bool = False, **extra: Any) -> dict[str, Any]:
        return rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.micro",
            Engine=extra.pop("Engine", "postgres"),
            AllocatedStorage=20,
            MasterUsername="app",
            MasterUserPassword="not-a-secret-0",
            PubliclyAccessible=public,
            StorageEncrypted=encrypted,
            **extra,
        )["DBInstance"]

    return make


def test_a_public_instance_is_flagged_and_a_private_one_is_not(db_instance, inventory):
    public = db_instance(
        "orders",
        public=True,
        Tags=[{"Key": EXEMPT_TAG, "Value": "vendor access, SEC-7"}, {"Key": "team", "Value": "x"}],
    )
    db_instance("billing", public=False)

    [finding] = CHECK.evaluate(inventory())

    assert (finding.check_id, finding.cis_v5, finding.cis_v7) == ("rds-instance-publicly-accessible", "2.2.3", "3.2.3")
    assert (finding.resource_arn, finding.region, finding.resource_type) == (
        ARN.format("orders"),
        "us-east-1",
        "AWS::RDS::DBInstance",
    )
    assert finding.evidence == {
        "db_instance_id": "orders",
        "resource_id": public["DbiResourceId"],
        "engine": "postgres",
        "status": "available",
        "publicly_accessible": True,
        "pending_modifications": [],
    }
    assert finding.tags == {EXEMPT_TAG: "vendor access, SEC-7"}


def test_both_rds_checks_share_one_listing_and_count_every_instance(db_instance, inventory):
    from aegis.checks import rds_storage_unencrypted

    for index in range(3):
        db_instance(f"db-{index}", public=index == 0)

    inv = inventory()
    assert len(CHECK.evaluate(inv)) == 1
    assert len(rds_storage_unencrypted.evaluate(inv)) == 3
    calls = inv.collectors.clients.api_calls
    assert calls == {"sts.GetCallerIdentity": 1, "rds.DescribeDBInstances": 1}
    assert inv.collectors.resource_counts == {"AWS::RDS::DBInstance": 3}


def test_instances_of_another_region_are_not_seen(db_instance, inventory):
    db_instance("orders", public=True)

    assert CHECK.evaluate(inventory("eu-west-1")) == []


def test_the_proposal_makes_that_instance_private(db_instance, inventory):
    created = db_instance("orders", public=True)
    [finding] = CHECK.evaluate(inventory())

    change = CHECK.propose(finding, PlanConfig())

    assert isinstance(change, DisableRdsPublicAccess)
    assert (change.resource_arn, change.db_instance_id, change.risk) == (ARN.format("orders"), "orders", Risk.MEDIUM)
    assert change.before.resource_id == change.after.resource_id == created["DbiResourceId"]
    assert (change.before.publicly_accessible, change.after.publicly_accessible) == (True, False)
    assert change.before.pending_modifications == change.after.pending_modifications == ()
    assert finding.remediation == "disable-rds-public-access"


def test_a_stopped_instance_is_flagged_but_notify_only(rds, db_instance, inventory):
    db_instance("orders", public=True)
    rds.stop_db_instance(DBInstanceIdentifier="orders")

    [finding] = CHECK.evaluate(inventory())

    assert finding.evidence["status"] == "stopped"
    assert CHECK.propose(finding, PlanConfig()) is None
    assert "ModifyDBInstance" in CHECK.METADATA.manual_fix


@pytest.mark.parametrize(
    "evidence",
    [
        # ApplyImmediately would apply a pending modification too: a change is never proposed beside one.
        {"pending_modifications": ["DBInstanceClass"]},
        {"status": "modifying"},
        {"resource_id": WITHHELD},
        {"resource_id": ""},
    ],
)
def test_nothing_is_proposed_that_would_do_more_or_name_another_instance(db_instance, inventory, evidence):
    db_instance("orders", public=True)
    [finding] = CHECK.evaluate(inventory())
    changed = finding.model_copy(update={"evidence": {**finding.evidence, **evidence}})

    assert CHECK.propose(changed, PlanConfig()) is None


def test_cis_numbers_and_remediation_kind():
    meta = CHECK.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_id("v6"), meta.cis_v7) == ("2.3.3", "2.2.3", "3.2.3", "3.2.3")
    assert meta.cis_unsure == ("v3",)
    assert meta.remediation_kind == "disable-rds-public-access"
    assert meta.alternative_kinds == ()
