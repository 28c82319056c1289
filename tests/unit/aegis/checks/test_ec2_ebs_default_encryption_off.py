"""EBS encryption by default off: CIS v3.0.0 2.2.1 / v5.0.0 5.1.1, per region."""

from __future__ import annotations

from aegis.catalogue.kinds.enable_ebs_default_encryption import EnableEbsDefaultEncryption
from aegis.checks import PlanConfig, ec2_ebs_default_encryption_off
from aegis.models import Risk

CHECK = ec2_ebs_default_encryption_off


def test_off_is_flagged_per_region_and_on_is_not(aws, inventory):
    aws.client("ec2", region_name="eu-west-1").enable_ebs_encryption_by_default()

    [finding] = CHECK.evaluate(inventory("us-east-1"))
    assert CHECK.evaluate(inventory("eu-west-1")) == []

    assert (finding.check_id, finding.cis_v3, finding.cis_v5) == ("ec2-ebs-default-encryption-off", "2.2.1", "5.1.1")
    assert (finding.resource_arn, finding.region) == ("arn:aws:ec2:us-east-1:123456789012:volume/*", "us-east-1")
    change = CHECK.propose(finding, PlanConfig())
    assert isinstance(change, EnableEbsDefaultEncryption)
    assert (change.before.enabled, change.after.enabled, change.region, change.risk) == (
        False,
        True,
        "us-east-1",
        Risk.LOW,
    )


def test_cis_numbers_and_remediation_kind():
    meta = ec2_ebs_default_encryption_off.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("2.2.1", "5.1.1", "enable-ebs-default-encryption")
