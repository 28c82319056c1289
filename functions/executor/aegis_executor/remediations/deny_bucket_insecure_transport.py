"""Add the AegisDenyInsecureTransport statement to a bucket policy as its last statement (creating the policy if
the bucket has none); undo removes exactly that statement, or deletes the policy the change created.

The policy is the one approved only while its digest is the approved one (no policy: still none). After the change,
it is that policy plus the statement exactly when its last statement is the approved one and the others have the
approved digest.
"""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.bucket_policies import (
    POLICY_VERSION,
    BucketPolicyDocument,
    policy_sha256,
    same_statement,
    without_statements,
)
from aegis.catalogue.kinds.deny_bucket_insecure_transport import DenyBucketInsecureTransport
from aegis_executor.remediations._bucket_policy import read_policy, write_policy
from aegis_executor.remediations.base import Remediation, RemediationFailed, remediation


@remediation("deny-bucket-insecure-transport")
class DenyBucketInsecureTransportRemediation(Remediation[DenyBucketInsecureTransport, BucketPolicyDocument]):
    def read_current(self, session: Session, change: DenyBucketInsecureTransport) -> BucketPolicyDocument:
        return read_policy(self.client(session, "s3", change), change.bucket, change.account_id)

    def is_before(self, current: BucketPolicyDocument, change: DenyBucketInsecureTransport) -> bool:
        return current.sha256 == change.before.sha256

    def is_after(self, current: BucketPolicyDocument, change: DenyBucketInsecureTransport) -> bool:
        statements = current.statements
        if current.document is None or len(statements) != change.after.index + 1:
            return False
        if not same_statement(statements[-1], change.statement):
            return False
        return policy_sha256(without_statements(current.document, [change.after.index])) == change.before.sha256

    def is_undone(self, current: BucketPolicyDocument, change: DenyBucketInsecureTransport) -> bool:
        return self.is_before(current, change)

    def apply(self, session: Session, change: DenyBucketInsecureTransport) -> None:
        s3 = self.client(session, "s3", change)
        current = read_policy(s3, change.bucket, change.account_id)
        if not self.is_before(current, change):
            raise RemediationFailed("the bucket policy changed after it was checked; nothing was written")
        document = current.document or {"Version": POLICY_VERSION}
        statements = [*current.statements, change.statement]
        write_policy(s3, change.bucket, change.account_id, {**document, "Statement": statements})

    def undo(self, session: Session, change: DenyBucketInsecureTransport) -> None:
        s3 = self.client(session, "s3", change)
        current = read_policy(s3, change.bucket, change.account_id)
        if current.document is None or not self.is_after(current, change):
            raise RemediationFailed("the bucket policy changed after it was checked; nothing was written")
        # None (delete the policy) exactly when the change created it: the statement was its only one.
        write_policy(s3, change.bucket, change.account_id, without_statements(current.document, [change.after.index]))
