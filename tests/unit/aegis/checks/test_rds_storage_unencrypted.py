"""RDS DB instance storage not encrypted: CIS v5.0.0 2.2.1 / v7.0.0 3.2.1 (v3.0.0 2.3.1, unsure). Notify-only."""

from __future__ import annotations

import pytest

from aegis.checks import PlanConfig, rds_storage_unencrypted
from aegis.checks.base import EXEMPT_TAG

CHECK = rds_storage_unencrypted


@pytest.fixture
def rds(aws):
    return aws.client("rds", region_name="us-east-1")


def _create(rds, name: str, *, encrypted: bool, engine: str = "postgres", **extra) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine=engine,
        AllocatedStorage=20,
        MasterUsername="app",
        MasterUserPassword="not-a-secret-0",
        StorageEncrypted=encrypted,
        **extra,
    )


def test_unencrypted_instances_are_flagged_and_encrypted_ones_are_not(rds, inventory):
    _create(rds, "legacy", encrypted=False, Tags=[{"Key": EXEMPT_TAG, "Value": "migrating, DB-12"}])
    _create(rds, "modern", encrypted=True)

    [finding] = CHECK.evaluate(inventory())

    assert (finding.check_id, finding.cis_v5, finding.cis_v7) == ("rds-storage-unencrypted", "2.2.1", "3.2.1")
    assert finding.resource_arn == "arn:aws:rds:us-east-1:123456789012:db:legacy"
    assert finding.evidence == {"db_instance_id": "legacy", "engine": "postgres", "storage_encrypted": False}
    assert finding.tags == {EXEMPT_TAG: "migrating, DB-12"}


def test_it_is_notify_only_and_says_what_a_human_should_do(rds, inventory):
    _create(rds, "legacy", encrypted=False)
    [finding] = CHECK.evaluate(inventory())

    assert CHECK.propose(finding, PlanConfig()) is None
    assert finding.remediation is None
    for step in ("CreateDBSnapshot", "CopyDBSnapshot", "KmsKeyId", "RestoreDBInstanceFromDBSnapshot"):
        assert step in CHECK.METADATA.manual_fix


def test_instances_of_other_services_listed_by_rds_are_left_out(rds, inventory):
    # DescribeDBInstances lists Neptune (and DocumentDB) instances too: their own controls cover them.
    rds.create_db_cluster(DBClusterIdentifier="graph", Engine="neptune", StorageEncrypted=False)
    _create(rds, "graph-1", encrypted=False, engine="neptune", DBClusterIdentifier="graph")
    listed = {i["Engine"] for i in rds.describe_db_instances()["DBInstances"]}
    assert "neptune" in listed

    assert CHECK.evaluate(inventory()) == []


def test_cis_numbers_and_remediation_kind():
    meta = CHECK.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_id("v6"), meta.cis_v7) == ("2.3.1", "2.2.1", "3.2.1", "3.2.1")
    assert meta.cis_unsure == ("v3",)
    assert meta.remediation_kind is None
