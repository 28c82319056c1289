"""Replace the default version of a customer-managed policy by one without its administrator (`*` on `*`)
statements (CIS 1.15 / 2.14): the entities keep the policy and everything else it grants.

The change names the default version it was approved against by id and by the SHA-256 of its document, and the
indices of the statements it removes; it never holds the document. The executor reads that version, checks its digest,
and creates the new default version from it (CreatePolicyVersion, SetAsDefault). The old version is never deleted:
undo makes it the default again (SetDefaultPolicyVersion), so nothing is lost. IAM keeps at most five versions, so the
change is only proposed for a policy with fewer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.catalogue.policy_documents import SHA256_PATTERN
from aegis.models import Frozen
from aegis.secrets_guard import display_text

# IAM refuses a sixth version of a managed policy.
MAX_POLICY_VERSIONS = 5


class DefaultPolicyVersion(Frozen):
    """The policy's default version as approved: which one, its document's digest and how many statements it has."""

    version_id: str = Field(pattern=r"^v[1-9][0-9]*$")
    document_sha256: str = Field(pattern=SHA256_PATTERN)
    statement_count: int = Field(ge=1)

    def describe(self) -> str:
        return (
            f"default version {self.version_id}: {self.statement_count} statements "
            f"(document sha256 {self.document_sha256[:12]})"
        )


class RemovedStatements(Frozen):
    """What the new default version leaves out of the approved one: the statements at these indices."""

    indices: tuple[int, ...] = Field(min_length=1)

    def describe(self) -> str:
        return f"a new default version without statements {', '.join(map(str, self.indices))} (allow * on *)"


class ReplaceAdminPolicyVersion(ChangeBase):
    kind: Literal["replace-admin-policy-version"] = "replace-admin-policy-version"
    before: DefaultPolicyVersion
    after: RemovedStatements

    TITLE = "Remove the * on * statements from a policy's default version"
    APPLY_ACTIONS = ("iam:CreatePolicyVersion",)
    READ_ACTIONS = ("iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions")
    UNDO_ACTIONS = ("iam:SetDefaultPolicyVersion",)
    REGION_SCOPE = "home"

    @property
    def policy_arn(self) -> str:
        return self.resource_arn

    @property
    def kept_count(self) -> int:
        return self.before.statement_count - len(self.after.indices)

    def assert_narrows(self) -> None:
        if not self.resource_arn.startswith(f"arn:{self.partition}:iam::{self.account_id}:policy/"):
            raise ValueError("resource_arn must be a customer-managed policy of this account")
        indices = self.after.indices
        if list(indices) != sorted(set(indices)):
            raise WideningChange("the removed statements must be listed once each, in order")
        if indices[0] < 0 or indices[-1] >= self.before.statement_count:
            raise WideningChange("a removed statement is not a statement of the approved version")
        if self.kept_count < 1:
            # A version without statements is not a policy IAM accepts; detaching it is the fix then.
            raise WideningChange("the new version must keep at least one statement")

    def summary(self) -> str:
        name = display_text(self.policy_arn.rsplit("/", 1)[-1])
        return f"Remove {len(self.after.indices)} admin statements from policy {name}"

    def describe_after(self) -> str:
        return (
            f"{self.after.describe()}, {self.kept_count} kept; {self.before.version_id} stays as a non-default "
            "version for undo"
        )
