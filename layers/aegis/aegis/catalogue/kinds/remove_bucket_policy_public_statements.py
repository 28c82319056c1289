"""Remove exactly the public statements of a bucket policy, keeping the rest (CIS 2.1.4, an alternative to Block
Public Access for a bucket public only through its policy).

The change names the policy by its digest and carries the statements it removes, with their indices: the executor
acts only on the policy it was approved for (any edit since the scan is drift), and undo puts the same statements
back where they were and checks that the digest is the approved one again. The policy's version and id come along,
so that a policy removed whole (every statement was public) is re-created as it was.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.catalogue.bucket_policies import SHA256_PATTERN, PolicyStatement, bucket_name
from aegis.catalogue.policy_documents import assert_carriable
from aegis.models import Frozen
from aegis.secrets_guard import display_text


class PublicPolicyStatements(Frozen):
    """A bucket policy, by its digest and size, and its public statements."""

    sha256: str = Field(pattern=SHA256_PATTERN)
    statement_count: int = Field(ge=1)
    version: str | None = None
    policy_id: str | None = None
    statements: tuple[PolicyStatement, ...]

    @model_validator(mode="after")
    def _carriable(self) -> PublicPolicyStatements:
        assert_carriable([*(s.statement for s in self.statements), self.version, self.policy_id])
        return self

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(s.index for s in self.statements)

    def describe(self) -> str:
        return f"bucket policy sha256 {self.sha256[:12]} ({self.statement_count} statements)"


class KeptPolicyStatements(Frozen):
    """What is left of the policy: its other statements, unchanged (none: the bucket has no policy any more)."""

    statement_count: int = Field(ge=0)

    def describe(self) -> str:
        if not self.statement_count:
            return "no bucket policy (every statement was public)"
        return f"bucket policy with its {self.statement_count} other statements, unchanged"


# What the approver reads fits Auth0's 255 characters: each statement with its actions where that fits, else by
# index only.
_SHOWN_MAX = 255


def _ranges(indices: tuple[int, ...]) -> str:
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return ", ".join(f"#{run[0]}" if len(run) == 1 else f"#{run[0]}-#{run[-1]}" for run in runs)


class RemoveBucketPolicyPublicStatements(ChangeBase):
    kind: Literal["remove-bucket-policy-public-statements"] = "remove-bucket-policy-public-statements"
    before: PublicPolicyStatements
    after: KeptPolicyStatements

    TITLE = "Remove a bucket policy's public statements"
    APPLY_ACTIONS = ("s3:DeleteBucketPolicy", "s3:PutBucketPolicy")
    READ_ACTIONS = ("s3:GetBucketPolicy",)
    UNDO_ACTIONS = ("s3:PutBucketPolicy",)
    REGION_SCOPE = "resource"

    @property
    def bucket(self) -> str:
        return bucket_name(self.resource_arn, self.partition)

    @property
    def removed(self) -> tuple[PolicyStatement, ...]:
        return self.before.statements

    def assert_narrows(self) -> None:
        bucket_name(self.resource_arn, self.partition)
        indices = self.before.indices
        if not indices:
            raise WideningChange("the change removes no statement")
        if list(indices) != sorted(set(indices)) or indices[-1] >= self.before.statement_count:
            raise ValueError("the removed statements' indices must be distinct, ascending and within the policy")
        # Taking an Allow statement out never grants anything; taking a Deny out would.
        if any(s.statement.get("Effect") != "Allow" for s in self.before.statements):
            raise WideningChange("only Allow statements may be removed")
        if self.after.statement_count != self.before.statement_count - len(indices):
            raise ValueError("after must keep exactly the statements the change does not remove")

    def summary(self) -> str:
        return f"Remove {len(self.removed)} public statements s3 {display_text(self.bucket)}"

    def describe_before(self) -> str:
        head = f"{self.before.describe()}; {len(self.removed)} public (Principal * or NotPrincipal): "
        detailed = head + "; ".join(f"#{s.index} Allow {display_text(s.actions())}" for s in self.removed)
        return detailed if len(detailed) <= _SHOWN_MAX else head + _ranges(self.before.indices)

    def describe_after(self) -> str:
        return f"statements {_ranges(self.before.indices)} removed; {self.after.describe()}"
