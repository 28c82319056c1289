"""Create a new default version of a policy without its admin statements; undo makes the approved version the
default again. No version is ever deleted, so undo loses nothing.

The new document is rebuilt from the approved version as the executor reads it (versions never change once created),
after checking that its digest is the one approved. The approved indices were found on that very document by the
check's recognition of admin statements, so the rebuild holds none of them: verification compares the new default
document with the rebuild, by digest.
"""

from __future__ import annotations

from typing import Any

from boto3.session import Session
from pydantic import Field

from aegis.catalogue.kinds.replace_admin_policy_version import MAX_POLICY_VERSIONS, ReplaceAdminPolicyVersion
from aegis.catalogue.policy_documents import (
    SHA256_PATTERN,
    document_sha256,
    parse_policy_document,
    policy_text,
    statements_of,
    without_statements,
)
from aegis.models import Frozen
from aegis_executor.remediations.base import Remediation, RemediationFailed, remediation


class PolicyVersionsNow(Frozen):
    """The policy as the executor reads it: its default version and, where the approved version is still the one
    approved, the digest the approved rebuild has."""

    default_version_id: str
    document_sha256: str = Field(pattern=SHA256_PATTERN)
    statement_count: int
    version_count: int
    # None when the approved version is gone or no longer has the approved digest: nothing is the approved rebuild.
    approved_rebuild_sha256: str | None = None


@remediation("replace-admin-policy-version")
class ReplaceAdminPolicyVersionRemediation(Remediation[ReplaceAdminPolicyVersion, PolicyVersionsNow]):
    def read_current(self, session: Session, change: ReplaceAdminPolicyVersion) -> PolicyVersionsNow:
        iam = self.client(session, "iam", change)
        default_id = iam.get_policy(PolicyArn=change.policy_arn)["Policy"]["DefaultVersionId"]
        versions = [
            version
            for page in iam.get_paginator("list_policy_versions").paginate(PolicyArn=change.policy_arn)
            for version in page.get("Versions", [])
        ]
        default = self._document(iam, change, default_id)
        if default_id == change.before.version_id:
            approved = default if document_sha256(default) == change.before.document_sha256 else None
        else:
            approved = self._approved_document(iam, change)
        rebuild = None if approved is None else _rebuilt_sha256(approved, change)
        return PolicyVersionsNow(
            default_version_id=default_id,
            document_sha256=document_sha256(default),
            statement_count=len(statements_of(default)),
            version_count=len(versions),
            approved_rebuild_sha256=rebuild,
        )

    def is_before(self, current: PolicyVersionsNow, change: ReplaceAdminPolicyVersion) -> bool:
        # A policy with five versions changed since the scan, and IAM would refuse the new one.
        return (
            current.default_version_id == change.before.version_id
            and current.document_sha256 == change.before.document_sha256
            and current.version_count < MAX_POLICY_VERSIONS
        )

    def is_after(self, current: PolicyVersionsNow, change: ReplaceAdminPolicyVersion) -> bool:
        return (
            current.default_version_id != change.before.version_id
            and current.approved_rebuild_sha256 is not None
            and current.document_sha256 == current.approved_rebuild_sha256
        )

    def is_undone(self, current: PolicyVersionsNow, change: ReplaceAdminPolicyVersion) -> bool:
        return (
            current.default_version_id == change.before.version_id
            and current.document_sha256 == change.before.document_sha256
        )

    def apply(self, session: Session, change: ReplaceAdminPolicyVersion) -> None:
        iam = self.client(session, "iam", change)
        approved = self._approved_document(iam, change)
        if approved is None:
            raise RemediationFailed("the approved policy version no longer has the approved document")
        iam.create_policy_version(
            PolicyArn=change.policy_arn, PolicyDocument=policy_text(_rebuilt(approved, change)), SetAsDefault=True
        )

    def undo(self, session: Session, change: ReplaceAdminPolicyVersion) -> None:
        iam = self.client(session, "iam", change)
        iam.set_default_policy_version(PolicyArn=change.policy_arn, VersionId=change.before.version_id)

    def _approved_document(self, iam: Any, change: ReplaceAdminPolicyVersion) -> dict[str, Any] | None:
        """The approved version's document when it still has the approved digest; None otherwise (or if deleted)."""
        try:
            document = self._document(iam, change, change.before.version_id)
        except iam.exceptions.NoSuchEntityException:
            return None
        return document if document_sha256(document) == change.before.document_sha256 else None

    @staticmethod
    def _document(iam: Any, change: ReplaceAdminPolicyVersion, version_id: str) -> dict[str, Any]:
        version = iam.get_policy_version(PolicyArn=change.policy_arn, VersionId=version_id)["PolicyVersion"]
        return parse_policy_document(version["Document"])


def _rebuilt_sha256(document: dict[str, Any], change: ReplaceAdminPolicyVersion) -> str | None:
    try:
        return document_sha256(_rebuilt(document, change))
    except RemediationFailed:
        return None


def _rebuilt(document: dict[str, Any], change: ReplaceAdminPolicyVersion) -> dict[str, Any]:
    """The approved document without the approved statements. Only Allow statements are ever removed: removing a
    Deny would grant, whatever a change says."""
    statements = statements_of(document)
    if len(statements) != change.before.statement_count:
        raise RemediationFailed("the approved version's statements are not the approved ones")
    if any(not isinstance(statements[i], dict) or statements[i].get("Effect") != "Allow" for i in change.after.indices):
        raise RemediationFailed("a statement the change removes is not an Allow")
    return without_statements(document, change.after.indices)
