"""An EC2 instance whose metadata service still answers IMDSv1: CIS v3.0.0 5.6 / v5.0.0 5.7 / v6.0.0 and v7.0.0 6.7.

One paginated `DescribeInstances` listing per region (instances that exist: pending, running, stopping or stopped),
whatever the number of instances; the metadata options and the tags come with it.
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.require_imdsv2 import InstanceMetadataOptions, RequireImdsv2
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity
from aegis.partitions import partition_of

METADATA = CheckMetadata(
    check_id="ec2-instance-imdsv2-not-required",
    title="EC2 instance metadata service allows IMDSv1",
    cis_v3="5.6",
    cis_v5="5.7",
    cis_v7="6.7",
    # v3.0.0's id is not in the shared reference table (read from Prowler's cis_3.0_aws.json instead).
    cis_unsure=("v3",),
    severity=Severity.MEDIUM,
    rationale=(
        "IMDSv1 answers a plain GET, so a server-side request forgery in any application on the instance can read "
        "the instance role's credentials; IMDSv2 requires a session token obtained by a PUT that such requests "
        "cannot make."
    ),
    remediation_kind="require-imdsv2",
    manual_fix=(
        "Check that software on the instance uses IMDSv2 (CloudWatch metric MetadataNoToken stays 0), then EC2 "
        "console > instance > Actions > Instance settings > Modify instance metadata options > IMDSv2 Required "
        "(API: ec2:ModifyInstanceMetadataOptions HttpTokens=required)."
    ),
    resource_type="AWS::EC2::Instance",
    services=("ec2",),
    scope="region",
)


def instance_arn(region: str, account_id: str, instance_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account_id}:instance/{instance_id}"


def evaluate(inventory: Inventory) -> list[Finding]:
    """One finding per live instance whose metadata endpoint is enabled with HttpTokens optional. An instance with
    the endpoint disabled passes: no metadata service answers at all."""
    instances = inventory.ec2.instances()
    inventory.count(METADATA.resource_type, len(instances))
    return [
        METADATA.finding(
            resource_arn=instance_arn(inventory.region, inventory.account_id, instance.instance_id),
            account_id=inventory.account_id,
            region=inventory.region,
            evidence={
                "instance_id": instance.instance_id,
                "state": instance.state,
                "metadata_options": instance.metadata_options.model_dump(mode="json", exclude={"exists"}),
            },
            tags=instance.tags,
        )
        for instance in sorted(instances, key=lambda i: i.instance_id)
        if instance.metadata_options.imdsv1_allowed
    ]


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    if evidence_withheld(finding, "metadata_options"):
        return None
    before = InstanceMetadataOptions.model_validate(finding.evidence["metadata_options"])
    return change_for(
        finding,
        RequireImdsv2,
        # IMDSv1 clients on the instance (old SDKs, agents, scripts) lose metadata and role credentials.
        risk=Risk.MEDIUM,
        before=before,
        after=before.model_copy(update={"http_tokens": "required"}),
    )
