"""Put each approved inline policy back without its admin statements, or delete it when they were all it had; undo
puts the removed statements back at their indices. Only the approved policies are read or written, each only while
its document has the approved digest.

Verification needs no copy of the old document: putting the change's statements back into what is there now must
give the approved digest, which holds exactly when what is there now is the approved document without them.
"""

from __future__ import annotations

from typing import Any

from boto3.session import Session
from pydantic import Field

from aegis.catalogue.kinds.detach_policy import ENTITY_NAME_PARAMETER
from aegis.catalogue.kinds.remove_inline_policy_admin_statements import (
    InlineAdminPolicy,
    RemoveInlinePolicyAdminStatements,
)
from aegis.catalogue.policy_documents import (
    SHA256_PATTERN,
    document_sha256,
    parse_policy_document,
    policy_text,
    statements_of,
    with_statements,
    without_statements,
)
from aegis.models import Frozen
from aegis_executor.remediations.base import Remediation, RemediationFailed, remediation


class InlinePolicyNow(Frozen):
    name: str
    # None when the entity has no inline policy of this name.
    document_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    statement_count: int = 0
    # The digest of the document with the change's removed statements put back at their indices: the approved
    # digest exactly when the document is the approved one without them. None when they cannot be put back.
    restored_sha256: str | None = None


class InlinePoliciesNow(Frozen):
    policies: tuple[InlinePolicyNow, ...]

    def of(self, name: str) -> InlinePolicyNow:
        return next(p for p in self.policies if p.name == name)


@remediation("remove-inline-policy-admin-statements")
class RemoveInlinePolicyAdminStatementsRemediation(Remediation[RemoveInlinePolicyAdminStatements, InlinePoliciesNow]):
    def read_current(self, session: Session, change: RemoveInlinePolicyAdminStatements) -> InlinePoliciesNow:
        iam = self.client(session, "iam", change)
        found = []
        for policy in change.cleaned:
            document = _read(iam, change, policy.name)
            if document is None:
                found.append(InlinePolicyNow(name=policy.name))
                continue
            found.append(
                InlinePolicyNow(
                    name=policy.name,
                    document_sha256=document_sha256(document),
                    statement_count=len(statements_of(document)),
                    restored_sha256=_restored_sha256(document, policy),
                )
            )
        return InlinePoliciesNow(policies=tuple(found))

    # Inline policies the change does not name (added since the scan, or without admin statements) are outside it.
    def is_before(self, current: InlinePoliciesNow, change: RemoveInlinePolicyAdminStatements) -> bool:
        return all(current.of(p.name).document_sha256 == p.document_sha256 for p in change.cleaned)

    def is_after(self, current: InlinePoliciesNow, change: RemoveInlinePolicyAdminStatements) -> bool:
        for policy in change.cleaned:
            now = current.of(policy.name)
            if policy.deletes:
                if now.document_sha256 is not None:
                    return False
            elif now.document_sha256 is None or now.restored_sha256 != policy.document_sha256:
                return False
        return True

    def is_undone(self, current: InlinePoliciesNow, change: RemoveInlinePolicyAdminStatements) -> bool:
        return self.is_before(current, change)

    def apply(self, session: Session, change: RemoveInlinePolicyAdminStatements) -> None:
        iam = self.client(session, "iam", change)
        for policy in change.cleaned:
            document = _read(iam, change, policy.name)
            if document is None or document_sha256(document) != policy.document_sha256:
                raise RemediationFailed("an approved inline policy changed before it was rewritten")
            statements = statements_of(document)
            if any(statements[index] != statement for index, statement in policy.removed.items()):
                raise RemediationFailed("an approved inline policy does not hold the approved statements")
            if policy.deletes:
                _call(iam, change, "delete", PolicyName=policy.name)
            else:
                rebuilt = without_statements(document, policy.removed)
                _call(iam, change, "put", PolicyName=policy.name, PolicyDocument=policy_text(rebuilt))

    def undo(self, session: Session, change: RemoveInlinePolicyAdminStatements) -> None:
        iam = self.client(session, "iam", change)
        for policy in change.cleaned:
            if policy.deletes:
                restored = {**policy.frame, "Statement": [policy.removed[i] for i in sorted(policy.removed)]}
            else:
                document = _read(iam, change, policy.name)
                if document is None:
                    raise RemediationFailed("an approved inline policy is gone: its statements have no document")
                restored = with_statements(document, policy.removed)
            # Never a document other than the approved one: what is put back is checked against its digest first.
            if document_sha256(restored) != policy.document_sha256:
                raise RemediationFailed("an approved inline policy would not be the approved document again")
            _call(iam, change, "put", PolicyName=policy.name, PolicyDocument=policy_text(restored))


def _restored_sha256(document: dict[str, Any], policy: InlineAdminPolicy) -> str | None:
    try:
        return document_sha256(with_statements(document, policy.removed))
    except ValueError:
        return None


def _call(iam: Any, change: RemoveInlinePolicyAdminStatements, verb: str, **arguments: Any) -> Any:
    """`iam.<verb>_<entity>_policy` for the change's entity, e.g. put_role_policy(RoleName=..., ...)."""
    operation = getattr(iam, f"{verb}_{change.entity_type}_policy")
    return operation(**{ENTITY_NAME_PARAMETER[change.entity_type]: change.entity_name}, **arguments)


def _read(iam: Any, change: RemoveInlinePolicyAdminStatements, name: str) -> dict[str, Any] | None:
    """The inline policy's document, or None when the entity has no inline policy of that name."""
    try:
        answer = _call(iam, change, "get", PolicyName=name)
    except iam.exceptions.NoSuchEntityException:
        return None
    return parse_policy_document(answer["PolicyDocument"])
