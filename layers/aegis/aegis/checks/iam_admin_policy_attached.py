"""A customer-managed policy granting `*` on `*` is attached: CIS v3.0.0 1.16 / v5.0.0 1.15.

Only the default version counts (it is the one in force). Policies, documents and attachments all come from the
paginated `GetAccountAuthorizationDetails` listing; tags are fetched only for flagged policies (for `aegis:exempt`).
"""

from __future__ import annotations

from typing import Any

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.checks.base import CheckMetadata, PlanConfig, as_list, change_for, evidence_withheld
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="iam-admin-policy-attached",
    title="Customer-managed policy allows * on * and is attached",
    cis_v3="1.16",
    cis_v5="1.15",
    severity=Severity.HIGH,
    rationale=(
        "Full administrative privileges given through a customer policy bypass least privilege; whoever holds the "
        "attached role, user or group can do anything in the account."
    ),
    remediation_kind="detach-policy",
    resource_type="AWS::IAM::ManagedPolicy",
    services=("iam",),
    scope="account",
    evidence_identifiers={
        "attachments.roles[]": "iam-role-name",
        "attachments.users[]": "iam-user-name",
        "attachments.groups[]": "iam-group-name",
    },
)


def admin_statements(document: dict[str, Any]) -> list[int]:
    """Indices of statements that allow every action on every resource."""
    return [
        index
        for index, statement in enumerate(as_list(document.get("Statement", [])))
        if isinstance(statement, dict)
        and statement.get("Effect") == "Allow"
        and "*" in as_list(statement.get("Action", []))
        and "*" in as_list(statement.get("Resource", []))
    ]


def evaluate(inventory: Inventory) -> list[Finding]:
    findings = []
    policies = inventory.iam.customer_policies()
    inventory.count(METADATA.resource_type, len(policies), region=inventory.home_region)
    for policy in policies:
        if policy.attachment_count <= 0:
            continue
        statements = admin_statements(policy.default_document)
        if not statements:
            continue
        try:
            tags = inventory.iam.policy_tags(policy.arn)
        except Exception as exc:
            # Without its tags the policy's exemption is unknown: report the error rather than risk a plan for it.
            inventory.record_error(METADATA.check_id, exc, policy.arn, region=inventory.home_region)
            continue
        findings.append(
            METADATA.finding(
                resource_arn=policy.arn,
                account_id=inventory.account_id,
                region=inventory.home_region,
                evidence={
                    "default_version_id": policy.default_version_id,
                    "admin_statements": list(statements),
                    "attachment_count": policy.attachment_count,
                    "attachments": {
                        "roles": list(policy.roles),
                        "users": list(policy.users),
                        "groups": list(policy.groups),
                    },
                },
                tags=tags,
            )
        )
    return findings


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    """Detach from every entity holding it. None when no attachment is known (e.g. the count and the listing
    disagree): there would be nothing exact to approve."""
    if evidence_withheld(finding, "attachments"):
        return None
    before = PolicyAttachments.model_validate(finding.evidence["attachments"])
    if not before.pairs():
        return None
    return change_for(
        finding,
        DetachPolicy,
        # Whatever runs as these entities loses its permissions.
        risk=Risk.HIGH,
        before=before,
        after=PolicyAttachments(),
    )
