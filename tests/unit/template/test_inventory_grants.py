"""The agent's inventory grants follow the collectors' code: every AWS read the collectors can make, AgentRole
grants."""

from __future__ import annotations

from tests.support.stack import ROOT, UNSCOPED, Stack, build_stack, pristine_template
from tests.unit.template.iam_matrix import called_operations, resource_types_of, role_statement

COLLECTORS = ROOT / "layers" / "aegis" / "aegis" / "collectors"
INVENTORY_SERVICES = ("ec2", "s3", "s3control", "iam", "kms", "cloudtrail", "config", "sts")
# Where the IAM action is not "<service>:<Operation>". None: the operation needs no permission.
IAM_ACTION_OF_OPERATION: dict[tuple[str, str], str | None] = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("sts", "GetCallerIdentity"): None,
}


def collector_operations() -> set[tuple[str, str]]:
    return called_operations(sorted(COLLECTORS.glob("*.py")), INVENTORY_SERVICES)


def iam_action_for(service: str, operation: str) -> str | None:
    if (service, operation) in IAM_ACTION_OF_OPERATION:
        return IAM_ACTION_OF_OPERATION[(service, operation)]
    return f"{'s3' if service == 's3control' else service}:{operation}"


def collector_reads_missing(stack: Stack) -> list[str]:
    needed = {action for service, operation in collector_operations() if (action := iam_action_for(service, operation))}
    unknown = sorted(action for action in needed if resource_types_of(action) is None)
    granted = {g.action for g in stack.grants("AgentRole") if g.resource == UNSCOPED}
    return [f"no IAM action known for {action}: map it in IAM_ACTION_OF_OPERATION" for action in unknown] + [
        f"the collectors call {action}, which AgentRole does not grant" for action in sorted(needed - granted)
    ]


def test_agent_role_grants_every_read_the_collectors_make(stack: Stack) -> None:
    found = collector_operations()
    assert ("ec2", "DescribeSecurityGroupRules") in found, f"no collector calls found under {COLLECTORS}"
    assert collector_reads_missing(stack) == []


def test_a_read_the_collectors_need_but_the_role_lacks_is_caught() -> None:
    template = pristine_template()
    role_statement(template, "AgentRole", "ReadOnlyInventory")["Action"].remove("ec2:DescribeVpcs")
    assert collector_reads_missing(build_stack(template)) == [
        "the collectors call ec2:DescribeVpcs, which AgentRole does not grant"
    ]
