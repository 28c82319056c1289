"""A bucket accepts requests over plain HTTP: its policy does not deny them. CIS v5.0.0 2.1.1 / v6.0.0 and v7.0.0
3.1.1 (v3.0.0 2.1.1, not read from a published mapping).

A bucket passes when Deny statements of its policy, for everyone (`"*"` or `{"AWS": "*"}`), on every S3 action
(`s3:*` or `*`), with the one condition `Bool aws:SecureTransport false`, cover both the bucket and all its objects
(one statement listing both, or one each). A Deny that adds other conditions, names some actions only or uses
NotPrincipal/NotAction/NotResource is narrower than the control asks, and does not count.

Calls: per bucket its policy, the one GetBucketPolicy that s3-bucket-public also reads (the collector fetches each
bucket's policy once per scan, whichever check asks first); its tags and region only if it is flagged.
"""

from __future__ import annotations

import re
from typing import Any

from aegis.catalogue import ChangeBase
from aegis.catalogue.bucket_policies import policy_sha256, statements_of
from aegis.catalogue.kinds.deny_bucket_insecure_transport import (
    DENY_SID,
    BucketPolicyDigest,
    DenyBucketInsecureTransport,
    InsecureTransportDenied,
)
from aegis.checks.base import CheckMetadata, PlanConfig, as_list, bucket_arn, change_for, evidence_withheld
from aegis.collectors import Inventory
from aegis.collectors.s3 import Bucket
from aegis.models import Finding, Risk, Severity

METADATA = CheckMetadata(
    check_id="s3-bucket-insecure-transport-allowed",
    title="S3 bucket policy does not deny requests over plain HTTP",
    cis_v3="2.1.1",
    cis_v5="2.1.1",
    cis_v7="3.1.1",
    cis_unsure=("v3",),
    severity=Severity.MEDIUM,
    rationale=(
        "Without a policy denying requests made without TLS, data and credentials sent to the bucket over plain "
        "HTTP can be read or altered on the way."
    ),
    remediation_kind="deny-bucket-insecure-transport",
    manual_fix=(
        'Add to the bucket policy a statement denying s3:* to Principal "*" on the bucket and its objects when '
        "aws:SecureTransport is false (S3 console: bucket, Permissions, Bucket policy; API: PutBucketPolicy)."
    ),
    resource_type="AWS::S3::Bucket",
    services=("s3",),
    scope="account",
)

_EVERY_ACTION = {"s3:*", "*"}
# An object key no wildcard but a whole-key one (`*`) matches, besides the literal `/*` itself.
_PROBE_KEY = "aegis-probe/any.key"


def _pattern(resource: str) -> re.Pattern[str]:
    """An IAM resource pattern (`*` any run of characters, `?` any one) as a regular expression."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource))


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and set(principal) == {"AWS"} and "*" in as_list(principal["AWS"])


def _insecure_transport_only(condition: Any) -> bool:
    """The condition is exactly `Bool aws:SecureTransport false`: the Deny applies to every request without TLS."""
    if not isinstance(condition, dict) or len(condition) != 1 or not isinstance(condition.get("Bool"), dict):
        return False
    block = condition["Bool"]
    if len(block) != 1:
        return False
    ((key, values),) = block.items()
    texts = [str(value).lower() for value in as_list(values)]
    return str(key).lower() == "aws:securetransport" and texts == ["false"]


def denied_over_http(document: dict[str, Any] | None, arn: str) -> dict[str, bool]:
    """Whether the policy denies plain-HTTP requests on the bucket itself and on all its objects."""
    covered = {"bucket": False, "objects": False}
    for statement in statements_of(document):
        if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
            continue
        if any(key in statement for key in ("NotPrincipal", "NotAction", "NotResource")):
            continue
        actions = {str(action).lower() for action in as_list(statement.get("Action", []))}
        if not (
            _everyone(statement.get("Principal"))
            and actions & _EVERY_ACTION
            and _insecure_transport_only(statement.get("Condition"))
        ):
            continue
        for resource in as_list(statement.get("Resource", [])):
            pattern = _pattern(str(resource))
            covered["bucket"] |= bool(pattern.fullmatch(arn))
            covered["objects"] |= bool(pattern.fullmatch(f"{arn}/*") and pattern.fullmatch(f"{arn}/{_PROBE_KEY}"))
    return covered


def evaluate(inventory: Inventory) -> list[Finding]:
    s3 = inventory.s3
    buckets = s3.buckets()
    inventory.count(METADATA.resource_type, len(buckets), region=inventory.home_region)

    def one(bucket: Bucket) -> Finding | None:
        arn = bucket_arn(inventory.partition, bucket.name)
        try:
            policy = s3.bucket_policy(bucket.name)
            denied = denied_over_http(policy, arn)
            if all(denied.values()):
                return None
            tags = s3.bucket_tags(bucket.name)
            region = s3.bucket_region(bucket)
        except Exception as exc:
            inventory.record_error(METADATA.check_id, exc, arn, region=inventory.home_region)
            return None
        statements = statements_of(policy)
        return METADATA.finding(
            resource_arn=arn,
            account_id=inventory.account_id,
            region=region,
            evidence={
                "policy_sha256": policy_sha256(policy),
                "policy_statement_count": len(statements),
                "denied_over_http": {"bucket": denied["bucket"], "objects": denied["objects"]},
                # S3 refuses a policy whose statement ids repeat: a statement already named like the one the fix
                # adds (edited since by hand) leaves the fix to a person.
                "fix_sid_taken": any(isinstance(s, dict) and s.get("Sid") == DENY_SID for s in statements),
            },
            tags=tags,
        )

    # Per bucket its policy (and for a flagged one its tags and region), several buckets at a time (Inventory.each).
    return [finding for finding in inventory.each(one, buckets) if finding is not None]


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    if evidence_withheld(finding, "policy_sha256", "policy_statement_count") or finding.evidence.get("fix_sid_taken"):
        return None
    count = finding.evidence.get("policy_statement_count")
    sha256 = finding.evidence.get("policy_sha256")
    if not isinstance(count, int) or not (sha256 is None or isinstance(sha256, str)):
        return None
    return change_for(
        finding,
        DenyBucketInsecureTransport,
        risk=Risk.LOW,
        before=BucketPolicyDigest(sha256=sha256, statement_count=count),
        after=InsecureTransportDenied(index=count),
    )
