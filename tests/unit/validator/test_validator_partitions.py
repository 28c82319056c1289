"""The validator in any partition: the deployment's partition is its ScanRegions', account-wide changes are addressed
to IAM's home region of it, and a change in another partition is refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis_validator.errors import InvalidSettings
from aegis_validator.rules import REGION_SCOPE, Problem, execution_name, parse_envelope, plan_problems
from aegis_validator.settings import ValidatorSettings
from tests.support.changes import ACCOUNT, FLOW_LOG, one_of_each_kind
from tests.support.partitions import PARTITION_IDS, PARTITIONS, moved_to
from tests.support.validator_plans import CONFIG_BUCKET, MISSION_ID, POLICY, TRAIL_BUCKET, request

# A second scanned region of each partition.
SECOND_REGION = {"aws": "eu-central-1", "aws-us-gov": "us-gov-east-1", "aws-cn": "cn-northwest-1"}
HOME_REGION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}


def deployment(partition: str, region: str) -> ValidatorSettings:
    """A deployment scanning two regions of `partition`, with its destinations in the partition."""
    return ValidatorSettings(
        audit_table="Audit",
        account_id=ACCOUNT,
        scan_regions=(region, SECOND_REGION[partition]),
        max_changes_per_mission=20,
        approval_policy=POLICY,
        trail_bucket=TRAIL_BUCKET,
        flow_logs_log_group=FLOW_LOG.log_group_name,
        flow_logs_role_arn=FLOW_LOG.deliver_logs_role_arn.replace("arn:aws:", f"arn:{partition}:"),
        config_bucket=CONFIG_BUCKET,
        undo_enabled=True,
    )


def planned(region: str, home: str) -> list[ChangeBase]:
    """One change of every forward kind about `region`, account-wide kinds in `home`, as the planner builds them."""
    return [moved_to(change, home if REGION_SCOPE[change.kind] == "home" else region) for change in one_of_each_kind()]


def no_records(change_id: str) -> list[dict[str, Any]]:
    return []


def problems(changes: list[Any], settings: ValidatorSettings, partition: str, region: str) -> list[Problem]:
    execution_arn = f"arn:{partition}:states:{region}:{ACCOUNT}:execution:aegis-mission:{MISSION_ID}"
    return plan_problems(parse_envelope(request(changes, execution_arn=execution_arn)), settings, no_records)


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_a_planners_plan_in_the_partition_passes(partition: str, region: str) -> None:
    settings = deployment(partition, region)
    assert (settings.partition, settings.home_region) == (partition, HOME_REGION[partition])
    assert problems(planned(region, settings.home_region), settings, partition, region) == []


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_a_change_of_another_partition_is_refused_whatever_its_kind_allows(partition: str, region: str) -> None:
    settings = deployment(partition, region)
    for other, elsewhere in PARTITIONS:
        if other == partition:
            continue
        # A bucket's change may be in any region of the partition, but not outside it.
        bucket = next(c for c in planned(elsewhere, elsewhere) if isinstance(c, EnableBucketPublicAccessBlock))
        [problem] = problems([bucket], settings, partition, region)
        assert (problem.rule, problem.detail) == (
            "region-out-of-scope",
            f"not in the {partition} partition of ScanRegions",
        )


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_an_account_wide_change_is_addressed_to_the_partitions_home_region(partition: str, region: str) -> None:
    settings = deployment(partition, region)
    detach = next(c for c in one_of_each_kind() if c.kind == "detach-policy")
    assert problems([moved_to(detach, HOME_REGION[partition])], settings, partition, region) == []
    elsewhere = moved_to(detach, settings.scan_regions[1])  # scanned, but IAM is addressed in the home region
    [problem] = problems([elsewhere], settings, partition, region)
    assert (problem.rule, problem.detail) == (
        "region-out-of-scope",
        f"an account-wide change is addressed in {HOME_REGION[partition]}",
    )


def test_a_regional_change_in_the_partition_but_outside_scan_regions_is_refused() -> None:
    settings = deployment("aws-us-gov", "us-gov-west-1")
    group = next(c for c in planned("us-gov-east-1", "us-gov-west-1") if isinstance(c, RevokeSecurityGroupRules))
    assert problems([group], settings, "aws-us-gov", "us-gov-west-1") == []
    gov_only = replace(settings, scan_regions=("us-gov-west-1",))
    [problem] = problems([group], gov_only, "aws-us-gov", "us-gov-west-1")
    assert (problem.rule, problem.detail) == ("region-out-of-scope", "not one of ScanRegions")


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_an_execution_of_the_partition_names_its_mission(partition: str, region: str) -> None:
    assert execution_name(f"arn:{partition}:states:{region}:{ACCOUNT}:execution:aegis-mission:{MISSION_ID}") == (
        MISSION_ID
    )


@pytest.mark.parametrize("prefix", ["arn:awsx", "arn:", "arn:aws-", "arn:AWS"])
def test_an_execution_arn_of_no_partition_is_not_an_execution(prefix: str) -> None:
    assert execution_name(f"{prefix}:states:us-east-1:{ACCOUNT}:execution:aegis-mission:{MISSION_ID}") is None


ENVIRONMENT = {
    "AUDIT_TABLE": "Audit",
    "MISSIONS_TABLE": "Missions",
    "ACCOUNT_ID": ACCOUNT,
    "MAX_CHANGES_PER_MISSION": "10",
    "APPROVER_SUBS": "auth0|approver-a,auth0|approver-b",
}


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=PARTITION_IDS)
def test_the_settings_of_a_deployment_in_the_partition(partition: str, region: str) -> None:
    role = f"arn:{partition}:iam::{ACCOUNT}:role/flow-logs-delivery"
    settings = ValidatorSettings.from_env(
        ENVIRONMENT | {"SCAN_REGIONS": f"{region},{SECOND_REGION[partition]}", "FLOW_LOGS_ROLE_ARN": role}
    )
    assert (settings.partition, settings.home_region, settings.flow_logs_role_arn) == (
        partition,
        HOME_REGION[partition],
        role,
    )


@pytest.mark.parametrize(
    ("regions", "role", "message"),
    [
        ("us-east-1,us-gov-west-1", "", "SCAN_REGIONS must be regions of one partition"),
        ("cn-north-1,eu-west-1", "", "SCAN_REGIONS must be regions of one partition"),
        ("zz-east-1", "", "SCAN_REGIONS must be regions of an AWS partition"),
        ("us-gov-west-1", f"arn:aws:iam::{ACCOUNT}:role/r", "FLOW_LOGS_ROLE_ARN must be in the partition"),
        ("us-east-1", f"arn:aws-cn:iam::{ACCOUNT}:role/r", "FLOW_LOGS_ROLE_ARN must be in the partition"),
        ("us-east-1", f"arn:awsx:iam::{ACCOUNT}:role/r", "FLOW_LOGS_ROLE_ARN must be an IAM role ARN"),
    ],
)
def test_a_deployment_across_partitions_is_refused(regions: str, role: str, message: str) -> None:
    with pytest.raises(InvalidSettings, match=message):
        ValidatorSettings.from_env(ENVIRONMENT | {"SCAN_REGIONS": regions, "FLOW_LOGS_ROLE_ARN": role})
