"""Remove the approved public statements from a bucket policy, keeping the rest (DeleteBucketPolicy when none is
left); undo puts the same statements back at their indices.

The policy is the one approved only while its digest is the approved one: the statements are removed by index from
exactly that policy, and every other edit since the scan is drift. After the change, the policy is the approved one
minus those statements exactly when putting them back gives the approved digest again.
"""

from __future__ import annotations

from typing import Any

from boto3.session import Session

from aegis.catalogue.bucket_policies import (
    BucketPolicyDocument,
    policy_sha256,
    same_statement,
    with_statements,
    without_statements,
)
from aegis.catalogue.kinds.remove_bucket_policy_public_statements import RemoveBucketPolicyPublicStatements
from aegis_executor.remediations._bucket_policy import read_policy, write_policy
from aegis_executor.remediations.base import Remediation, RemediationFailed, remediation


def _restored(current: BucketPolicyDocument, change: RemoveBucketPolicyPublicStatements) -> dict[str, Any]:
    before = change.before
    return with_statements(current.document, before.statements, version=before.version, policy_id=before.policy_id)


@remediation("remove-bucket-policy-public-statements")
class RemoveBucketPolicyPublicStatementsRemediation(
    Remediation[RemoveBucketPolicyPublicStatements, BucketPolicyDocument]
):
    def read_current(self, session: Session, change: RemoveBucketPolicyPublicStatements) -> BucketPolicyDocument:
        return read_policy(self.client(session, "s3", change), change.bucket, change.account_id)

    def is_before(self, current: BucketPolicyDocument, change: RemoveBucketPolicyPublicStatements) -> bool:
        statements = current.statements
        return current.sha256 == change.before.sha256 and all(
            removed.index < len(statements) and same_statement(statements[removed.index], removed.statement)
            for removed in change.removed
        )

    def is_after(self, current: BucketPolicyDocument, change: RemoveBucketPolicyPublicStatements) -> bool:
        if len(current.statements) != change.after.statement_count:
            return False
        if change.after.statement_count == 0:
            return current.document is None
        return policy_sha256(_restored(current, change)) == change.before.sha256

    def is_undone(self, current: BucketPolicyDocument, change: RemoveBucketPolicyPublicStatements) -> bool:
        return current.sha256 == change.before.sha256

    def apply(self, session: Session, change: RemoveBucketPolicyPublicStatements) -> None:
        s3 = self.client(session, "s3", change)
        current = read_policy(s3, change.bucket, change.account_id)
        if current.document is None or not self.is_before(current, change):
            raise RemediationFailed("the bucket policy changed after it was checked; nothing was written")
        kept = without_statements(current.document, (s.index for s in change.removed))
        write_policy(s3, change.bucket, change.account_id, kept)

    def undo(self, session: Session, change: RemoveBucketPolicyPublicStatements) -> None:
        s3 = self.client(session, "s3", change)
        current = read_policy(s3, change.bucket, change.account_id)
        if not self.is_after(current, change):
            raise RemediationFailed("the bucket policy changed after it was checked; nothing was written")
        write_policy(s3, change.bucket, change.account_id, _restored(current, change))
