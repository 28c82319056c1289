"""An inline policy of a role, user or group grants `*` on `*`: the control of CIS v3.0.0 1.16 / v5.0.0 1.15 /
v6.0.0 2.15 / v7.0.0 2.14 ("no full administrative privileges"), which names attached policies, applied to the
policies IAM embeds in an entity. Those ids are not read from a published mapping for inline policies (all unsure).

One finding per entity, from the same paginated `GetAccountAuthorizationDetails` listing as the managed policies:
inline documents and (roles, users) tags are in it, so the check makes no call of its own. The evidence holds, for
each admin inline policy, its name, the digest of its document, its statement count and the admin statements with
their indices: the change is built from them, and undo puts exactly those statements back.
"""

from __future__ import annotations

from pydantic import JsonValue, ValidationError

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.remove_inline_policy_admin_statements import (
    InlineAdminPolicies,
    RemoveInlinePolicyAdminStatements,
)
from aegis.catalogue.policy_documents import StatementsTooLarge, document_sha256, frame_of, statements_of
from aegis.checks._admin_statements import admin_statement_indices
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld
from aegis.collectors import Inventory
from aegis.collectors.iam import PolicyHolder
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="iam-inline-policy-admin",
    title="Inline policy of a role, user or group allows * on *",
    cis_v3="1.16",
    cis_v5="1.15",
    cis_v7="2.14",
    cis_v6="2.15",
    cis_unsure=("v3", "v5", "v6", "v7"),
    severity=Severity.HIGH,
    rationale=(
        "An inline policy that allows every action on every resource gives its role, user or group full "
        "administrative access, outside the managed policies a review usually looks at."
    ),
    remediation_kind="remove-inline-policy-admin-statements",
    manual_fix=(
        "Edit the inline policy and remove its Allow * on * statements, or delete the policy (IAM console: the "
        "role, user or group, Permissions; API PutRolePolicy/PutUserPolicy/PutGroupPolicy or Delete*Policy)."
    ),
    resource_type="AWS::IAM::Policy",
    services=("iam",),
    scope="account",
    evidence_identifiers={
        "role": "iam-role-name",
        "user": "iam-user-name",
        "group": "iam-group-name",
        # Inline policy names have the character set and length of group names (1-128 of [A-Za-z0-9_+=,.@-]).
        "policies[].name": "iam-group-name",
    },
)


def evaluate(inventory: Inventory) -> list[Finding]:
    holders = inventory.iam.inline_policy_holders()
    inventory.count(METADATA.resource_type, sum(len(h.inline_policies) for h in holders), region=inventory.home_region)
    findings = []
    for holder in holders:
        policies = _admin_policies(holder)
        if not policies:
            continue
        findings.append(
            METADATA.finding(
                resource_arn=holder.arn,
                account_id=inventory.account_id,
                region=inventory.home_region,
                evidence={holder.entity_type: holder.name, "policies": policies},
                tags=holder.tags,
            )
        )
    return findings


def _admin_policies(holder: PolicyHolder) -> list[JsonValue]:
    found: list[JsonValue] = []
    for policy in holder.inline_policies:
        indices = admin_statement_indices(policy.document)
        if not indices:
            continue
        statements = statements_of(policy.document)
        found.append(
            {
                "name": policy.name,
                "document_sha256": document_sha256(policy.document),
                "statement_count": len(statements),
                "admin_statements": [{"index": i, "statement": statements[i]} for i in indices],
                "frame": frame_of(policy.document),
            }
        )
    return found


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    """Remove the admin statements from every admin inline policy of the entity (deleting a policy left empty).
    None when the scan withheld part of a policy, or when the statements are too large for a change to carry
    (CARRIED_STATEMENTS_MAX): the change could not put back exactly what it removes."""
    if evidence_withheld(finding, "policies"):
        return None
    try:
        before = InlineAdminPolicies.model_validate({"policies": finding.evidence.get("policies") or []})
    except ValidationError as exc:
        if any(isinstance(error.get("ctx", {}).get("error"), StatementsTooLarge) for error in exc.errors()):
            return None  # too large to carry through a mission: notify-only, the report says what to do by hand
        raise
    if not before.policies:
        return None
    return change_for(
        finding,
        RemoveInlinePolicyAdminStatements,
        # Whatever runs as the entity may have relied on the access; undo re-puts the exact statements.
        risk=Risk.HIGH,
        before=before,
        after=InlineAdminPolicies(),
    )
