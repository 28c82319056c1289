"""Detach a customer-managed policy that allows `*` on `*` from every entity (CIS 1.15)."""

from __future__ import annotations

from typing import Any, Literal

from aegis.catalogue.base import ChangeBase, Phase, WideningChange
from aegis.models import Frozen


class PolicyAttachments(Frozen):
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def pairs(self) -> set[tuple[str, str]]:
        return (
            {("role", n) for n in self.roles} | {("user", n) for n in self.users} | {("group", n) for n in self.groups}
        )

    def describe(self) -> str:
        parts = [f"{kind} {name}" for kind, name in sorted(self.pairs())]
        return "attached to " + ", ".join(parts) if parts else "attached to nothing"


class DetachPolicy(ChangeBase):
    kind: Literal["detach-policy"] = "detach-policy"
    before: PolicyAttachments
    after: PolicyAttachments

    TITLE = "Detach an administrator (*:*) policy"
    APPLY_ACTIONS = ("iam:DetachGroupPolicy", "iam:DetachRolePolicy", "iam:DetachUserPolicy")
    READ_ACTIONS = ("iam:ListEntitiesForPolicy",)
    UNDO_ACTIONS = ("iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:AttachUserPolicy")

    @property
    def policy_arn(self) -> str:
        return self.resource_arn

    @property
    def detached(self) -> set[tuple[str, str]]:
        return self.before.pairs() - self.after.pairs()

    def assert_narrows(self) -> None:
        if not self.resource_arn.startswith(f"arn:aws:iam::{self.account_id}:policy/"):
            raise ValueError("resource_arn must be a customer-managed policy of this account")
        if not self.after.pairs() < self.before.pairs():
            raise WideningChange("after must keep a strict subset of the attachments before")

    def summary(self) -> str:
        name = self.policy_arn.rsplit("/", 1)[-1]
        return f"Detach {name} from {len(self.detached)} entities"

    def describe_before(self) -> str:
        return self.before.describe()

    def describe_after(self) -> str:
        return self.after.describe()

    def scoped_resources(self, phase: Phase) -> list[str]:
        arns = []
        for kind, name in sorted(self.detached):
            # Entities may live under a path; the name is the ARN's last segment either way.
            arns += [
                f"arn:aws:iam::{self.account_id}:{kind}/{name}",
                f"arn:aws:iam::{self.account_id}:{kind}/*/{name}",
            ]
        return arns

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
