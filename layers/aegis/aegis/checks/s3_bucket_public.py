"""A bucket is public: its Block Public Access is not fully on and a public ACL grant or a public bucket policy is in
effect. CIS v3.0.0 2.1.4 / v5.0.0 2.1.4.

Calls, cheapest first: none per bucket when the account-level block neutralises every public ACL and policy
(IgnorePublicAcls and RestrictPublicBuckets on; in particular all four on), which is recorded in the scan's notes.
Otherwise per bucket: its Block Public Access; its ACL only if public ACLs are not ignored; its policy only if public
policies are not restricted; its tags and region only if it is flagged.

Whether a policy is public is computed from the document itself (AWS's `GetBucketPolicyStatus` applies the same rule,
but not every implementation of it is complete, and it would cost a call per bucket): an Allow statement whose
principal is everyone (`*`, `{"AWS": "*"}`, or any `NotPrincipal`) is public unless a condition pins it to fixed
values of a key that identifies a caller or network (source IP other than the whole internet, VPC, VPC endpoint,
source account/ARN/organization, principal account/ARN/organization, user id, access point). Negated, `...IfExists`
and wildcard conditions do not restrict.

Three fixes, safest first (a deployment may pin one: REMEDIATION_CHOICES):
- `enable-bucket-public-access-block` (the default): Block Public Access on the bucket overrides both causes;
- `remove-bucket-acl-public-grants`, only for a bucket public through its ACL alone: removes exactly the public
  grants the scan saw;
- `remove-bucket-policy-public-statements`, only for a bucket public through its policy alone: removes exactly the
  public statements, which the evidence carries with the policy's digest, version and id (so that undo is lossless).
A bucket public through both needs Block Public Access: either removal alone would leave it public.
"""

from __future__ import annotations

from typing import Any

from aegis.catalogue import ChangeBase
from aegis.catalogue.bucket_policies import PolicyStatement, policy_sha256, statements_of
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.remove_bucket_acl_public_grants import (
    PublicAclGrant,
    PublicAclGrants,
    RemoveBucketAclPublicGrants,
)
from aegis.catalogue.kinds.remove_bucket_policy_public_statements import (
    KeptPolicyStatements,
    PublicPolicyStatements,
    RemoveBucketPolicyPublicStatements,
)
from aegis.checks._public_access_block import propose_all_on
from aegis.checks.base import (
    CheckMetadata,
    PlanConfig,
    as_list,
    bucket_arn,
    change_for,
    choose,
    evidence_withheld,
)
from aegis.collectors import Inventory
from aegis.collectors.s3 import Bucket
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="s3-bucket-public",
    title="S3 bucket is publicly accessible",
    cis_v3="2.1.4",
    cis_v5="2.1.4",
    cis_v7="3.1.4",
    severity=Severity.CRITICAL,
    rationale=(
        "A bucket readable or writable by anyone leaks or loses data; Block Public Access on the bucket overrides "
        "its public ACL grants and public policy statements."
    ),
    remediation_kind="enable-bucket-public-access-block",
    alternative_kinds=("remove-bucket-acl-public-grants", "remove-bucket-policy-public-statements"),
    manual_fix=(
        "Turn on all four Block Public Access settings of the bucket (S3 console: bucket, Permissions; API: "
        "PutPublicAccessBlock), or remove its public ACL grants (PutBucketAcl) and public policy statements "
        "(PutBucketPolicy)."
    ),
    resource_type="AWS::S3::Bucket",
    services=("s3", "s3control"),
    scope="account",
)

_RESTRICTING_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:SourceOwner",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:userid",
        "s3:DataAccessPointArn",
        "s3:DataAccessPointAccount",
    )
)
_WHOLE_INTERNET = {"0.0.0.0/0", "::/0"}


def _principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any("*" in as_list(principal.get(kind, [])) for kind in ("AWS", "CanonicalUser"))
    return False


def _fixed(key: str, values: Any) -> bool:
    texts = [str(v) for v in as_list(values)]
    if not texts or any("*" in t or "?" in t for t in texts):
        return False
    return not (key == "aws:sourceip" and any(t in _WHOLE_INTERNET for t in texts))


def _restricted(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator, block in condition.items():
        op = str(operator)
        if "Not" in op or op.endswith("IfExists") or op in ("Null", "Bool") or not isinstance(block, dict):
            continue
        for key, values in block.items():
            if str(key).lower() in _RESTRICTING_KEYS and _fixed(str(key).lower(), values):
                return True
    return False


def public_policy_statements(document: dict[str, Any] | None) -> list[int]:
    """Indices of the statements that make a bucket policy public."""
    if not document:
        return []
    public = []
    for index, statement in enumerate(as_list(document.get("Statement", []))):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        everyone = "NotPrincipal" in statement or _principal_is_everyone(statement.get("Principal"))
        if everyone and not _restricted(statement.get("Condition")):
            public.append(index)
    return public


def evaluate(inventory: Inventory) -> list[Finding]:
    s3 = inventory.s3
    account = s3.account_public_access_block()
    if account.ignore_public_acls and account.restrict_public_buckets:
        inventory.note(
            "s3-bucket-public: the account-level Block Public Access ignores public ACLs and restricts public "
            "policies (" + account.describe() + "), so no bucket can be public; no per-bucket calls were made."
        )
        return []
    buckets = s3.buckets()
    inventory.count(METADATA.resource_type, len(buckets), region=inventory.home_region)
    account_evidence = account.model_dump(mode="json")

    def one(bucket: Bucket) -> Finding | None:
        arn = bucket_arn(inventory.partition, bucket.name)
        try:
            block = s3.bucket_public_access_block(bucket.name)
            acls_ignored = block.ignore_public_acls or account.ignore_public_acls
            policies_restricted = block.restrict_public_buckets or account.restrict_public_buckets
            if acls_ignored and policies_restricted:
                return None
            grants = [] if acls_ignored else s3.bucket_public_acl_grants(bucket.name)
            policy = None if policies_restricted else s3.bucket_policy(bucket.name)
            statements = public_policy_statements(policy)
            if not grants and not statements:
                return None
            tags = s3.bucket_tags(bucket.name)
            region = s3.bucket_region(bucket)
        except Exception as exc:
            inventory.record_error(METADATA.check_id, exc, arn, region=inventory.home_region)
            return None
        return METADATA.finding(
            resource_arn=arn,
            account_id=inventory.account_id,
            region=region,
            evidence={
                "public_access_block": block.model_dump(mode="json"),
                "account_public_access_block": dict(account_evidence),
                "public_acl_grants": list(grants),
                "public_policy_statements": list(statements),
                **({"public_policy": _public_policy(policy, statements)} if policy and statements else {}),
            },
            tags=tags,
        )

    # Per bucket up to three calls, several buckets at a time (Inventory.each); the findings in bucket order.
    return [finding for finding in inventory.each(one, buckets) if finding is not None]


def _public_policy(document: dict[str, Any], indices: list[int]) -> dict[str, Any]:
    """What removing the public statements needs: the policy's digest, size, version and id, and the statements."""
    statements = statements_of(document)
    return {
        "sha256": policy_sha256(document),
        "statement_count": len(statements),
        "version": document.get("Version"),
        "id": document.get("Id"),
        "statements": [{"index": index, "statement": statements[index]} for index in indices],
    }


def candidates(finding: Finding, config: PlanConfig) -> list[ChangeBase]:
    """Every fix that makes this bucket private, the default first (see the module's docstring)."""
    found: list[ChangeBase | None] = [
        propose_all_on(finding, EnableBucketPublicAccessBlock, Risk.MEDIUM),
        _remove_acl_grants(finding),
        _remove_policy_statements(finding),
    ]
    return [change for change in found if change is not None]


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    # A website or a partner may read the bucket on purpose; the deployment suppresses those (SUPPRESSIONS).
    return choose(finding, config, candidates(finding, config))


def _remove_acl_grants(finding: Finding) -> RemoveBucketAclPublicGrants | None:
    grants = finding.evidence.get("public_acl_grants")
    if (
        not grants
        or finding.evidence.get("public_policy_statements")
        or evidence_withheld(finding, "public_acl_grants")
    ):
        return None
    try:
        before = PublicAclGrants.of([PublicAclGrant.from_text(str(grant)) for grant in as_list(grants)])
        return change_for(
            finding, RemoveBucketAclPublicGrants, risk=Risk.MEDIUM, before=before, after=PublicAclGrants()
        )
    except ValueError:
        return None  # evidence this kind cannot be built from: the other fixes remain


def _remove_policy_statements(finding: Finding) -> RemoveBucketPolicyPublicStatements | None:
    policy = finding.evidence.get("public_policy")
    if not isinstance(policy, dict) or finding.evidence.get("public_acl_grants"):
        return None
    if evidence_withheld(finding, "public_policy"):
        return None
    try:
        before = PublicPolicyStatements(
            sha256=policy["sha256"],
            statement_count=policy["statement_count"],
            version=policy.get("version"),
            policy_id=policy.get("id"),
            statements=tuple(PolicyStatement.model_validate(s) for s in as_list(policy["statements"])),
        )
        after = KeptPolicyStatements(statement_count=before.statement_count - len(before.statements))
        return change_for(finding, RemoveBucketPolicyPublicStatements, risk=Risk.MEDIUM, before=before, after=after)
    except (KeyError, TypeError, ValueError):
        return None  # evidence this kind cannot be built from: the other fixes remain
