"""Detach a customer-managed policy that allows `*` on `*` from every entity (CIS 1.15)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from aegis.catalogue.base import ChangeBase, Phase, WideningChange
from aegis.models import Frozen
from aegis.secrets_guard import IAM_GROUP_NAME, IAM_ROLE_NAME, IAM_USER_NAME, display_text

# The parameter naming each kind of entity in IAM's Attach*/Detach*Policy calls.
ENTITY_NAME_PARAMETER = {"role": "RoleName", "user": "UserName", "group": "GroupName"}


class PolicyAttachments(Frozen):
    # Names are identifiers whatever they look like (an IAM user may be called like an access key id): the secret
    # guard keeps them where they fit IAM's character set, and only the texts shown to people withhold them.
    roles: tuple[Annotated[str, IAM_ROLE_NAME], ...] = ()
    users: tuple[Annotated[str, IAM_USER_NAME], ...] = ()
    groups: tuple[Annotated[str, IAM_GROUP_NAME], ...] = ()

    def pairs(self) -> set[tuple[str, str]]:
        return (
            {("role", n) for n in self.roles} | {("user", n) for n in self.users} | {("group", n) for n in self.groups}
        )

    def describe(self) -> str:
        parts = [f"{kind} {display_text(name)}" for kind, name in sorted(self.pairs())]
        return "attached to " + ", ".join(parts) if parts else "attached to nothing"

    @classmethod
    def of(cls, pairs: Sequence[tuple[str, str]]) -> PolicyAttachments:
        return cls(
            roles=tuple(name for kind, name in pairs if kind == "role"),
            users=tuple(name for kind, name in pairs if kind == "user"),
            groups=tuple(name for kind, name in pairs if kind == "group"),
        )


class DetachPolicy(ChangeBase):
    kind: Literal["detach-policy"] = "detach-policy"
    before: PolicyAttachments
    after: PolicyAttachments

    TITLE = "Detach an administrator (*:*) policy"
    APPLY_ACTIONS = ("iam:DetachGroupPolicy", "iam:DetachRolePolicy", "iam:DetachUserPolicy")
    READ_ACTIONS = ("iam:ListEntitiesForPolicy",)
    UNDO_ACTIONS = ("iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:AttachUserPolicy")
    REGION_SCOPE = "home"

    @property
    def policy_arn(self) -> str:
        return self.resource_arn

    @property
    def detached(self) -> set[tuple[str, str]]:
        return self.before.pairs() - self.after.pairs()

    def assert_narrows(self) -> None:
        if not self.resource_arn.startswith(f"arn:{self.partition}:iam::{self.account_id}:policy/"):
            raise ValueError("resource_arn must be a customer-managed policy of this account")
        if not self.after.pairs() < self.before.pairs():
            raise WideningChange("after must keep a strict subset of the attachments before")

    def summary(self) -> str:
        name = display_text(self.policy_arn.rsplit("/", 1)[-1])
        return f"Detach {name} from {len(self.detached)} entities"

    def scoped_resources(self, phase: Phase) -> list[str]:
        arns = []
        for kind, name in sorted(self.detached):
            # Entities may live under a path; the name is the ARN's last segment either way.
            arns += [
                f"arn:{self.partition}:iam::{self.account_id}:{kind}/{name}",
                f"arn:{self.partition}:iam::{self.account_id}:{kind}/*/{name}",
            ]
        return arns

    # Each entity is detached by its own call and the executor checks only the entities a change names: a policy
    # attached to too many entities to show at once is detached by several changes, each showing all of its own.
    def approval_parts(self) -> tuple[Any, ...]:
        return tuple(sorted(self.detached))

    def with_parts(self, items: Sequence[Any]) -> DetachPolicy:
        return self.with_states(before=PolicyAttachments.of(items), after=PolicyAttachments())

    def session_policy_statements(self, phase: Phase = "apply") -> list[dict[str, Any]]:
        mutating = self.APPLY_ACTIONS if phase == "apply" else self.UNDO_ACTIONS
        return [
            {
                "Sid": "ThisPolicyOnTheseEntitiesOnly",
                "Effect": "Allow",
                "Action": sorted(mutating),
                "Resource": sorted(self.scoped_resources(phase)),
                "Condition": {"ArnEquals": {"iam:PolicyARN": self.policy_arn}},
            },
            {
                "Sid": "ListThisPolicy",
                "Effect": "Allow",
                "Action": list(self.READ_ACTIONS),
                "Resource": self.policy_arn,
            },
        ]
