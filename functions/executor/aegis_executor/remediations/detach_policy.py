"""Detach a policy from exactly the named entities (policy ARN + entity); undo attaches it to them again."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.detach_policy import ENTITY_NAME_PARAMETER, DetachPolicy, PolicyAttachments
from aegis_executor.remediations.base import Remediation, remediation


@remediation("detach-policy")
class DetachPolicyRemediation(Remediation[DetachPolicy, PolicyAttachments]):
    def read_current(self, session: Session, change: DetachPolicy) -> PolicyAttachments:
        iam = self.client(session, "iam", change)
        roles: list[str] = []
        users: list[str] = []
        groups: list[str] = []
        for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=change.policy_arn):
            roles += [r["RoleName"] for r in page.get("PolicyRoles", [])]
            users += [u["UserName"] for u in page.get("PolicyUsers", [])]
            groups += [g["GroupName"] for g in page.get("PolicyGroups", [])]
        return PolicyAttachments(roles=tuple(sorted(roles)), users=tuple(sorted(users)), groups=tuple(sorted(groups)))

    # Entities attached since the scan are outside the change: it detaches the named ones, nothing else.
    def is_before(self, current: PolicyAttachments, change: DetachPolicy) -> bool:
        return change.before.pairs() <= current.pairs()

    def is_after(self, current: PolicyAttachments, change: DetachPolicy) -> bool:
        return change.after.pairs() <= current.pairs() and not (change.detached & current.pairs())

    def apply(self, session: Session, change: DetachPolicy) -> None:
        iam = self.client(session, "iam", change)
        detach = {"role": iam.detach_role_policy, "user": iam.detach_user_policy, "group": iam.detach_group_policy}
        for entity, name in sorted(change.detached):
            detach[entity](**{ENTITY_NAME_PARAMETER[entity]: name, "PolicyArn": change.policy_arn})

    def undo(self, session: Session, change: DetachPolicy) -> None:
        iam = self.client(session, "iam", change)
        attach = {"role": iam.attach_role_policy, "user": iam.attach_user_policy, "group": iam.attach_group_policy}
        for entity, name in sorted(change.detached):
            attach[entity](**{ENTITY_NAME_PARAMETER[entity]: name, "PolicyArn": change.policy_arn})
