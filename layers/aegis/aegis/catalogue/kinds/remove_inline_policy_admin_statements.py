"""Remove the administrator (`*` on `*`) statements from the inline policies of one role, user or group (CIS 1.15 /
2.14 applied to inline policies): each policy is put back without them, or deleted when nothing else remains.

For each policy the change names the SHA-256 of the document it was approved against, how many statements it has,
and the admin statements themselves with their indices. The executor re-reads each document and acts only on an
unchanged one, rebuilding the new document from what it read. The removed statements travel with the change, so
undo can put each one back at its index and check that the document's digest is the approved one again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, cast

from pydantic import Field, JsonValue, model_validator

from aegis.catalogue.base import ChangeBase, Phase, WideningChange
from aegis.catalogue.policy_documents import SHA256_PATTERN, assert_carriable
from aegis.models import Frozen
from aegis.secrets_guard import IdentifierShape, display_text

EntityType = Literal["role", "user", "group"]
# Inline policy names: "alphanumeric characters and +=,.@_-", 1 to 128 (IAM API reference, PutRolePolicy).
IAM_POLICY_NAME = IdentifierShape("iam-policy-name", r"[A-Za-z0-9_+=,.@-]{1,128}")


def _entity_of(arn: str) -> tuple[EntityType, str] | None:
    """(entity type, name) of an IAM role, user or group ARN; None for any other ARN."""
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    name = rest.rsplit("/", 1)[-1]
    if kind in ("role", "user", "group") and name:
        return cast(EntityType, kind), name
    return None


class AdminStatement(Frozen):
    """One removed statement, where it stood in the approved document, as IAM returned it."""

    index: int = Field(ge=0)
    statement: dict[str, JsonValue]


class InlineAdminPolicy(Frozen):
    # A name is an identifier whatever it looks like; only the texts shown to people withhold it.
    name: Annotated[str, IAM_POLICY_NAME]
    document_sha256: str = Field(pattern=SHA256_PATTERN)
    statement_count: int = Field(ge=1)
    admin_statements: tuple[AdminStatement, ...] = Field(min_length=1)
    # The document's other elements (Version, Id): with the statements, what undo re-creates a deleted policy from.
    frame: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _statements_of_the_document(self) -> InlineAdminPolicy:
        indices = [s.index for s in self.admin_statements]
        if indices != sorted(set(indices)) or indices[-1] >= self.statement_count:
            raise ValueError("admin statements must be distinct statements of the document, in order")
        if "Statement" in self.frame:
            raise ValueError("the frame of a document holds no statement")
        # Bounded per policy: a change of several policies is split one part per policy where its approval texts
        # would not fit (approval_parts), and each part carries what it removes.
        assert_carriable([self.frame, *self.removed.values()])
        return self

    @property
    def removed(self) -> dict[int, Any]:
        """The removed statements by their index in the approved document."""
        return {s.index: s.statement for s in self.admin_statements}

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(s.index for s in self.admin_statements)

    @property
    def deletes(self) -> bool:
        """Every statement is an admin one: the policy is deleted rather than put back empty."""
        return len(self.admin_statements) == self.statement_count

    def describe(self) -> str:
        return (
            f"{display_text(self.name)}: statements {', '.join(map(str, self.indices))} of {self.statement_count} "
            f"allow * on * (sha256 {self.document_sha256[:12]})"
        )

    def describe_removed(self) -> str:
        if self.deletes:
            return f"{display_text(self.name)}: deleted (every statement allowed * on *)"
        kept = self.statement_count - len(self.admin_statements)
        return f"{display_text(self.name)}: statements {', '.join(map(str, self.indices))} removed, {kept} kept"


class InlineAdminPolicies(Frozen):
    """The entity's inline policies that hold admin statements; none after the change."""

    policies: tuple[InlineAdminPolicy, ...] = ()

    @model_validator(mode="after")
    def _one_entry_per_policy(self) -> InlineAdminPolicies:
        names = [p.name for p in self.policies]
        if len(names) != len(set(names)):
            raise ValueError("a policy is named twice")
        return self

    def describe(self) -> str:
        if not self.policies:
            return "no inline policy allows * on *"
        return "; ".join(p.describe() for p in self.policies)


class RemoveInlinePolicyAdminStatements(ChangeBase):
    kind: Literal["remove-inline-policy-admin-statements"] = "remove-inline-policy-admin-statements"
    before: InlineAdminPolicies
    after: InlineAdminPolicies

    TITLE = "Remove * on * statements from inline policies"
    APPLY_ACTIONS = (
        "iam:DeleteGroupPolicy",
        "iam:DeleteRolePolicy",
        "iam:DeleteUserPolicy",
        "iam:PutGroupPolicy",
        "iam:PutRolePolicy",
        "iam:PutUserPolicy",
    )
    READ_ACTIONS = ("iam:GetGroupPolicy", "iam:GetRolePolicy", "iam:GetUserPolicy")
    UNDO_ACTIONS = ("iam:PutGroupPolicy", "iam:PutRolePolicy", "iam:PutUserPolicy")
    REGION_SCOPE = "home"

    @property
    def entity_type(self) -> EntityType:
        # arn:<partition>:iam::<account>:<role|user|group>/<path...>/<name>
        entity = _entity_of(self.resource_arn)
        if entity is None:
            raise ValueError("resource_arn must be a role, user or group")
        return entity[0]

    @property
    def entity_name(self) -> str:
        return self.resource_arn.rsplit("/", 1)[-1]

    @property
    def cleaned(self) -> tuple[InlineAdminPolicy, ...]:
        """The policies whose admin statements the change removes."""
        return tuple(p for p in self.before.policies if p not in self.after.policies)

    def assert_narrows(self) -> None:
        if (
            not self.resource_arn.startswith(f"arn:{self.partition}:iam::{self.account_id}:")
            or _entity_of(self.resource_arn) is None
        ):
            raise ValueError("resource_arn must be a role, user or group of this account")
        if any(s.statement.get("Effect") != "Allow" for p in self.before.policies for s in p.admin_statements):
            # Removing a Deny would grant: only Allow statements are ever removed.
            raise WideningChange("only Allow statements may be removed")
        after, before = self.after.policies, self.before.policies
        if not (all(p in before for p in after) and len(after) < len(before)):
            raise WideningChange("after must keep a strict subset of the policies before")

    def summary(self) -> str:
        return (
            f"Remove * on * from {len(self.cleaned)} inline policies of {self.entity_type} "
            f"{display_text(self.entity_name)}"
        )

    def describe_after(self) -> str:
        done = "; ".join(p.describe_removed() for p in self.cleaned)
        rest = "; ".join(p.describe() for p in self.after.policies)
        return f"{done}; unchanged: {rest}" if rest else done

    def scoped_resources(self, phase: Phase) -> list[str]:
        # The entity may live under a path; its name is the ARN's last segment either way.
        base = f"arn:{self.partition}:iam::{self.account_id}:{self.entity_type}"
        return [f"{base}/{self.entity_name}", f"{base}/*/{self.entity_name}"]

    # Each policy is put or deleted by its own call and checked by its own digest: an entity with too many admin
    # policies to show at once is cleaned by several changes, each showing all of its own.
    def approval_parts(self) -> tuple[Any, ...]:
        return self.cleaned

    def with_parts(self, items: Sequence[Any]) -> RemoveInlinePolicyAdminStatements:
        return self.with_states(before=InlineAdminPolicies(policies=tuple(items)), after=InlineAdminPolicies())
