"""remove-bucket-policy-public-statements: only ever takes Allow statements out of one bucket's policy, named by
index in the policy of the approved digest."""

from __future__ import annotations

import pytest

from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.catalogue.bucket_policies import PolicyStatement
from aegis.catalogue.kinds.remove_bucket_policy_public_statements import (
    KeptPolicyStatements,
    PublicPolicyStatements,
    RemoveBucketPolicyPublicStatements,
)
from tests.support.changes import COMMON, bucket_policy_public_statements_change

DIGEST = "5e" * 32


def _statement(index: int, **overrides: object) -> PolicyStatement:
    body = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    return PolicyStatement(index=index, statement=body | overrides)


def _change(statements: list[PolicyStatement], count: int, kept: int) -> RemoveBucketPolicyPublicStatements:
    return RemoveBucketPolicyPublicStatements.propose(
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::b",
        before=PublicPolicyStatements(sha256=DIGEST, statement_count=count, statements=tuple(statements)),
        after=KeptPolicyStatements(statement_count=kept),
        **COMMON,
    )


def test_removing_a_deny_or_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="only Allow statements"):
        _change([_statement(0, Effect="Deny")], 2, 1)
    with pytest.raises(ValueError, match="removes no statement"):
        _change([], 2, 2)


def test_indices_must_name_distinct_statements_of_the_policy_and_after_must_keep_the_rest() -> None:
    with pytest.raises(ValueError, match="indices"):
        _change([_statement(2)], 2, 1)
    with pytest.raises(ValueError, match="indices"):
        _change([_statement(1), _statement(0)], 3, 1)
    with pytest.raises(ValueError, match="exactly the statements"):
        _change([_statement(0)], 3, 1)
    with pytest.raises(ValueError, match="sha256"):
        PublicPolicyStatements(sha256="not-a-digest", statement_count=1, statements=(_statement(0),))


def test_the_approver_sees_which_statements_go_by_index_and_action() -> None:
    change = bucket_policy_public_statements_change()
    assert change.summary() == "Remove 1 public statements s3 public-bucket"
    assert change.describe_before() == (
        f"bucket policy sha256 {DIGEST[:12]} (3 statements); 1 public (Principal * or NotPrincipal): "
        "#1 Allow s3:GetObject"
    )
    assert change.describe_after() == "statements #1 removed; bucket policy with its 2 other statements, unchanged"
    whole = _change([_statement(0)], 1, 0)
    assert whole.describe_after() == "statements #0 removed; no bucket policy (every statement was public)"


def test_many_statements_are_shown_by_index_ranges_and_still_fit() -> None:
    # As many statements as a change can carry (CARRIED_STATEMENTS_MAX), whose actions alone do not fit on a screen.
    actions = ["s3:GetObjectVersionAttributes", "s3:PutObjectLegalHold", "s3:GetObjectRetention", "s3:PutObjectAcl"]
    statements = [_statement(i, Action=actions) for i in (0, 1)]
    change = _change(statements, 4, 4 - len(statements))
    assert change.describe_before().endswith("2 public (Principal * or NotPrincipal): #0-#1")
    assert max(len(text) for text in change.approval_properties().values()) <= PROPERTY_VALUE_MAX


def test_the_session_may_read_put_and_delete_this_buckets_policy_only() -> None:
    change = bucket_policy_public_statements_change()
    [apply] = change.session_policy_statements("apply")
    [undo] = change.session_policy_statements("undo")
    assert apply["Action"] == ["s3:DeleteBucketPolicy", "s3:GetBucketPolicy", "s3:PutBucketPolicy"]
    assert undo["Action"] == ["s3:GetBucketPolicy", "s3:PutBucketPolicy"]
    assert apply["Resource"] == undo["Resource"] == ["arn:aws:s3:::public-bucket"]


def test_statements_too_large_to_carry_through_a_mission_are_refused() -> None:
    from pydantic import ValidationError

    from aegis.catalogue.kinds.remove_bucket_policy_public_statements import PublicPolicyStatements
    from aegis.catalogue.policy_documents import CARRIED_STATEMENTS_MAX

    huge = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Sid": "S" * CARRIED_STATEMENTS_MAX}
    with pytest.raises(ValidationError, match="one change carries at most"):
        PublicPolicyStatements(
            sha256="0" * 64, statement_count=2, statements=(PolicyStatement(index=0, statement=huge),)
        )
