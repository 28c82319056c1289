"""A customer-managed policy granting `*` on `*` is attached: CIS v3.0.0 1.16 / v5.0.0 1.15 / v6.0.0 2.15 / v7.0.0 2.14.

Only the default version counts (it is the one in force). Policies, all their versions' documents and attachments come
from the paginated `GetAccountAuthorizationDetails` listing; tags are fetched only for flagged policies (for
`aegis:exempt`).

Two fixes. Replacing the default version by one without the admin statements keeps everything else the policy grants
to its entities (medium risk); it applies when a statement remains and IAM has room for one more version (it keeps
five). Detaching the policy from every entity always applies, but takes all of the policy away (high risk).
"""

from __future__ import annotations

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.catalogue.kinds.replace_admin_policy_version import (
    MAX_POLICY_VERSIONS,
    DefaultPolicyVersion,
    RemovedStatements,
    ReplaceAdminPolicyVersion,
)
from aegis.catalogue.policy_documents import document_sha256, statements_of
from aegis.checks._admin_statements import admin_statement_indices
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, choose, evidence_withheld
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="iam-admin-policy-attached",
    title="Customer-managed policy allows * on * and is attached",
    cis_v3="1.16",
    cis_v5="1.15",
    cis_v7="2.14",
    cis_v6="2.15",
    severity=Severity.HIGH,
    rationale=(
        "Full administrative privileges given through a customer policy bypass least privilege; whoever holds the "
        "attached role, user or group can do anything in the account."
    ),
    remediation_kind="detach-policy",
    alternative_kinds=("replace-admin-policy-version",),
    manual_fix=(
        "Remove the Allow * on * statements from the policy (IAM console: Policies, Edit, save as the new default "
        "version; API CreatePolicyVersion with SetAsDefault), or detach it (DetachRolePolicy/UserPolicy/GroupPolicy)."
    ),
    resource_type="AWS::IAM::ManagedPolicy",
    services=("iam",),
    scope="account",
    evidence_identifiers={
        "attachments.roles[]": "iam-role-name",
        "attachments.users[]": "iam-user-name",
        "attachments.groups[]": "iam-group-name",
    },
)


def evaluate(inventory: Inventory) -> list[Finding]:
    findings = []
    policies = inventory.iam.customer_policies()
    inventory.count(METADATA.resource_type, len(policies), region=inventory.home_region)
    for policy in policies:
        if policy.attachment_count <= 0:
            continue
        statements = admin_statement_indices(policy.default_document)
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
                    # What a new version is built against: the executor re-reads the document and compares.
                    "default_document_sha256": document_sha256(policy.default_document),
                    "statement_count": len(statements_of(policy.default_document)),
                    "version_count": policy.version_count,
                },
                tags=tags,
            )
        )
    return findings


def candidates(finding: Finding, config: PlanConfig) -> list[ChangeBase]:
    """Every fix that applies, the default (detach) first: detach when an attachment is known, a new default
    version when a statement would remain and the policy has fewer than five versions."""
    found: list[ChangeBase] = []
    detach = _detach(finding)
    if detach is not None:
        found.append(detach)
    replace = _replace_version(finding)
    if replace is not None:
        found.append(replace)
    return found


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    """The deployment's pinned fix when it applies, else the safest: a new default version where it applies (the
    entities keep the rest of the policy), detaching otherwise."""
    return choose(finding, config, candidates(finding, config))


def _detach(finding: Finding) -> DetachPolicy | None:
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


def _replace_version(finding: Finding) -> ReplaceAdminPolicyVersion | None:
    """A new default version without the admin statements. None for a finding recorded without the version facts, a
    policy with no room for another version, or one made of admin statements only (detach it instead)."""
    keys = ("default_version_id", "default_document_sha256", "statement_count", "version_count", "admin_statements")
    if any(key not in finding.evidence for key in keys) or evidence_withheld(finding, *keys):
        return None
    evidence = finding.evidence
    version_count = evidence["version_count"]
    statement_count = evidence["statement_count"]
    indices = evidence["admin_statements"]
    if not (isinstance(version_count, int) and isinstance(statement_count, int) and isinstance(indices, list)):
        return None
    if version_count >= MAX_POLICY_VERSIONS or len(indices) >= statement_count:
        return None
    return change_for(
        finding,
        ReplaceAdminPolicyVersion,
        # The entities keep the policy's other statements; only what allowed everything goes.
        risk=Risk.MEDIUM,
        before=DefaultPolicyVersion.model_validate(
            {
                "version_id": evidence["default_version_id"],
                "document_sha256": evidence["default_document_sha256"],
                "statement_count": statement_count,
            }
        ),
        after=RemovedStatements(indices=tuple(int(i) for i in indices if isinstance(i, int))),
    )
