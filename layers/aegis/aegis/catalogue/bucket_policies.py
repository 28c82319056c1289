"""S3 bucket policies as the S3 kinds, their checks and their remediations handle them: the bucket a bucket ARN
names, a bucket's whole policy (or none), and statements taken out or put back by index, on top of
`aegis.catalogue.policy_documents` (a bucket policy is a policy document; here only what is particular to buckets:
no policy at all is a state of its own, and a policy left without statements is deleted rather than emptied).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import Field, JsonValue

from aegis.catalogue.policy_documents import (
    SHA256_PATTERN,
    document_sha256,
    policy_text,
    same_statement,
    statements_of,
)
from aegis.catalogue.policy_documents import with_statements as document_with
from aegis.catalogue.policy_documents import without_statements as document_without
from aegis.models import Frozen

POLICY_VERSION = "2012-10-17"
# Re-exported: the S3 kinds, checks and remediations import them from here with the bucket-specific helpers.
__all__ = ["SHA256_PATTERN", "policy_text", "same_statement", "statements_of"]


def bucket_arn_prefix(partition: str) -> str:
    """A bucket's ARN has no region or account, but it has the partition of the bucket's region."""
    return f"arn:{partition}:s3:::"


def bucket_name(resource_arn: str, partition: str) -> str:
    """The bucket a bucket ARN names; ValueError for any other ARN (an object, an access point, another service)."""
    prefix = bucket_arn_prefix(partition)
    name = resource_arn.removeprefix(prefix)
    if not resource_arn.startswith(prefix) or not name or "/" in name or "*" in name:
        raise ValueError("resource_arn must be a bucket ARN")
    return name


def policy_sha256(document: dict[str, Any] | None) -> str | None:
    """The digest of a bucket policy (`document_sha256`); None for no policy."""
    return None if document is None else document_sha256(document)


def parse_policy(text: str) -> dict[str, Any]:
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("a bucket policy is a JSON object")
    return document


def without_statements(document: dict[str, Any], indices: Iterable[int]) -> dict[str, Any] | None:
    """`document` without the statements at `indices`, everything else kept; None when no statement is left (a
    bucket policy cannot be empty: the bucket then has no policy)."""
    kept = document_without(document, indices)
    return kept if statements_of(kept) else None


class PolicyStatement(Frozen):
    """One statement of a bucket policy and its position in the policy's statement list."""

    index: int = Field(ge=0)
    statement: dict[str, JsonValue]

    def actions(self) -> str:
        action = self.statement.get("Action", self.statement.get("NotAction", "?"))
        names = action if isinstance(action, list) else [action]
        prefix = "NotAction " if "Action" not in self.statement and "NotAction" in self.statement else ""
        return prefix + ",".join(str(name) for name in names)


def with_statements(
    document: dict[str, Any] | None,
    inserted: Sequence[PolicyStatement],
    *,
    version: str | None = POLICY_VERSION,
    policy_id: str | None = None,
) -> dict[str, Any]:
    """`document` with `inserted` put back at their indices; without a document, a new one with `version` and
    `policy_id` (what the removed policy had)."""
    if document is None:
        document = {key: value for key, value in (("Version", version), ("Id", policy_id)) if value is not None}
    return document_with(document, {item.index: dict(item.statement) for item in inserted})


class BucketPolicyDocument(Frozen):
    """A bucket's whole policy as the executor reads it (GetBucketPolicy), or none."""

    document: dict[str, JsonValue] | None = None

    @classmethod
    def from_text(cls, text: str | None) -> BucketPolicyDocument:
        return cls(document=None if text is None else parse_policy(text))

    @property
    def sha256(self) -> str | None:
        return policy_sha256(self.document)

    @property
    def statements(self) -> list[Any]:
        return statements_of(self.document)

    def describe(self) -> str:
        if self.document is None:
            return "no bucket policy"
        return f"bucket policy sha256 {(self.sha256 or '')[:12]}, {len(self.statements)} statements"
