"""Every kind in every partition: a change's ARNs, those it names and those its session policy builds, are in the
partition of its region (ChangeBase.partition), and a change naming another partition's resource is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from aegis.catalogue import ChangeBase, InvalidChange, Undo, parse_change
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis.catalogue.kinds.detach_policy import DetachPolicy
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.partitions import arn_partition
from tests.support.changes import ACCOUNT, one_of_each_kind
from tests.support.partitions import PARTITION_IDS, PARTITIONS, moved_to

KINDS = {change.kind: change for change in one_of_each_kind()}


def arns_in(value: Any) -> Iterator[str]:
    """Every string in a JSON value that is (or begins as) an ARN."""
    if isinstance(value, str):
        if value.startswith("arn:"):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from arns_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from arns_in(item)


def session_policies(change: ChangeBase) -> list[dict[str, Any]]:
    return [*change.session_policy_statements("apply"), *change.session_policy_statements("undo")]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_every_kind_names_and_builds_arns_of_its_regions_partition_only(kind: str, partition: str, region: str) -> None:
    change = moved_to(KINDS[kind], region)
    undo = Undo.of(change)

    assert change.partition == undo.partition == partition
    assert parse_change(json.loads(change.model_dump_json())) == change
    named = list(arns_in(change.model_dump(mode="json")))
    # Some kinds' actions take no resource ("*": an account's password policy), so they build no ARN.
    built = list(arns_in(session_policies(change))) + list(arns_in(undo.session_policy_statements()))
    assert {arn_partition(arn) for arn in named + built} == {partition}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_every_kind_refuses_a_resource_of_another_partition_than_its_region(
    kind: str, partition: str, region: str
) -> None:
    change = moved_to(KINDS[kind], region)
    for other, _ in PARTITIONS:
        if other == partition:
            continue
        foreign = change.resource_arn.replace(f"arn:{partition}:", f"arn:{other}:", 1)
        with pytest.raises(ValidationError, match="resource_arn is not an ARN in the partition of the change's region"):
            moved_to(KINDS[kind], region, resource_arn=foreign)
        wire = json.loads(change.model_dump_json()) | {"resource_arn": foreign}
        with pytest.raises(InvalidChange):
            parse_change(wire)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_change_in_a_region_of_no_partition_is_refused(kind: str) -> None:
    change = KINDS[kind]
    with pytest.raises(ValidationError, match="no AWS partition has region"):
        type(change).propose(**change.model_dump(exclude={"kind", "change_id"}) | {"region": "zz-east-1"})


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_detach_policy_scopes_its_entities_in_the_partition_and_refuses_a_foreign_policy(
    partition: str, region: str
) -> None:
    change = moved_to(KINDS["detach-policy"], region)
    assert isinstance(change, DetachPolicy)
    statement = change.session_policy_statements("apply")[0]
    assert f"arn:{partition}:iam::{ACCOUNT}:role/ci-deployer" in statement["Resource"]
    assert f"arn:{partition}:iam::{ACCOUNT}:user/*/alice" in statement["Resource"]
    other_account = change.resource_arn.replace(ACCOUNT, "210987654321")
    with pytest.raises(ValidationError, match="customer-managed policy of this account"):
        moved_to(change, region, resource_arn=other_account)
    managed = f"arn:{partition}:iam::aws:policy/AdministratorAccess"
    with pytest.raises(ValidationError, match="customer-managed policy of this account"):
        moved_to(change, region, resource_arn=managed)


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_a_bucket_is_named_by_its_partitions_arn(partition: str, region: str) -> None:
    change = moved_to(KINDS["enable-bucket-public-access-block"], region)
    assert isinstance(change, EnableBucketPublicAccessBlock)
    assert change.resource_arn == f"arn:{partition}:s3:::public-bucket"
    assert change.bucket == "public-bucket"


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_flow_logs_are_delivered_by_a_role_of_the_changes_partition_only(partition: str, region: str) -> None:
    change = moved_to(KINDS["create-vpc-flow-logs"], region)
    assert isinstance(change, CreateVpcFlowLogs)
    (destination,) = change.added
    assert arn_partition(destination.deliver_logs_role_arn) == partition
    for other, _ in PARTITIONS:
        if other == partition:
            continue
        foreign_role = destination.deliver_logs_role_arn.replace(f"arn:{partition}:", f"arn:{other}:", 1)
        after = VpcFlowLogs(
            vpc_id=change.vpc_id,
            flow_logs=(
                FlowLogDestination(log_group_name=destination.log_group_name, deliver_logs_role_arn=foreign_role),
            ),
        )
        with pytest.raises(ValidationError, match="delivery role must be in the partition"):
            moved_to(change, region, after=after)


@pytest.mark.parametrize("role", ["arn:awsgov:iam::123456789012:role/r", "arn:aws-us-gov:iam::12345:role/r", "x"])
def test_a_delivery_role_must_still_be_a_role_arn(role: str) -> None:
    with pytest.raises(ValidationError, match="deliver_logs_role_arn"):
        FlowLogDestination(log_group_name="/aegis/flow-logs", deliver_logs_role_arn=role)
