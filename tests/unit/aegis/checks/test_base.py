"""aegis.checks.base: the ARN builders, in each partition (a regional ARN takes its region's partition, an ARN
without a region the partition it is given); and which fix a plan takes where a finding has several (the deployment's
pinned kind, REMEDIATION_CHOICES, when it applies to the finding, else the safest candidate), a pinned kind that fixes
nothing it names being refused by name."""

from __future__ import annotations

import pytest

from aegis.checks import CHECKS
from aegis.checks.base import (
    InvalidRemediationChoice,
    PlanConfig,
    account_root_arn,
    bucket_arn,
    candidates_of,
    choose,
    ebs_default_encryption_arn,
    parse_remediation_choices,
    security_group_arn,
    trail_arn,
    trails_arn,
    vpc_arn,
)
from aegis.models import Risk
from aegis.partitions import arn_partition
from tests.support.agent_world import ebs_finding, propose
from tests.support.changes import detach_admin_policy_from

ACCOUNT = "123456789012"
# (partition, a region of it)
PARTITIONS = [("aws", "eu-west-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1")]


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=[p for p, _ in PARTITIONS])
def test_every_builder_builds_in_the_partition(partition: str, region: str) -> None:
    where = f"{partition}:ec2:{region}:{ACCOUNT}"
    built = [
        (account_root_arn(partition, ACCOUNT), f"arn:{partition}:iam::{ACCOUNT}:root"),
        (bucket_arn(partition, "logs"), f"arn:{partition}:s3:::logs"),
        (security_group_arn(region, ACCOUNT, "sg-0abc"), f"arn:{where}:security-group/sg-0abc"),
        (vpc_arn(region, ACCOUNT, "vpc-0abc"), f"arn:{where}:vpc/vpc-0abc"),
        (ebs_default_encryption_arn(region, ACCOUNT), f"arn:{where}:volume/*"),
        (trails_arn(region, ACCOUNT), f"arn:{partition}:cloudtrail:{region}:{ACCOUNT}:trail/*"),
        (trail_arn(region, ACCOUNT, "org"), f"arn:{partition}:cloudtrail:{region}:{ACCOUNT}:trail/org"),
    ]
    for arn, expected in built:
        assert arn == expected
        assert arn_partition(arn) == partition


def test_choices_parse_from_check_kind_pairs() -> None:
    text = " iam-admin-policy-attached=detach-policy , s3-bucket-public=enable-bucket-public-access-block,"
    assert parse_remediation_choices(text) == {
        "iam-admin-policy-attached": "detach-policy",
        "s3-bucket-public": "enable-bucket-public-access-block",
    }
    assert parse_remediation_choices("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("iam-admin-policy-attached", "is not check-id=kind"),
        ("=detach-policy", "is not check-id=kind"),
        ("iam-admin-policy-attached=detach-policy,iam-admin-policy-attached=detach-policy", "pinned twice"),
    ],
)
def test_a_malformed_choice_is_a_named_error(text: str, message: str) -> None:
    with pytest.raises(InvalidRemediationChoice, match=message):
        parse_remediation_choices(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no-such-check=detach-policy", "unknown check 'no-such-check'"),
        ("iam-admin-policy-attached=enable-kms-key-rotation", "does not fix iam-admin-policy-attached"),
        ("iam-root-access-keys=detach-policy", "none: it is notify-only"),
    ],
)
def test_the_environment_refuses_a_choice_that_fixes_nothing_it_names(text: str, message: str) -> None:
    with pytest.raises(InvalidRemediationChoice, match=message):
        PlanConfig.from_env({"REMEDIATION_CHOICES": text})


def test_every_kind_a_check_names_may_be_pinned() -> None:
    for check_id, check in CHECKS.items():
        for kind in check.METADATA.kinds:
            config = PlanConfig.from_env({"REMEDIATION_CHOICES": f"{check_id}={kind}"})
            assert config.remediation_choices == {check_id: kind}


def test_the_safest_candidate_wins_unless_another_is_pinned() -> None:
    finding = ebs_finding()
    risky = detach_admin_policy_from("alice")  # HIGH
    safer = propose(finding)  # LOW: EBS encryption by default
    assert safer is not None
    assert (risky.risk, safer.risk) == (Risk.HIGH, Risk.LOW)
    assert choose(finding, PlanConfig(), [risky, safer]) is safer
    pinned = PlanConfig.model_construct(remediation_choices={finding.check_id: risky.kind})
    assert choose(finding, pinned, [risky, safer]) is risky
    # A pinned kind that is not among the candidates (it does not apply to this finding) falls back to the safest.
    elsewhere = PlanConfig.model_construct(remediation_choices={finding.check_id: "require-imdsv2"})
    assert choose(finding, elsewhere, [risky, safer]) is safer
    assert choose(finding, PlanConfig(), []) is None


def test_among_equally_safe_candidates_the_checks_order_wins() -> None:
    finding = ebs_finding()
    first, second = detach_admin_policy_from("alice"), detach_admin_policy_from("bob")
    assert choose(finding, PlanConfig(), [first, second]) is first
    assert choose(finding, PlanConfig(), [second, first]) is second


def test_a_check_without_alternatives_has_its_one_proposal_as_candidate() -> None:
    finding = ebs_finding()
    check = CHECKS[finding.check_id]
    assert not check.METADATA.alternative_kinds
    [only] = candidates_of(check, finding, PlanConfig())
    assert only.kind == check.METADATA.remediation_kind


def test_a_check_with_alternatives_builds_its_candidates_itself() -> None:
    with_alternatives = [c for c in CHECKS.values() if c.METADATA.alternative_kinds]
    assert with_alternatives, "no check offers more than one fix"
    for check in with_alternatives:
        assert callable(getattr(check, "candidates", None)), check.METADATA.check_id
