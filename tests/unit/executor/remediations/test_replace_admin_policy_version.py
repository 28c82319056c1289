"""The new-version remediation: builds the new default version from the approved one as it reads it, never deletes
a version, and refuses whatever does not match what was approved."""

from __future__ import annotations

import json

import boto3
import pytest

from aegis.catalogue.kinds.replace_admin_policy_version import (
    DefaultPolicyVersion,
    RemovedStatements,
    ReplaceAdminPolicyVersion,
)
from aegis.catalogue.policy_documents import document_sha256
from aegis.models import Risk
from aegis_executor.remediations import RemediationFailed, remediation_for
from tests.support.changes import ALLOW_ALL, CASES, READ_LOGS, in_moto
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")

DENY_DELETES = {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}


def _session() -> boto3.Session:
    return boto3.Session(region_name=REGION)


def _versions(policy_arn: str) -> list[tuple[str, bool]]:
    iam = boto3.client("iam", region_name=REGION)
    found = iam.list_policy_versions(PolicyArn=policy_arn)["Versions"]
    return sorted((v["VersionId"], v["IsDefaultVersion"]) for v in found)


def test_undo_of_a_change_that_was_never_applied_is_drift() -> None:
    case = CASES["replace-admin-policy-version"]()
    fix = remediation_for(case.change)
    assert not fix.is_after(fix.read_current(_session(), case.change), case.change)


def test_undo_keeps_the_new_version_and_only_switches_the_default_back() -> None:
    case = CASES["replace-admin-policy-version"]()
    fix = remediation_for(case.change)
    session = _session()
    fix.apply(session, case.change)
    assert _versions(case.change.resource_arn) == [("v1", False), ("v2", True)]

    fix.undo(session, case.change)

    assert _versions(case.change.resource_arn) == [("v1", True), ("v2", False)]
    assert fix.verify_undone(session, case.change).ok


def test_a_policy_with_five_versions_is_not_in_the_approved_state() -> None:
    case = CASES["replace-admin-policy-version"]()
    iam = boto3.client("iam", region_name=REGION)
    for _ in range(4):
        iam.create_policy_version(
            PolicyArn=case.change.resource_arn,
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [READ_LOGS]}),
        )
    fix = remediation_for(case.change)
    current = fix.read_current(_session(), case.change)
    assert current.default_version_id == "v1"
    assert not fix.is_before(current, case.change)


def test_a_new_default_other_than_the_rebuild_is_not_the_after_state() -> None:
    case = CASES["replace-admin-policy-version"]()
    iam = boto3.client("iam", region_name=REGION)
    fix = remediation_for(case.change)
    fix.apply(_session(), case.change)
    wider = {"Version": "2012-10-17", "Statement": [READ_LOGS, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.create_policy_version(PolicyArn=case.change.resource_arn, PolicyDocument=json.dumps(wider), SetAsDefault=True)

    assert not fix.verify(_session(), case.change).ok


def test_a_change_naming_a_deny_statement_removes_nothing() -> None:
    """A forged change that would remove a Deny (a grant) fails before any call that changes the policy."""
    iam = boto3.client("iam", region_name=REGION)
    document = {"Version": "2012-10-17", "Statement": [ALLOW_ALL, DENY_DELETES]}
    arn = iam.create_policy(PolicyName="guarded", PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    change = in_moto(
        ReplaceAdminPolicyVersion,
        check_id="iam-admin-policy-attached",
        resource_arn=arn,
        risk=Risk.MEDIUM,
        before=DefaultPolicyVersion(version_id="v1", document_sha256=document_sha256(document), statement_count=2),
        after=RemovedStatements(indices=(1,)),
    )
    fix = remediation_for(change)
    assert fix.is_before(fix.read_current(_session(), change), change)

    with pytest.raises(RemediationFailed, match="not an Allow"):
        fix.apply(_session(), change)
    assert _versions(arn) == [("v1", True)]
